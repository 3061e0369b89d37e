"""/api/deployments: desired state of workloads; every change a reconcile job."""
from __future__ import annotations

import hashlib
import json

from flask_openapi3 import APIBlueprint, Tag

import validation
from core import placement, spec
from db import deployments, events, nodes, secrets, slots
from web import auth, dispatch, lookups, policy, views
from web.deploy_schemas import (DeploymentCreate, DeploymentList, DeploymentOut,
                                DeploymentPatch, DeploymentPath, RevisionList, ScaleBody,
                                Template)
from web.errors import ApiError, not_found
from web.schemas import BEARER, ContainerPath, ErrorOut, JobOut, WaitQuery
from web.context import settings
from workers import messages

tag = Tag(name="deployments", description="Desired state, scaling, rollouts")
bp = APIBlueprint("deployments", __name__, url_prefix="/api/deployments", abp_tags=[tag],
                  abp_security=BEARER,
                  abp_responses={400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut,
                                 409: ErrorOut, 422: ErrorOut, 503: ErrorOut})
JOB = {202: JobOut, 200: JobOut}


def secret_digest(values: dict) -> str | None:
    """A template records that secrets changed (so they roll out), never their values."""
    if not values:
        return None
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def build_template(body: Template, base: dict | None = None) -> dict:
    template = {**(base or {}), **policy.fields_set(body, spec.TEMPLATE_FIELDS)}
    if body.secret_env is not None:
        template["secret_env_keys"] = sorted(body.secret_env)
        template["secret_digest"] = secret_digest(body.secret_env)
    template.setdefault("security", policy.normalised_security(policy.Security()))
    check_template(body, template)
    return template


def check_template(body: Template, template: dict) -> None:
    """Widening options need admin and the server's consent; probes need a published port."""
    if body.security is not None or body.mounts is not None:
        found = policy.widening_options(body.security or policy.Security(), body.mounts or [])
        auth.require_admin_for(found)
        policy.check_allowed_by_server(found)
    check = template.get("health_check")
    if check and check["type"] in ("http", "tcp"):
        published = {int(port.split("/")[0]) for port in (template.get("ports") or {})}
        if check["port"] not in published:
            raise ApiError(422, f"health_check.port {check['port']} is not published: publish "
                                "it in ports or use a command check",
                           fields={"health_check.port": "not a published port"})


def next_generation(dep: dict, template: dict, cause: str, who: str | None, conn,
                    requested: dict, rolling_back: bool = False) -> dict:
    """The deployment's next generation, noted in ``requested`` for the job's result."""
    row = deployments.new_generation(dep["name"], template, cause, who, conn,
                                     rolling_back=rolling_back)
    if row is None:  # deleted since the request looked it up
        raise not_found(f"deployment {dep['name']!r}")
    requested["requested_generation"] = row["generation"]
    return row


def reconcile_job(dep: dict, kind: str, write=None, wait: str | None = None,
                  requested: dict | None = None):
    return dispatch.accepted(dispatch.submit_deployment_job(dep["name"], kind,
                                                            write, requested), wait)


@bp.post("", responses=JOB)
def create_deployment(body: DeploymentCreate, query: WaitQuery):
    """Declare a workload; the reconciler places and makes it so (a job)."""
    dispatch.require_a_ready_node()
    template = build_template(body)
    # pool members hold their host ports too
    require_ports_fit(template.get("ports"), body.replicas + body.warm_pool, body.name,
                      template.get("mode"))
    require_pool_fits(body.warm_pool, body.max_replicas, template.get("mode"))
    requested = {}

    def write(conn):
        row = deployments.create(body.name, template, body.resources.normalised(),
                                 body.replicas, body.min_replicas, body.max_replicas,
                                 body.restart.model_dump(), body.update.model_dump(),
                                 auth.caller_name(), conn, warm_pool=body.warm_pool)
        if row is None:
            raise ApiError(409, f"a deployment named {body.name!r} exists")
        requested["requested_generation"] = row["generation"]
        if body.secret_env:
            secrets.put(deployments.secret_owner(body.name), body.secret_env, conn)
        events.add("deployment_created", deployment=body.name, who=auth.caller_name(), conn=conn,
                   detail={"replicas": body.replicas, "image": body.image})

    return dispatch.accepted(dispatch.submit_deployment_job(body.name, "create_deployment",
                                                            write, requested), query.wait)


