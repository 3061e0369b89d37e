"""Kept instances: a deployment's dead (or failing) instance stays, stopped, so that
``logs --previous`` can read it (kubectl's previous container), until the next one of its
slot dies or ``HARBORMASTER_KEPT_INSTANCE_AGE`` passes (workers.cleanup).

Role ``kept``: no replica, not in discovery, sampled or counted anywhere (docs/architecture.md).
The slot records its last exit: the kept container, its exit code and why it ended (exited,
OOM killed, health check failed), as Docker's State says.
"""
from __future__ import annotations

import time

import config
from db import containers, events, registry, slots
from workers import docker_ops
from workers.docker_ops import NotFound
from workers.record import record

LIVE = ("running", "paused", "starting", "created")


def keep_instance(dep: dict, action: dict, cfg: config.Config) -> None:
    """Run by the executor of the instance's node (the planner's ``keep`` action)."""
    name = action["name"]
    row = containers.by_name(name)
    if row is None:
        return
    if not row["docker_id"]:
        containers.abandon_request(name)   # reserved, never created: nothing to keep
        return
    if row["state"] in LIVE:   # failing its health check: out of discovery, stopped now
        containers.set_draining(name, True)
        registry.sync_deployment(dep["name"])
        try:
            docker_ops.stop(row["docker_id"], timeout=0)
        except NotFound:
            pass
    found = docker_ops.find(row["docker_id"])
    if found is None:
        containers.mark_gone(name)
        return
    state = found.get("State") or {}
    reason = ("OOM killed" if state.get("OOMKilled")
              else "health check failed" if row["health"] == "unhealthy" else "exited")
    slots.record_exit(dep["name"], row["slot"], name, state.get("ExitCode"), reason)
    previous = containers.kept_of(dep["name"], row["slot"])
    containers.set_role(name, "kept")
    record(name, row["docker_id"])
    events.add("instance_kept", container=name, deployment=dep["name"],
               detail={"slot": row["slot"], "exit_code": state.get("ExitCode"),
                       "reason": reason, "node": cfg.node_name})
    if previous is not None and previous["name"] != name and previous["node"] == cfg.node_name:
        remove(previous, f"the slot's next container {name} was kept")
    # one on another node is removed by that node's cleanup (superseded)


def superseded(cfg: config.Config, now: float | None = None) -> list[tuple[dict, str]]:
    """This node's kept containers that go: not their slot's newest, or older than the
    kept age (from when they stopped)."""
    now = time.time() if now is None else now
    rows = containers.kept_everywhere()
    newest: dict = {}
    for row in rows:
        key = (row["deployment"], row["slot"])
        if key not in newest or (row["incarnation"] or 0) > (newest[key]["incarnation"] or 0):
            newest[key] = row
    out = []
    for row in rows:
        if row["node"] != cfg.node_name:
            continue
        if newest[(row["deployment"], row["slot"])]["name"] != row["name"]:
            out.append((row, "a newer container of its slot is kept"))
        elif row["finished_at"] and now - row["finished_at"].timestamp() >= cfg.kept_instance_age:
            out.append((row, f"kept {cfg.kept_instance_age:.0f}s"))
    return out


def remove(row: dict, reason: str) -> None:
    docker_ops.remove(row["docker_id"], force=True)
    containers.mark_gone(row["name"])
    events.add("kept_removed", container=row["name"], deployment=row["deployment"],
               detail={"slot": row["slot"], "reason": reason})
