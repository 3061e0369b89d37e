"""A deployment's instances as the planner sees them: what every node's agent and executor
recorded (observed state is keyed by node and Docker id), incarnations reserved before
their node's executor is asked, and slot failures counted.

An instance is named ``<deployment>-<slot>.<incarnation>`` (core.naming). The incarnation
is reserved in Postgres, with a row in state ``creating``, before the node's executor is
asked: a create repeated (a redelivered message, a worker that died) reuses the name and
adopts what Docker has. A reservation no executor ever took up is dropped after the job
time limit and its slot created again.
"""
from __future__ import annotations

from datetime import datetime, timezone

import config
from core import backoff, naming, spec as specs, startup as phases
from core.plan import is_ready
from core.plan_types import Action, Desired, Instance
from db import containers, events, pool, slots, startup


def observed(dep: dict, wanted: list[int], cfg: config.Config) -> list[Instance]:
    """The deployment's containers on every node, as recorded; reservations nobody will use
    any more are dropped."""
    out = []
    stale_after = cfg.job_time_limit + cfg.redelivery_window
    now = datetime.now(timezone.utc)
    for row in containers.find(deployment=dep["name"], limit=10000):
        if row["state"] == "creating" and not row["docker_id"]:
            age = (now - row["created_at"]).total_seconds()
            if (row["generation"] != dep["generation"] or dep["deleting"]
                    or row["slot"] not in wanted or age > stale_after):
                containers.abandon_request(row["name"])
                continue
        out.append(Instance(
            name=row["name"], slot=row["slot"] if row["slot"] is not None else -1,
            generation=row["generation"] or 0, state=row["state"],
            started_at=row["started_at"].timestamp() if row["started_at"] else None,
            health=row["health"], exit_code=row["exit_code"], draining=row["draining"],
            role=row["role"], node=row["node"], resources=row["resources"] or {}))
    return out


def reserve(dep: dict, action: Action) -> dict:
    """The create action with its instance's name and incarnation: the slot's pending
    reservation for that generation and node, or the slot's next incarnation."""
    pending = containers.reservation(dep["name"], action.slot, action.generation)
    if pending is not None and pending["node"] == action.node and pending["role"] == action.role:
        return {"name": pending["name"], "incarnation": pending["incarnation"]}
    spec = specs.of_template(dep["template"], dep["resources"])
    with pool.connection() as conn:
        incarnation = slots.reserve_incarnation(dep["name"], action.slot, conn)
        name = naming.instance_name(dep["name"], action.slot, incarnation)
        containers.request(name, "deployment", action.node, spec.image, spec.as_dict(),
                           spec.labels, conn, deployment=dep["name"], slot=action.slot,
                           generation=action.generation, incarnation=incarnation,
                           role=action.role)
        startup.plan(name, dep["name"], action.node, conn)   # its startup begins
    return {"name": name, "incarnation": incarnation}


def record_failure(dep: dict, action: Action) -> None:
    """Count a slot's failure and when it may start again (core.backoff's rule)."""
    row = containers.by_name(action.name)
    uptime = None
    if row and row["started_at"] and row["finished_at"]:
        uptime = (row["finished_at"] - row["started_at"]).total_seconds()
    restart = dep["restart"]
    after = backoff.after_failure(slots.failures(dep["name"], action.slot), uptime,
                                  restart.get("backoff_initial", 10),
                                  restart.get("backoff_max", 300),
                                  restart.get("reset_after", 600))
    slots.record_failure(dep["name"], action.slot, after.failures, after.delay)
    events.add("backoff", container=action.name, deployment=dep["name"],
               detail={"slot": action.slot, "failures": after.failures,
                       "delay": round(after.delay, 3), "reason": action.reason})



def mark_stale(dep: dict, inst: Instance) -> None:
    """An instance on a node that is not ready whose slot now runs elsewhere: its node's
    worker removes it when the node comes back."""
    containers.set_role(inst.name, "stale")
    events.add("stale", container=inst.name, deployment=dep["name"],
               detail={"slot": inst.slot, "node": inst.node})


def record_ready(dep: dict, d: Desired, observed: list[Instance], now: float,
                 cfg: config.Config) -> None:
    """Instances ready for the first time end their startup: ready when their health check
    passed (the prober wakes the planner at once) or their monitor time after they started.
    A warm pool member's startup ends when it is ready once, before its pause.
    A planned-to-ready past HARBORMASTER_SLOW_START is a slow_start event."""
    moments = []
    for inst in observed:
        if inst.role in ("active", "warm") and is_ready(inst, d, now):
            at = now if d.has_health_check or inst.started_at is None \
                else min(now, inst.started_at + d.monitor)
            moments.append((inst.name, at))
    for row in startup.ready(moments):
        total = row["phases"]["total"]
        if phases.is_slow(total, cfg.slow_start):
            events.add("slow_start", container=row["container"], deployment=dep["name"],
                       detail={"seconds": round(total, 3), "limit": cfg.slow_start,
                               "node": row["node"], "pulled": row["pulled"],
                               "phases": {k: round(v, 3) for k, v in row["phases"].items()}})
