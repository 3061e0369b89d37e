"""A pass's node jobs: each node's share of a deployment's pass sent to its queue as a job
(the incarnations of its creates reserved first), waited for (at most a minute; a node
declared down ends the wait), and read back as what Docker refused, permanent or not."""
from __future__ import annotations

import time

from core.plan_types import Action
from db import jobs, nodes
from workers import instances, messages
from workers.docker_ops import Permanent, Transient

NODE_JOB_WAIT = 60.0      # the longest a pass waits for a node's executor


def submit_node_job(dep: dict, node: str, epoch: int, node_actions: list[Action]) -> dict:
    payload = []
    for action in node_actions:
        entry = {"kind": action.kind, "slot": action.slot, "name": action.name,
                 "generation": action.generation, "reason": action.reason,
                 "graceful": action.graceful}
        if action.kind == "create":
            entry.update(instances.reserve(dep, action), role=action.role)
        payload.append(entry)
    job = jobs.create("node_actions", f"nodes/{node}", messages.EXECUTE_ON_NODE,
                      messages.node_queue(node), {"node": node, "epoch": epoch,
                                                  "deployment": dep["name"],
                                                  "actions": payload}, "reconciler")
    messages.send_job_or_leave(job)
    return job


def wait_for_node_job(job: dict, node: str, wait: float = NODE_JOB_WAIT) -> dict:
    """The node job once ended, or as it is when its node is declared down or the wait
    runs out (its reservations hold their slots meanwhile)."""
    deadline = time.monotonic() + wait
    checked = time.monotonic()
    while True:
        row = jobs.get(str(job["id"]))
        if row["status"] in jobs.TERMINAL or time.monotonic() > deadline:
            return row
        if time.monotonic() - checked > 1.0:
            checked = time.monotonic()
            state = nodes.get(node)
            if state is None or state["status"] != "ready":
                return row
        time.sleep(0.05)


def outcome(job: dict, node_actions: list[Action]) -> list[tuple[Action, Exception]]:
    """The actions a node job refused, with Permanent or Transient errors as Docker's."""
    if job["status"] == "succeeded":
        refused = {(r["kind"], r["slot"]): r for r in (job["result"] or {}).get("refused", [])}
        return [(a, (Permanent if r["permanent"] else Transient)(r["error"]))
                for a in node_actions if (r := refused.get((a.kind, a.slot)))]
    if job["status"] in jobs.TERMINAL:
        error = job["error"] or job["status"]
        kind = Permanent if error.startswith(("Permanent", "Fenced", "NotFound")) else Transient
        return [(a, kind(error)) for a in node_actions]
    return [(a, Transient(f"still running on its node ({job['status']})"))
            for a in node_actions]
