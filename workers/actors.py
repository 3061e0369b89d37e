"""Dramatiq actors: thin verb_noun functions taking a job id.

Each loads the job's arguments, acts on Docker through docker_ops, records what it
observed and one event, and returns the job's result. Every actor is idempotent: a
redelivered message after a worker died finds the work (partly) done and finishes it.
Run with ``dramatiq workers.actors --queues default node.<name>``.
"""
from __future__ import annotations

import logging

import dramatiq

import config
from db import containers, deployments, events, installation, jobs, secrets
from workers import deploy, docker_ops, labels, messages, sampler
from workers.record import record
from workers.broker import MAX_RETRIES, get_broker
from workers.docker_ops import NotFound, Permanent
from workers import testing  # noqa: F401 - its actors exist only with HARBORMASTER_TEST_HOOKS

log = logging.getLogger("harbormaster.actors")
broker = get_broker()
CFG = config.load()
broker.declare_queue(messages.node_queue(CFG.node_name))


def job_actor(fn):
    """A Dramatiq actor for one job kind: Permanent errors fail the job at once."""
    return dramatiq.actor(fn, actor_name=fn.__name__, queue_name=messages.DEFAULT_QUEUE,
                          throws=(Permanent,), max_retries=MAX_RETRIES)


def load(job_id: str) -> tuple[dict, dict]:
    job = jobs.get_with_args(job_id)
    return job, job["args"]


def target(args: dict) -> dict:
    row = containers.by_name(args["name"])
    if row is None or row["state"] == "removed" or not row["docker_id"]:
        raise NotFound(f"container {args['name']!r} not found")
    return row


def summary(row: dict) -> dict:
    return {"container_id": row["docker_id"], "name": row["name"], "state": row["state"],
            "ports": row["ports"]}


# --- create -----------------------------------------------------------------

@job_actor
def create_container(job_id: str):
    job, args = load(job_id)
    name = args["name"]
    row = containers.by_name(name)
    if row is None:
        raise Permanent(f"container {name!r} has no record (deleted before it was created?)")
    spec = row["spec"]
    cluster = installation.cluster_id()
    try:
        attrs = docker_ops.find(name)
        if attrs is not None and attrs["Config"]["Labels"].get(labels.CLUSTER) != cluster:
            raise Permanent(f"a container named {name!r} exists outside this installation")
        docker_id = attrs["Id"] if attrs is not None else None
        if attrs is None:
            docker_ops.ensure_image(spec["image"])
            network = deploy.network_name(cluster)
            docker_ops.ensure_network(network, {labels.CLUSTER: cluster})
            jobs.set_progress(job_id, 0, 2, "creating")
            env = dict(spec.get("env") or {})
            env.update(secrets.get(name))
            docker_id = docker_ops.create(
                name=name, image=spec["image"], command=spec.get("command"), env=env,
                labels=labels.for_container(cluster, "standalone", row["node"], name,
                                            spec["image"], spec.get("labels")),
                ports=spec.get("ports") or {}, resources=spec.get("resources") or {},
                security=spec.get("security") or {}, mounts=spec.get("mounts") or [],
                restart_policy=spec.get("restart_policy"), network=network)
            events.add("create", container=name, who=job["requested_by"],
                       detail={"job": job_id, "image": spec["image"]})
        created = record(name, docker_id)
        jobs.set_progress(job_id, 1, 2, "starting")
        if created is None or created["state"] != "running":
            containers.set_state(name, "starting")
            docker_ops.start(docker_id)
            events.add("start", container=name, who=job["requested_by"], detail={"job": job_id})
        row = record(name, docker_id)
        jobs.set_progress(job_id, 2, 2, "running")
        return summary(row)
    except Permanent as exc:
        containers.set_state(name, "error", error=str(exc))
        events.add("error", container=name, who=job["requested_by"],
                   detail={"job": job_id, "error": str(exc)})
        raise


# --- simple transitions -----------------------------------------------------

def _transition(job_id: str, verb: str, before_state: str | None, action) -> dict:
    job, args = load(job_id)
    row = target(args)
    if before_state:
        containers.set_state(row["name"], before_state)
    try:
        action(row["docker_id"], args)
    finally:
        row = record(row["name"], row["docker_id"]) or row
    events.add(verb, container=row["name"], deployment=row["deployment"],
               who=job["requested_by"], detail={"job": job_id, **args.get("detail", {})})
    return summary(row)


@job_actor
def start_container(job_id: str):
    return _transition(job_id, "start", "starting", lambda ref, a: docker_ops.start(ref))


@job_actor
def stop_container(job_id: str):
    return _transition(job_id, "stop", "stopping",
                       lambda ref, a: docker_ops.stop(ref, timeout=a.get("timeout", 10)))


@job_actor
def restart_container(job_id: str):
    return _transition(job_id, "restart", "starting",
                       lambda ref, a: docker_ops.restart(ref, timeout=a.get("timeout", 10)))


@job_actor
def kill_container(job_id: str):
    return _transition(job_id, "kill", "stopping",
                       lambda ref, a: docker_ops.kill(ref, signal=a.get("signal", "SIGKILL")))


@job_actor
def pause_container(job_id: str):
    return _transition(job_id, "pause", None, lambda ref, a: docker_ops.pause(ref))


@job_actor
def unpause_container(job_id: str):
    return _transition(job_id, "unpause", None, lambda ref, a: docker_ops.unpause(ref))


