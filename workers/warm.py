"""The warm pool's Docker work on a member's node (issue 18): the executor's ``pause``,
``to_pool`` and ``wake`` actions (core.pool plans them).

Role ``warm``: no replica, not in discovery, counted, sampled or probed while paused, billed
as paused (docs/architecture.md). The role, never Docker's state, decides: a member is woken
by unpausing it, checking its health once here (the agent's prober would take up to an
interval), and only then made ``active`` and put in discovery.
"""
from __future__ import annotations

import time

import config
from db import containers, deployments, events, registry
from workers import docker_ops, probes
from workers.docker_ops import Transient
from workers.record import record

WAKE_CHECK_EVERY = 0.05   # seconds between a woken member's health checks


def pause(dep: dict, action: dict, cfg: config.Config) -> None:
    """A member ready once (its check passed, or its monitor elapsed) is frozen."""
    row = containers.by_name(action["name"])
    if row is None or not row["docker_id"] or row["role"] != "warm":
        return
    if row["state"] != "paused":
        docker_ops.pause(row["docker_id"])
    record(row["name"], row["docker_id"])
    events.add("warm_paused", container=row["name"], deployment=dep["name"],
               detail={"slot": row["slot"], "node": cfg.node_name,
                       "reason": action["reason"]})


def to_pool(dep: dict, action: dict, cfg: config.Config) -> None:
    """Scale-down into the pool: out of discovery, the drain delay, then frozen."""
    row = containers.by_name(action["name"])
    if row is None or not row["docker_id"]:
        return
    containers.set_role(row["name"], "warm")
    registry.sync_deployment(dep["name"])   # out of discovery before the drain delay
    delay = dep["update_strategy"].get("drain_delay")
    delay = cfg.drain_delay if delay is None else delay
    if delay > 0 and action.get("graceful", True):
        time.sleep(delay)
    if row["state"] != "paused":
        docker_ops.pause(row["docker_id"])
    record(row["name"], row["docker_id"])
    events.add("warm_returned", container=row["name"], deployment=dep["name"],
               detail={"slot": row["slot"], "node": cfg.node_name,
                       "reason": action["reason"]})


def wake(dep: dict, action: dict, cfg: config.Config) -> None:
    """Scale-up from the pool: unpause, one health check passes, then active and in
    discovery. A member whose check does not pass stays warm, marked unhealthy (the planner
    removes it and fills its slot cold)."""
    row = containers.by_name(action["name"])
    if row is None or not row["docker_id"]:
        return
    began = time.monotonic()
    if row["state"] == "paused":
        docker_ops.unpause(row["docker_id"])
        # thawed: the same process, ports and start as recorded (the agent records the
        # unpause event too); no inspect on the way to discovery
        row = containers.set_state(row["name"], "running")
    else:
        if row["state"] == "created":
            docker_ops.start(row["docker_id"])
        row = record(row["name"], row["docker_id"])
    unpaused = time.monotonic()
    if row is None or row["state"] != "running":
        raise Transient(f"{action['name']} is not running after its wake")
    check = health_check_of(dep, row["generation"])
    if check:
        passed, error = check_once(check, row, float(check.get("timeout", 2)) * 2)
        if not passed:
            containers.set_health(row["name"], "unhealthy", {"error": error, "woken": True})
            why = f"{row['name']} woken from the warm pool failed its health check: {error}"
            events.add("warm_wake_failed", container=row["name"], deployment=dep["name"],
                       detail={"slot": row["slot"], "node": cfg.node_name, "reason": why})
            raise Transient(why)
        containers.set_health(row["name"], "healthy", {"successes": 1, "woken": True})
    containers.set_role(row["name"], "active")
    registry.sync_deployment(dep["name"])
    events.add("warm_woken", container=row["name"], deployment=dep["name"],
               detail={"slot": row["slot"], "node": cfg.node_name, "reason": action["reason"],
                       "unpause_ms": round((unpaused - began) * 1000, 1),
                       "ready_ms": round((time.monotonic() - began) * 1000, 1)})


def health_check_of(dep: dict, generation: int | None) -> dict | None:
    revision = deployments.revision(dep["name"], generation) if generation else None
    return ((revision or {}).get("template") or dep["template"]).get("health_check")


def check_once(check: dict, row: dict, within: float) -> tuple[bool, str | None]:
    """The member's check until it passes once, for at most ``within`` seconds (a process
    just thawed may need a moment before its socket answers)."""
    deadline = time.monotonic() + within
    while True:
        passed, error = probes.run(check, row)
        if passed or time.monotonic() >= deadline:
            return passed, error
        time.sleep(WAKE_CHECK_EVERY)
