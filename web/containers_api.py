"""/api/containers: the whole container lifecycle, each Docker operation a job."""
from __future__ import annotations

import uuid

from flask import request
from flask_openapi3 import APIBlueprint, Tag

from core import placement
from core.spec import SPEC_FIELDS, ContainerSpec
from db import containers, nodes, secrets
from web.context import settings
from web import auth, dispatch, logs_api, lookups, policy, views
from web.errors import ApiError
from web.schemas import (BEARER, ContainerCreate, ContainerList, ContainerListQuery, ContainerOut,
                         ContainerPath, DeleteBody, DeleteQuery, ErrorOut, ExecBody, JobOut,
                         KillBody, LogsQuery, ReadResult, Resources, StopBody, StopQuery,
                         UsageSummary, WaitQuery)
from workers import messages

tag = Tag(name="containers", description="Standalone containers and instances")
bp = APIBlueprint("containers", __name__, url_prefix="/api/containers", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut,
                                 503: ErrorOut})
JOB = {202: JobOut, 200: JobOut}
READ_WAIT = 30.0


def container_job(kind: str, actor: str, row: dict, args: dict | None = None,
                  wait: str | None = None):
    dispatch.require_docker(row["node"])
    job = dispatch.submit(kind, f"containers/{row['name']}", actor,
                             {"name": row["name"], **(args or {})}, node=row["node"])
    return dispatch.accepted(job, wait)


def choose_node(body: ContainerCreate) -> str:
    """The node a standalone container runs on: the one named, or placement's choice (the
    ready, active node with fewest containers that has room and its fixed ports free)."""
    if body.node is not None:
        if nodes.get(body.node) is None:
            raise ApiError(422, f"node: no node named {body.node!r} (GET /api/nodes lists them)",
                           fields={"node": f"no node named {body.node!r}"})
        dispatch.require_docker(body.node)
        return body.node
    dispatch.require_a_ready_node()
    cfg = settings()
    resources = body.resources.normalised()
    ask = placement.Ask(deployment="", cpus=float(resources.get("cpus")
                                                    or cfg.default_cpu_request),
                        memory=int(resources.get("memory") or cfg.default_memory_request),
                        ports=placement.fixed_ports(body.ports), constraints=(),
                        max_per_node=None)
    decision = placement.place(ask, list(views.fleet_states().values()), {})
    if decision.node is None:
        raise ApiError(409, f"no node can run it: {decision.reason}")
    return decision.node


@bp.post("", responses=JOB)
def create_container(body: ContainerCreate, query: WaitQuery):
    """Create and start a container (a job). Secret env entries are stored apart."""
    found = policy.widening_options(body.security, body.mounts)
    auth.require_admin_for(found)
    policy.check_allowed_by_server(found)
    node = choose_node(body)
    name = body.name or f"c-{uuid.uuid4().hex[:10]}"
    spec = ContainerSpec.from_dict(policy.fields_set(body, SPEC_FIELDS)).as_dict()

    def write(conn):
        if not containers.request(name, "standalone", node, body.image, spec, body.labels, conn):
            raise ApiError(409, f"a container named {name!r} already exists")
        secrets.put(name, body.secret_env, conn)

    job = dispatch.submit("create_container", f"containers/{name}",
                             messages.CREATE_CONTAINER, {"name": name}, node=node, write=write)
    return dispatch.accepted(job, query.wait)


@bp.get("", responses={200: ContainerList})
def list_containers(query: ContainerListQuery):
    """Containers recorded by this installation (filters: state, image, deployment, label,
    kind)."""
    label = None
    if query.label:
        key, sep, value = query.label.partition("=")
        label = (key, value if sep else None)
    rows = containers.find(state=query.state, image=query.image, deployment=query.deployment,
                           kind=query.kind, label=label, after=query.cursor,
                           limit=query.limit + 1, columns=containers.LISTED)
    items = rows[: query.limit]
    following = items[-1]["name"] if len(rows) > query.limit else None
    return {"items": [views.container_json(r) for r in items], "next": following}


@bp.get("/usage/summary", responses={200: UsageSummary})
def usage_summary():
    """Counts by state and kind, and the CPU and memory reserved by live containers."""
    rows = containers.find(role="active", limit=100000)
    by_state, by_kind = {}, {}
    cpus, memory = 0.0, 0
    for row in rows:
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + 1
        res = row["resources"] or {}
        if row["state"] in ("running", "paused", "starting"):
            cpus += float(res.get("cpus") or 0)
            memory += int(res.get("memory") or 0)
    return {"containers": len(rows), "by_state": by_state, "by_kind": by_kind,
            "reserved_cpus": round(cpus, 3), "reserved_memory_bytes": memory}


@bp.get("/<ref>", responses={200: ContainerOut})
def get_container(path: ContainerPath):
    """One container by name or id (12+ characters of it); an instance with its startup
    phases."""
    row = lookups.container_or_404(path.ref)
    return {**views.container_json(row), "startup": views.startup_json(row["name"])}


def _lifecycle(verb: str, actor: str):
    def view(path: ContainerPath, query: WaitQuery):
        return container_job(f"{verb}_container", actor, lookups.container_or_404(path.ref), wait=query.wait)
    view.__name__ = f"{verb}_container"
    view.__doc__ = f"{verb.capitalize()} a container (a job)."
    return view