@job_actor
def update_container_resources(job_id: str):
    # the record made after the update reads the new limits back from Docker
    return _transition(job_id, "update_resources", None,
                       lambda ref, args: docker_ops.update(ref, args["resources"]))


@job_actor
def remove_container(job_id: str):
    job, args = load(job_id)
    row = containers.by_name(args["name"])
    if row is None or row["state"] == "removed":
        return {"name": args["name"], "removed": True}
    containers.set_state(row["name"], "removing")
    try:
        if row["docker_id"]:
            docker_ops.remove(row["docker_id"], force=bool(args.get("force")))
    except Permanent:
        # e.g. "cannot remove a running container" without force: back to what it is
        record(row["name"], row["docker_id"])
        raise
    containers.mark_gone(row["name"])
    secrets.delete(row["name"])
    events.add("remove", container=row["name"], deployment=row["deployment"],
               who=job["requested_by"], detail={"job": job_id, "force": bool(args.get("force"))})
    return {"container_id": row["docker_id"], "name": row["name"], "removed": True}


# --- reads that need Docker -------------------------------------------------

@job_actor
def read_container_logs(job_id: str):
    _, args = load(job_id)
    row = target(args)
    text = docker_ops.logs(row["docker_id"], tail=args.get("tail"),
                           timestamps=bool(args.get("timestamps")), since=args.get("since"))
    cap = CFG.result_cap_bytes - 512
    truncated = len(text.encode()) > cap
    if truncated:  # keep the newest lines: the end of a log is what people look for
        text = text.encode()[-cap:].decode("utf-8", errors="replace")
    return {"name": row["name"], "logs": text, "truncated": truncated}


@job_actor
def exec_in_container(job_id: str):
    job, args = load(job_id)
    row = target(args)
    exit_code, output = docker_ops.exec_run(row["docker_id"], args["command"])
    events.add("exec", container=row["name"], deployment=row["deployment"],
               who=job["requested_by"], detail={"job": job_id, "exit_code": exit_code})
    cap = CFG.result_cap_bytes - 512
    return {"name": row["name"], "exit_code": exit_code,
            "output": output[-cap:], "truncated": len(output) > cap}


@job_actor
def read_container_stats(job_id: str):
    _, args = load(job_id)
    row = target(args)
    raw = docker_ops.stats(row["docker_id"])
    return {"name": row["name"], **sampler.engine_summary(raw)}


# --- deployments ------------------------------------------------------------

@job_actor
def reconcile_deployment(job_id: str):
    """Converge one deployment (requests: create, scale, update, restart, rollback, delete)."""
    _, args = load(job_id)
    result = deploy.reconcile(args["deployment"], job_id=job_id)
    if args.get("desired_version") is not None:
        # this request's version (a later request may have raised the current one)
        result["current_desired_version"] = result.get("desired_version")
        result["desired_version"] = args["desired_version"]
    if args.get("requested_generation") is not None:
        # the generation this request created; "generation" may be past it (a rollback)
        result["requested_generation"] = args["requested_generation"]
    return result


@dramatiq.actor(actor_name=messages.RECONCILE, queue_name=messages.DEFAULT_QUEUE, max_retries=0)
def reconcile(deployment: str):
    """A trigger without a job (agent events, the scheduler's backstop, backoff timers)."""
    deploy.reconcile(deployment)


@job_actor
def update_deployment_resources(job_id: str):
    """Apply a deployment's resources to every running instance, live."""
    _, args = load(job_id)
    dep = deployments.get(args["deployment"])
    if dep is None:
        raise NotFound(f"deployment {args['deployment']!r} not found")
    rows = [r for r in containers.find(deployment=dep["name"], limit=10000)
            if r["docker_id"] and r["state"] in ("running", "paused", "created")]
    for index, row in enumerate(rows, 1):
        docker_ops.update(row["docker_id"], dep["resources"])
        record(row["name"], row["docker_id"])  # the limits it now runs with
        jobs.set_progress(job_id, index, len(rows), f"{index}/{len(rows)} instances updated")
    return {"deployment": dep["name"], "updated": [r["name"] for r in rows],
            "resources": dep["resources"]}


@dramatiq.actor(actor_name=messages.CLEANUP, queue_name=messages.DEFAULT_QUEUE, max_retries=0)
def cleanup():
    """Remove what nobody needs any more; prune old records. Standalone containers are
    never touched."""
    from workers import cleanup as sweep  # noqa: PLC0415 - keeps this module's imports small
    sweep.run()


# --- health -------------------------------------------------------------------

@dramatiq.actor(actor_name=messages.SAMPLE_NODE, queue_name=messages.DEFAULT_QUEUE,
                max_retries=0, max_age=60000)
def sample_node(node: str):
    """One health sweep of this node's instances (sent by the scheduler)."""
    from workers import sweep  # noqa: PLC0415
    result = sweep.sweep(node)
    log.info("sweep of %s: %s", node, result)


@dramatiq.actor(actor_name=messages.MEASURE_DISK, queue_name=messages.DEFAULT_QUEUE,
                max_retries=0, max_age=60000)
def measure_disk(node: str):
    from workers import sweep  # noqa: PLC0415
    sweep.measure_disk(node)


@dramatiq.actor(actor_name=messages.EVALUATE_AUTOSCALING, queue_name=messages.DEFAULT_QUEUE,
                max_retries=0, max_age=30000)
def evaluate_autoscaling():
    """One evaluation of every enabled scaling policy (sent by the scheduler)."""
    from workers import autoscaler  # noqa: PLC0415
    for decision in autoscaler.evaluate_all():
        log.info("autoscale %s", decision)
