"""Node loss and return.

check_nodes (the scheduler sends it every heartbeat interval): a node whose heartbeat is
older than HARBORMASTER_NODE_DOWN_AFTER, or whose heartbeats have said Docker is unusable
for that long, is declared down: its epoch goes up (work planned before is dropped by its
executor), its queued jobs fail saying so, its instances are unknown and leave discovery at
once, and every deployment with slots there is looked at (the planner places those slots
on other ready nodes: ``rescheduled``). A down node that heartbeats again with Docker usable
is ``returning``: its own worker removes its stale instances (slots now placed elsewhere,
deployments gone) and adopts the others (reclaim), and only then is it ready again and
takes new work.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import config
from core import naming, observe
from db import containers, deployments, events, installation, jobs, nodes, registry, slots
from workers import docker_ops, messages
from workers.record import record

log = logging.getLogger("harbormaster.fleet")


def silent_for(row: dict) -> float:
    """How long the node has not been usable: since its last heartbeat, or since its
    heartbeats began to say Docker is down."""
    silent = float(row["age"])
    if row["docker_down_since"] is not None:
        down = (datetime.now(timezone.utc) - row["docker_down_since"]).total_seconds()
        silent = max(silent, down)
    return silent


def check_nodes(cfg: config.Config) -> list[str]:
    """Declare down the nodes that are, start the return of those that came back."""
    changed = []
    for row in nodes.all_nodes():
        if row["status"] == "ready" and silent_for(row) > cfg.node_down_after:
            declare_down(row, cfg)
            changed.append(f"{row['name']} down")
        elif row["status"] in ("down", "returning") and row["age"] <= \
                cfg.heartbeat_stale_after and row["docker_ok"]:
            if row["status"] == "down":
                nodes.set_status(row["name"], "returning", only_from="down")
                events.add("node_returning", detail={"node": row["name"]})
                changed.append(f"{row['name']} returning")
            if not jobs.find(status="queued", kind="reclaim_node", target=f"nodes/{row['name']}",
                             limit=1) and not jobs.find(status="running", kind="reclaim_node",
                                                        target=f"nodes/{row['name']}", limit=1):
                submit_reclaim(row)
    return changed


def declare_down(row: dict, cfg: config.Config) -> None:
    name = row["name"]
    down = nodes.declare_down(name)
    if down is None:
        return  # declared by another pass meanwhile
    reason = (f"no heartbeat for {row['age']:.0f}s" if row["age"] > cfg.node_down_after
              else f"Docker unusable: {row['docker_error']}")
    failed = jobs.fail_queued_on(messages.node_queue(name), f"node {name} is down")
    nodes.mark_instances_unknown(name)
    affected = deployments.with_slots_or_instances_on(name)
    for deployment in affected:
        registry.sync_deployment(deployment)  # its endpoints leave discovery now
        messages.send(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE, (deployment,))
    events.add("node_down", detail={"node": name, "epoch": down["epoch"], "reason": reason,
                                    "failed_jobs": len(failed), "deployments": affected})
    log.warning("node %s is down (%s): epoch %s", name, reason, down["epoch"])


def submit_reclaim(row: dict) -> None:
    job = jobs.create("reclaim_node", f"nodes/{row['name']}", messages.RECLAIM_NODE,
                      messages.node_queue(row["name"]),
                      {"node": row["name"], "epoch": row["epoch"]}, "fleet")
    messages.send_job_or_leave(job)


def reclaim(args: dict, cfg: config.Config) -> dict:
    """On the node back from down (its own worker): stale instances go, the rest are
    adopted; then the node is ready for new work."""
    if args["node"] != cfg.node_name:
        raise docker_ops.Permanent(f"reclaim of {args['node']} reached {cfg.node_name}")
    cluster = installation.cluster_id()
    removed, adopted = [], []
    for entry in docker_ops.list_containers({naming.CLUSTER: cluster,
                                            naming.NODE: cfg.node_name}):
        name = observe.list_entry_name(entry)
        row = containers.by_name(name)
        if is_stale(row, cfg.node_name):
            docker_ops.remove(entry["Id"], force=True)
            containers.mark_gone(name, entry["Id"])
            events.add("stale_removed", container=name,
                       deployment=row["deployment"] if row else None,
                       detail={"node": cfg.node_name})
            removed.append(name)
        elif record(name, entry["Id"]) is not None:
            adopted.append(name)
    nodes.set_status(cfg.node_name, "ready", only_from="returning")
    events.add("node_ready", detail={"node": cfg.node_name, "removed": removed,
                                     "adopted": adopted})
    for deployment in {containers.by_name(n)["deployment"] for n in adopted} - {None}:
        messages.send(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE, (deployment,))
    return {"node": cfg.node_name, "removed": removed, "adopted": adopted}


def is_stale(row: dict | None, node: str) -> bool:
    """An instance whose slot is placed elsewhere, of a deployment gone, or marked stale."""
    if row is None or row["kind"] != "deployment":
        return False  # not ours to judge: standalone containers stay; orphans are cleanup's
    if row["role"] == "stale" or deployments.get(row["deployment"]) is None:
        return True
    placed = slots.assignments(row["deployment"]).get(row["slot"]) or {}
    return placed.get("node") not in (None, node)


def drain(job_id: str, args: dict, cfg: config.Config) -> dict:
    """Every replica off a node, start-first (the planner moves each slot placed there:
    its new instance ready on another node before the old one goes); the job ends when the
    drained containers have exited. Past the deadline the rest is stopped (the planner has
    placed their slots elsewhere: they are replaced there)."""
    name = args["node"]
    deadline = time.monotonic() + float(args.get("deadline", 600))
    for deployment in deployments.with_slots_or_instances_on(name):
        messages.send(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE, (deployment,))
    nudged, stopped = time.monotonic(), None
    while True:
        left = still_on(name)
        jobs.set_progress(job_id, 0, len(left), f"{len(left)} instances left on {name}")
        if not left:
            events.add("node_drained", detail={"node": name, "stopped_past_deadline": stopped
                                               or []})
            return {"node": name, "drained": True, "stopped_past_deadline": stopped or []}
        if stopped is None and time.monotonic() > deadline:
            # the rest is stopped; the job still ends only once they have exited
            stopped = stop_the_rest(name, left)
        if stopped is not None and time.monotonic() > deadline + cfg.job_time_limit / 2:
            raise RuntimeError(f"{len(left)} instances still on {name} after their stop: "
                               + ", ".join(r["name"] for r in left))
        if time.monotonic() - nudged > 5.0:  # a trigger lost in a restart: look again
            nudged = time.monotonic()
            for deployment in {r["deployment"] for r in left}:
                messages.send(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE,
                              (deployment,))
        time.sleep(0.5)


def still_on(name: str) -> list[dict]:
    """The instances still running (or starting) on the node."""
    return [r for r in containers.find(node=name, kind="deployment", role="active",
                                       limit=10000)
            if r["state"] not in ("removed", "stopped", "error")]


def stop_the_rest(name: str, left: list[dict]) -> list[str]:
    """Past the deadline: the node's executor stops and removes what is left (the planner
    has placed their slots elsewhere: they are replaced there)."""
    row = nodes.get(name)
    actions = [{"kind": "remove", "slot": r["slot"], "name": r["name"],
                "generation": r["generation"], "reason": f"{name} drained past its deadline",
                "graceful": True} for r in left]
    for deployment in {r["deployment"] for r in left}:
        job = jobs.create("node_actions", f"nodes/{name}", messages.EXECUTE_ON_NODE,
                          messages.node_queue(name),
                          {"node": name, "epoch": row["epoch"], "deployment": deployment,
                           "actions": [a for a, r in zip(actions, left)
                                       if r["deployment"] == deployment]}, "fleet")
        messages.send_job_or_leave(job)
    return [r["name"] for r in left]