for _verb, _actor, _methods in (("start", messages.START_CONTAINER, ("post", "put")),
                                ("pause", messages.PAUSE_CONTAINER, ("post",)),
                                ("unpause", messages.UNPAUSE_CONTAINER, ("post",))):
    _view = _lifecycle(_verb, _actor)
    for _method in _methods:
        getattr(bp, _method)(f"/<ref>/{_verb}", responses=JOB,
                             operation_id=f"{_verb}_container_{_method}")(_view)


def _timeout(query_timeout):
    raw = request.get_json(silent=True) if request.data else None
    if raw is not None:
        return StopBody.model_validate(raw).timeout
    return query_timeout if query_timeout is not None else 10


def stop_container(path: ContainerPath, query: StopQuery):
    """Stop a container: SIGTERM, then SIGKILL after ``timeout`` seconds (a job)."""
    return container_job("stop_container", messages.STOP_CONTAINER, lookups.container_or_404(path.ref),
                         {"timeout": _timeout(query.timeout)}, query.wait)


def restart_container(path: ContainerPath, query: StopQuery):
    """Restart a container (a job)."""
    return container_job("restart_container", messages.RESTART_CONTAINER, lookups.container_or_404(path.ref),
                         {"timeout": _timeout(query.timeout)}, query.wait)


for _view, _verb in ((stop_container, "stop"), (restart_container, "restart")):
    for _method in ("post", "put"):
        getattr(bp, _method)(f"/<ref>/{_verb}", responses=JOB,
                             operation_id=f"{_verb}_container_{_method}")(_view)


@bp.post("/<ref>/kill", responses=JOB)
def kill_container(path: ContainerPath, query: WaitQuery):
    """Send a signal (default SIGKILL) to a container (a job)."""
    raw = request.get_json(silent=True) if request.data else None
    body = KillBody.model_validate(raw or {})
    return container_job("kill_container", messages.KILL_CONTAINER, lookups.container_or_404(path.ref),
                         {"signal": body.signal}, query.wait)


@bp.delete("/<ref>", responses=JOB)
def delete_container(path: ContainerPath, query: DeleteQuery):
    """Remove a container; ``force`` (query or body) removes a running one (a job)."""
    raw = request.get_json(silent=True) if request.data else None
    force = query.force if query.force is not None else DeleteBody.model_validate(
        raw or {}).force
    return container_job("remove_container", messages.REMOVE_CONTAINER, lookups.container_or_404(path.ref),
                         {"force": force}, query.wait)


@bp.patch("/<ref>/resources", responses=JOB)
def update_resources(path: ContainerPath, body: Resources, query: WaitQuery):
    """Change cpus, cpu_shares or memory of a running container live (a job)."""
    resources = body.normalised()
    if not resources:
        raise ApiError(422, "give at least one of cpus, cpu_shares, memory, pids_limit",
                       fields={"body": "empty"})
    return container_job("update_container_resources", messages.UPDATE_CONTAINER_RESOURCES,
                         lookups.container_or_404(path.ref), {"resources": resources}, query.wait)


@bp.get("/<ref>/logs", responses={200: ReadResult, 202: JobOut})
def container_logs(path: ContainerPath, query: LogsQuery):
    """The container's logs (a job, awaited); ``follow`` streams them (web.logs_api);
    ``previous`` reads the slot's last dead container (kept for it)."""
    row = lookups.container_or_404(path.ref)
    if query.previous:
        row = lookups.previous_of(row)
    if query.follow:
        return logs_api.follow_container(row, query.tail, query.since, query.timestamps)
    dispatch.require_docker(row["node"])
    job = dispatch.submit("read_container_logs", f"containers/{row['name']}",
                             messages.READ_CONTAINER_LOGS,
                             {"name": row["name"], "tail": query.tail,
                              "timestamps": query.timestamps, "since": query.since},
                             node=row["node"])
    return dispatch.read_result(job, dispatch.wait_seconds(query.wait, READ_WAIT))


@bp.post("/<ref>/exec", responses={200: ReadResult, 202: JobOut})
def exec_container(path: ContainerPath, body: ExecBody, query: WaitQuery):
    """Run a command in the container: its exit code and output (a job, awaited)."""
    row = lookups.container_or_404(path.ref)
    dispatch.require_docker(row["node"])
    job = dispatch.submit("exec_in_container", f"containers/{row['name']}",
                             messages.EXEC_IN_CONTAINER,
                             {"name": row["name"], "command": body.command}, node=row["node"])
    return dispatch.read_result(job, dispatch.wait_seconds(query.wait, READ_WAIT))


@bp.get("/<ref>/stats", responses={200: ReadResult, 202: JobOut})
def container_stats(path: ContainerPath, query: WaitQuery):
    """Live resource figures from the Engine API (a job, awaited)."""
    row = lookups.container_or_404(path.ref)
    dispatch.require_docker(row["node"])
    job = dispatch.submit("read_container_stats", f"containers/{row['name']}",
                             messages.READ_CONTAINER_STATS, {"name": row["name"]},
                             node=row["node"])
    return dispatch.read_result(job, dispatch.wait_seconds(query.wait, READ_WAIT))