@bp.get("", responses={200: DeploymentList})
def list_deployments():
    """All deployments with their status (instances omitted; GET one for them)."""
    return {"items": [views.deployment_json(d, with_instances=False) for d in deployments.find(
        limit=1000) if not d["deleting"]], "next": None}


@bp.get("/<name>", responses={200: DeploymentOut})
def get_deployment(path: DeploymentPath):
    """One deployment: spec, status counts and instances."""
    return views.deployment_json(lookups.deployment_or_404(path.name))


@bp.patch("/<name>", responses=JOB)
def patch_deployment(path: DeploymentPath, body: DeploymentPatch, query: WaitQuery):
    """Change a deployment. Template fields roll out a new generation; replicas, bounds and
    the warm pool never do; resources apply live to every instance."""
    dep = lookups.deployment_or_404(path.name)
    fields = body.model_fields_set
    lo = body.min_replicas if "min_replicas" in fields else dep["min_replicas"]
    hi = body.max_replicas if "max_replicas" in fields else dep["max_replicas"]
    require_within_bounds(body.replicas if body.replicas is not None else dep["replicas"],
                          lo, hi)
    template_changed = any(f in fields for f in spec.TEMPLATE_FIELDS + ("secret_env",))
    new_template = build_template(body, dep["template"]) if template_changed else None
    template = new_template or dep["template"]
    pool_size = body.warm_pool if body.warm_pool is not None else dep["warm_pool"]
    require_pool_fits(pool_size, hi, template.get("mode"))
    require_ports_fit(template.get("ports"), pool_size
                      + (body.replicas if body.replicas is not None else dep["replicas"]),
                      dep["name"], template.get("mode"))
    who = auth.caller_name()
    requested = {}

    def write(conn):
        updates = {}
        if "min_replicas" in fields:  # null unsets a bound
            updates["min_replicas"] = lo
        if "max_replicas" in fields:
            updates["max_replicas"] = hi
        if body.resources is not None:
            updates["resources"] = {**dep["resources"], **body.resources.normalised()}
        if body.restart is not None:
            updates["restart"] = body.restart.model_dump()
        if body.update is not None:
            updates["update_strategy"] = body.update.model_dump()
        if pool_size != dep["warm_pool"]:   # a setting: never a rollout
            updates["warm_pool"] = pool_size
        if updates:
            deployments.update(dep["name"], conn, **updates)
        if body.replicas is not None and body.replicas != dep["replicas"]:
            deployments.set_replicas(dep["name"], body.replicas, conn)
        if body.secret_env is not None:
            secrets.put(deployments.secret_owner(dep["name"]), body.secret_env, conn)
        if new_template is not None and new_template != dep["template"]:
            row = next_generation(dep, new_template, "update", who, conn, requested)
            events.add("rollout_started", deployment=dep["name"], who=who, conn=conn,
                       detail={"generation": row["generation"], "image": new_template["image"]})

    # resources apply live in the same job: the planner updates every instance that does not
    # run with them yet
    return reconcile_job(dep, "update_deployment", write=write, wait=query.wait,
                         requested=requested)


@bp.delete("/<name>", responses=JOB)
def delete_deployment(path: DeploymentPath, query: WaitQuery):
    """Delete a deployment and every instance of it (gracefully; a job)."""
    dep = lookups.deployment_or_404(path.name)

    def write(conn):
        deployments.mark_deleting(dep["name"], conn)
        events.add("deployment_deleting", deployment=dep["name"], who=auth.caller_name(),
                   conn=conn)

    return reconcile_job(dep, "delete_deployment", write=write, wait=query.wait)


