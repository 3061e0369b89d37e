"""Dramatiq actors: thin verb_noun functions taking a job id.

Each loads the job's arguments, acts on Docker through docker_ops, records what it
observed and one event, and returns the job's result. Every actor is idempotent: a
redelivered message after a worker died finds the work (partly) done and finishes it.
Run with ``dramatiq workers.runtime:setup workers.actors --queues default node.<name>``
(the setup builds the broker these actors bind to).
"""
from __future__ import annotations

import functools
import logging

import dramatiq

from core import naming
from core.spec import ContainerSpec
from core.stats import engine_summary
from db import containers, events, installation, jobs, secrets
from workers import (autoscaler, cleanup, converge, create, docker_ops, executor, fleet, messages,
                     metering, runtime, sweep)
from workers import testing  # noqa: F401 - its actors exist only with HARBORMASTER_TEST_HOOKS
from workers.broker import MAX_RETRIES
from db.pool import Unavailable
from workers.docker_ops import DockerError, NotFound, Permanent
from workers.record import record

log = logging.getLogger("harbormaster.actors")


def job_actor(fn=None, **options):
    """A Dramatiq actor for one job kind: Permanent errors fail the job at once."""
    if fn is None:
        return functools.partial(job_actor, **options)
    return dramatiq.actor(fn, actor_name=fn.__name__, queue_name=messages.DEFAULT_QUEUE,
                          throws=(Permanent,), max_retries=MAX_RETRIES, **options)


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


def periodic(actor_name: str, max_age_ms: int | None = None):
    """A periodic actor: the next round comes anyway, so an engine or a database that is
    away skips this one with a warning (not an error with its traceback every round)."""
    def declare(fn):
        @functools.wraps(fn)
        def run(*args):
            try:
                return fn(*args)
            except (DockerError, Unavailable) as exc:
                log.warning("%s skipped: %s", actor_name, exc)
        return dramatiq.actor(run, actor_name=actor_name, queue_name=messages.DEFAULT_QUEUE,
                              max_retries=0, max_age=max_age_ms)
    return declare


# --- create -----------------------------------------------------------------

@job_actor
def create_container(job_id: str):
    job, args = load(job_id)
    name = args["name"]
    row = containers.by_name(name)
    if row is None or row["state"] == "removed":
        # deleted while this create waited for a retry (an engine away): not made again
        raise Permanent(f"container {name!r} was deleted before it was created")
    spec = ContainerSpec.from_dict(row["spec"])
    labels = naming.container_labels(installation.cluster_id(), "standalone", row["node"],
                                      name, spec.image, spec.labels)
    jobs.set_progress(job_id, 0, 1, "creating")
    try:
        created = create.create_and_start(name, spec, labels, secrets_owner=name)
    except Permanent as exc:
        containers.set_state(name, "error", error=str(exc))
        events.add("error", container=name, who=job["requested_by"],
                   detail={"job": job_id, "error": str(exc)})
        raise
    if created.fresh:
        events.add("create", container=name, who=job["requested_by"],
                   detail={"job": job_id, "image": spec.image})
    events.add("start", container=name, who=job["requested_by"], detail={"job": job_id})
    jobs.set_progress(job_id, 1, 1, "running")
    return summary(created.row or row)


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
    cap = runtime.settings().result_cap_bytes - 512
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
    cap = runtime.settings().result_cap_bytes - 512
    return {"name": row["name"], "exit_code": exit_code,
            "output": output[-cap:], "truncated": len(output) > cap}


@job_actor
def read_container_stats(job_id: str):
    _, args = load(job_id)
    row = target(args)
    raw = docker_ops.stats(row["docker_id"])
    return {"name": row["name"], **engine_summary(raw)}


# --- deployments ------------------------------------------------------------

