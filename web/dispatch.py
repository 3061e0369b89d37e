"""Turning a request into a job: record desired state and the job in one transaction,
send the message (the outbox relay re-sends it if Redis is down), answer 202.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext

from db import jobs, nodes, pool
import validation
from web import auth
from web.errors import ApiError, unavailable
from web.waiter import waiter
from web.context import settings
from workers import messages

log = logging.getLogger("harbormaster.dispatch")


def docker_problem(node: str, row: dict | None) -> str | None:
    """Why Docker on ``node`` cannot be used now, judged from its heartbeat row, or None."""
    if row is None:
        return f"node {node!r} has no heartbeat yet (is its agent running?)"
    if row["age"] > settings().heartbeat_stale_after:
        return f"node {node!r} heartbeat is {row['age']:.0f} s old"
    if not row["docker_ok"]:
        return f"node {node!r}: {row['docker_error']}"
    if row["status"] != "ready":
        return f"node {node!r} is {row['status']}"
    return None


def require_docker(node: str) -> None:
    """503 naming Docker when the node's heartbeat says Docker is down or is stale."""
    problem = docker_problem(node, nodes.get(node))
    if problem is not None:
        raise unavailable("docker", problem)


def require_a_ready_node() -> None:
    """503 only when no node at all is ready (the planner places what it can)."""
    rows = nodes.all_nodes()
    problems = [docker_problem(row["name"], row) for row in rows]
    if not rows or all(problems):
        raise unavailable("docker", "; ".join(problems) or "no node has registered yet (is an "
                                                           "agent running?)")


def submit(kind: str, target: str, actor: str, args: dict, node: str | None = None,
           write=None, args_after_write=None, pipelined: bool = False) -> dict:
    """Create the job and send its message (Idempotency-Key is web.idempotency's concern).

    ``write(conn)`` records desired state in the job's transaction; it may raise ApiError
    to refuse the request (nothing is written then). ``pipelined``: the transaction's
    statements go in psycopg's pipeline mode (a statement whose result is not read goes with
    the next one, in one round trip), for a ``write`` that reads every result it relies on.
    The job row says it is sent: its message goes right after the commit (and the row is
    corrected if Redis refuses it).
    """
    who = auth.caller_name()
    queue = messages.node_queue(node) if node else messages.DEFAULT_QUEUE
    with pool.connection() as conn, (conn.pipeline() if pipelined else nullcontext()):
        if write is not None:
            write(conn)
        if args_after_write is not None:  # values the write assigned (e.g. a version)
            args = {**args, **args_after_write()}
        job = jobs.create(kind, target, actor, queue, args, who, conn=conn, sent=True)
    messages.send_job_or_leave(job)  # committed: the outbox relay sends it if Redis is down
    return job


def submit_deployment_job(name: str, kind: str, write=None,
                          requested: dict | None = None) -> dict:
    """A reconcile job for a deployment (``write`` records the desired change with it).

    ``requested`` is filled by ``write`` with the generation the request created: it goes
    into the job's args, and the job's result says it as ``requested_generation`` (an
    automatic rollback during the job moves ``generation`` past it).
    """
    require_a_ready_node()
    return submit(kind, f"deployments/{name}", messages.RECONCILE_DEPLOYMENT,
                  {"deployment": name}, write=write,
                  args_after_write=lambda: dict(requested or {}))


def wait_seconds(raw: str | None, default: float = 0.0) -> float:
    if raw is None or raw == "":
        return default
    try:
        seconds = validation.parse_duration(raw)
    except ValueError as exc:
        raise ApiError(422, str(exc), fields={"wait": str(exc)}) from None
    return min(seconds, settings().wait_cap)


def wait_for_job(job: dict, seconds: float) -> dict:
    """The job once it has ended, or as it is when ``seconds`` run out."""
    job_id = str(job["id"])
    if job["status"] in jobs.TERMINAL or seconds <= 0:
        return job
    latest = {"job": job}

    def ended():
        latest["job"] = jobs.get(job_id) or latest["job"]
        return latest["job"]["status"] in jobs.TERMINAL

    waiter.wait_for(job_id, ended, seconds)
    return latest["job"]


def job_json(job: dict) -> dict:
    return {
        "id": str(job["id"]), "kind": job["kind"], "target": job["target"],
        "status": job["status"], "progress": job["progress"], "result": job["result"],
        "error": job["error"], "attempts": job["attempts"],
        "requested_by": job["requested_by"], "created_at": job["created_at"].isoformat(),
        "started_at": job["started_at"].isoformat() if job["started_at"] else None,
        "finished_at": job["finished_at"].isoformat() if job["finished_at"] else None,
    }


def accepted(job: dict, wait: str | None = None):
    """202 with the job and its Location; with ?wait=, once it ended (or the wait ran out)."""
    job = wait_for_job(job, wait_seconds(wait))
    status = 200 if job["status"] in jobs.TERMINAL and wait else 202
    return job_json(job), status, {"Location": f"/api/jobs/{job['id']}"}


def failure_status(job: dict) -> int:
    """The HTTP status that best explains a failed job to the caller."""
    error = job.get("error") or ""
    if error.startswith("NotFound"):
        return 404
    if error.startswith("Permanent"):
        return 409
    return 502


def read_result(job: dict, seconds: float):
    """Await a Docker read (logs, exec, stats) and answer its result with 200."""
    job = wait_for_job(job, seconds)
    if job["status"] == "succeeded":
        return job["result"] or {}, 200
    if job["status"] in jobs.TERMINAL:
        raise ApiError(failure_status(job), job["error"] or "the job failed")
    return job_json(job), 202, {"Location": f"/api/jobs/{job['id']}"}