def require_within_bounds(replicas: int, low: int | None, high: int | None) -> None:
    """422 when a replica count is outside a deployment's bounds (unset: 0..the cap)."""
    problem = validation.bounds_problem(replicas, low, high, settings().max_replicas)
    if problem:
        raise ApiError(422, problem, fields={"replicas": problem})


def require_pool_fits(size: int, high: int | None, mode: str | None) -> None:
    """422 naming warm_pool when the pool is above the replicas' upper bound (or global)."""
    problem = validation.pool_problem(size, high, settings().max_replicas, mode)
    if problem:
        raise ApiError(422, problem, fields={"warm_pool": problem})


def require_ports_fit(ports: dict | None, replicas: int, deployment: str | None = None,
                      mode: str | None = None) -> None:
    """422 when fixed host ports cannot serve that many replicas: each binds once per node,
    so it needs as many ready, active nodes where those ports are free (of others)."""
    wanted = placement.fixed_ports(ports)
    if not wanted or replicas <= 1 or mode == "global":
        return
    in_use = nodes.fixed_ports_of_others(deployment)
    free = sorted(name for name, state in views.fleet_states().items()
                  if state.ready and state.availability == "active"
                  and not wanted & in_use.get(name, set()))
    if replicas > len(free):
        problem = (f"needs {replicas} nodes with port {', '.join(sorted(wanted))} free (a "
                   f"fixed host port binds once per node); {len(free)} "
                   f"{'has' if len(free) == 1 else 'have'} it{': ' if free else ''}"
                   f"{', '.join(free)}")
        raise ApiError(422, problem, fields={"ports": problem})


def scale(dep: dict, replicas: int, wait: str | None):
    require_within_bounds(replicas, dep["min_replicas"], dep["max_replicas"])
    require_ports_fit(dep["template"].get("ports"), replicas + dep["warm_pool"], dep["name"],
                      dep["template"].get("mode"))
    version = {}

    def write(conn):
        row = deployments.set_replicas(dep["name"], replicas, conn)
        if row is None:
            raise not_found(f"deployment {dep['name']!r}")
        version["v"] = row["desired_version"]
        events.add("scale", deployment=dep["name"], who=auth.caller_name(), conn=conn,
                   detail={"from": dep["replicas"], "to": replicas,
                           "desired_version": row["desired_version"]})

    # the version is assigned in the job's own transaction: write it into the job's args
    dispatch.require_a_ready_node()
    job = dispatch.submit("scale_deployment", f"deployments/{dep['name']}",
                          messages.RECONCILE_DEPLOYMENT,
                          {"deployment": dep["name"], "replicas": replicas}, write=write,
                          args_after_write=lambda: {"desired_version": version.get("v")},
                          pipelined=True)
    return dispatch.accepted(job, wait)


@bp.post("/<name>/scale", responses=JOB)
def scale_deployment(path: DeploymentPath, body: ScaleBody, query: WaitQuery):
    """Set the replica count (422 outside min/max); the job's result carries the
    desired_version, which grows with every accepted change."""
    return scale(lookups.deployment_or_404(path.name), body.replicas, query.wait)


@bp.post("/<name>/restart", responses=JOB)
def restart_deployment(path: DeploymentPath, query: WaitQuery):
    """Replace every instance with a rolling update (same template, new generation)."""
    dep = lookups.deployment_or_404(path.name)
    requested = {}

    def write(conn):
        row = next_generation(dep, dep["template"], "restart", auth.caller_name(), conn,
                              requested)
        events.add("rollout_started", deployment=dep["name"], who=auth.caller_name(), conn=conn,
                   detail={"generation": row["generation"], "cause": "restart"})

    return reconcile_job(dep, "restart_deployment", write=write, wait=query.wait,
                         requested=requested)