@job_actor
def reconcile_deployment(job_id: str):
    """Converge one deployment (requests: create, scale, update, restart, rollback, delete)."""
    _, args = load(job_id)
    result = converge.converge(args["deployment"], runtime.settings(), job_id=job_id)
    requested = args.get("requested_generation")
    failure = converge.rollout_failure(args["deployment"], requested) if requested else None
    if failure:
        raise converge.NotConverged(failure)
    if args.get("desired_version") is not None:
        # this request's version (a later request may have raised the current one)
        result["current_desired_version"] = result.get("desired_version")
        result["desired_version"] = args["desired_version"]
    if args.get("requested_generation") is not None:
        # the generation this request created; "generation" may be past it (a rollback)
        result["requested_generation"] = args["requested_generation"]
    return result


@periodic(messages.CONVERGE_DEPLOYMENT)
def converge_deployment(deployment: str):
    """A trigger without a job (agent events, the scheduler's backstop, backoff timers)."""
    converge.converge(deployment, runtime.settings())


# --- nodes ------------------------------------------------------------------------

@job_actor
def execute_on_node(job_id: str):
    """A node's share of a deployment's pass, on that node's queue (workers.executor)."""
    _, args = load(job_id)
    return executor.run(args, runtime.settings())


# the drain enforces its own deadline (and a margin after it for the stops): the global
# time limit (HARBORMASTER_JOB_TIME_LIMIT) would kill a long drain halfway
@job_actor(time_limit=(messages.MAX_DRAIN_DEADLINE + 3600) * 1000)
def drain_node(job_id: str):
    """Every instance off a node, start-first; ends when the drained containers exited."""
    _, args = load(job_id)
    return fleet.drain(job_id, args, runtime.settings())


@job_actor
def reclaim_node(job_id: str):
    """A node back from down: its stale instances go, the rest are adopted; then ready."""
    _, args = load(job_id)
    return fleet.reclaim(args, runtime.settings())


# --- periodic work (sent by the scheduler; no job rows) ------------------------------------

@periodic(messages.CLEANUP)
def cleanup_node():
    """Remove what nobody needs any more on this node; prune old records. Standalone
    containers are never touched."""
    cleanup.run(runtime.settings())


@periodic(messages.CHECK_NODES, max_age_ms=10000)
def check_nodes():
    """Declare down the nodes that are; start the return of those that came back."""
    for change in fleet.check_nodes(runtime.settings()):
        log.info("node %s", change)


@periodic(messages.SWEEP_JOBS, max_age_ms=60000)
def sweep_jobs():
    """Fail the jobs that can no longer end by themselves, saying why."""
    cfg = runtime.settings()
    window = cfg.job_time_limit + cfg.redelivery_window + 30.0
    for row in jobs.fail_abandoned(running_for=window, max_sends=messages.MAX_SENDS):
        log.warning("job %s failed by the sweeper: %s", row["id"], row["error"])


@periodic(messages.SAMPLE_NODE, max_age_ms=60000)
def sample_node(node: str):
    """One health sweep of this node's instances."""
    log.info("sweep of %s: %s", node, sweep.sweep(node, runtime.settings()))


@periodic(messages.MEASURE_DISK, max_age_ms=60000)
def measure_disk(node: str):
    sweep.measure_disk(node)


@periodic(messages.EVALUATE_AUTOSCALING, max_age_ms=30000)
def evaluate_autoscaling(deployment: str | None = None, trigger: str = "tick"):
    """One evaluation of every enabled scaling policy (the scheduler's tick), or of one
    deployment's at once (a sweep or a metric report found it over target)."""
    for decision in autoscaler.evaluate_all(runtime.settings(), deployment, trigger):
        log.info("autoscale %s", decision)


@periodic(messages.ROLLUP_USAGE, max_age_ms=60000)
def rollup_usage():
    """Usage metering: the open periods' rows brought up to date, the ended ones closed."""
    log.info("usage rollup: %s", metering.rollup(runtime.settings()))


from workers import image_actors  # noqa: E402,F401 - declares the image actors (they use the helpers above)