@bp.post("/<name>/rollback", responses=JOB)
def rollback_deployment(path: DeploymentPath, query: WaitQuery):
    """Roll back to the previous generation's template (as a new generation)."""
    dep = lookups.deployment_or_404(path.name)
    previous = deployments.revision(dep["name"], dep["generation"] - 1)
    if previous is None:
        raise ApiError(409, f"deployment {dep['name']!r} has no previous generation")
    requested = {}

    def write(conn):
        row = next_generation(dep, previous["template"], "rollback", auth.caller_name(), conn,
                              requested, rolling_back=True)
        events.add("rollback", deployment=dep["name"], who=auth.caller_name(), conn=conn,
                   detail={"from_generation": dep["generation"],
                           "to_template_of": previous["generation"],
                           "generation": row["generation"]})

    return reconcile_job(dep, "rollback_deployment", write=write, wait=query.wait,
                         requested=requested)


@bp.post("/<name>/rebalance", responses=JOB)
def rebalance_deployment(path: DeploymentPath, query: WaitQuery):
    """Spread the deployment evenly again over the nodes it may use (start-first: each
    moved instance is ready on its new node before the old one goes). Swarm never does
    this after a node joins; here it is one request."""
    dep = lookups.deployment_or_404(path.name)
    rules = dep["template"].get("placement") or {}
    volumes = placement.named_volumes(dep["template"].get("mounts"))
    if volumes and rules.get("follow_volumes", True):
        raise ApiError(409, f"{dep['name']} mounts the named volume(s) {', '.join(sorted(volumes))}"
                       ", which live on one engine: its instances stay with them (set "
                       "placement.follow_volumes to false to spread it, each node with volumes "
                       "of its own)")
    ask_nodes = [name for name, state in views.fleet_states().items()
                 if state.ready and state.availability == "active" and all(
                     placement.matches(placement.parse_constraint(c), state) for c in
                     rules.get("constraints") or ())]

    def write(conn):
        current = {slot: row["node"] for slot, row in slots.assignments(dep["name"]).items()
                   if row["node"]}
        moves = placement.rebalance_moves(current, ask_nodes)
        for slot in moves:
            slots.assign(dep["name"], slot, None, None, None)
        events.add("rebalance", deployment=dep["name"], who=auth.caller_name(), conn=conn,
                   detail={"slots": moves, "nodes": ask_nodes})

    return reconcile_job(dep, "rebalance_deployment", write=write, wait=query.wait)


@bp.get("/<name>/history", responses={200: RevisionList})
def deployment_history(path: DeploymentPath):
    """Every generation: its template, why it was made and who asked."""
    lookups.deployment_or_404(path.name)
    return {"items": [{"generation": r["generation"], "image": r["template"]["image"],
                       "cause": r["cause"], "who": r["who"],
                       "created_at": r["created_at"].isoformat(), "template": r["template"]}
                      for r in deployments.revisions(path.name)], "next": None}


# seed 004: scale a container's deployment through the container
containers_bp = APIBlueprint("container_scale", __name__, url_prefix="/api/containers",
                             abp_tags=[tag], abp_security=BEARER,
                             abp_responses={401: ErrorOut, 403: ErrorOut, 404: ErrorOut,
                                            409: ErrorOut, 422: ErrorOut, 503: ErrorOut})


@containers_bp.post("/<ref>/scale", responses=JOB)
def scale_container(path: ContainerPath, body: ScaleBody, query: WaitQuery):
    """Scale the deployment this container belongs to (seed 004)."""
    row = lookups.container_or_404(path.ref)
    if not row["deployment"]:
        raise ApiError(409, f"container {path.ref!r} is standalone: it has no deployment to "
                            "scale")
    return scale(lookups.deployment_or_404(row["deployment"]), body.replicas, query.wait)

