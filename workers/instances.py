"""A deployment's instances in Docker: observed (merged with what was recorded), created
through the one creation path, drained and removed, and a pass's actions applied.

An instance is named ``<deployment>-<slot>.<incarnation>`` (core.naming). The incarnation
is reserved in Postgres, with a row in state ``creating``, before Docker is asked: a create
repeated after a worker died reuses that reservation's name and adopts what Docker has.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import config
from core import backoff, naming, observe, spec as specs
from core.plan import Action, Instance, desired_slots
from db import containers, deployments, events, pool, registry, slots
from workers import create, docker_ops
from workers.docker_ops import DockerError, NotFound
from workers.record import record

log = logging.getLogger("harbormaster.instances")


def observe_instances(dep: dict, cluster: str) -> list[Instance]:
    """Docker's view of the deployment's containers, merged with what we recorded; rows
    Docker no longer has are marked gone, reservations nobody will use are dropped."""
    listed = docker_ops.list_containers({naming.CLUSTER: cluster,
                                         naming.DEPLOYMENT: dep["name"]})
    rows = {r["name"]: r for r in containers.find(deployment=dep["name"], limit=10000)}
    out = []
    for entry in listed:
        name = observe.list_entry_name(entry)
        labels = entry.get("Labels") or {}
        row = rows.get(name)
        state = observe.DOCKER_STATES.get(entry.get("State", ""), "error")
        if row is None or row["docker_id"] != entry["Id"] or row["state"] != state:
            row = record(name, entry["Id"]) or row
        if row is None:
            continue
        out.append(Instance(
            name=name, slot=int(labels.get(naming.SLOT, -1)),
            generation=int(labels.get(naming.GENERATION, 0)), state=state,
            started_at=row["started_at"].timestamp() if row["started_at"] else None,
            health=row["health"], exit_code=row["exit_code"], draining=row["draining"],
            role=row["role"]))
    seen = {i.name for i in out}
    wanted = set(desired_slots(dep["replicas"], set(dep["retired_slots"])))
    for name, row in rows.items():
        if name in seen or row["state"] == "removed":
            continue
        if row["docker_id"]:
            gone = containers.mark_gone(name, row["docker_id"])
            if gone is not None and gone["previous"] != "removing":
                events.add("destroy", container=name, deployment=dep["name"],
                           detail={"observed": "missing at reconcile"})
        elif (row["generation"] != dep["generation"] or dep["deleting"]
              or row["slot"] not in wanted):
            containers.abandon_request(name)  # a reservation nobody will use any more
    return out


def create_instance(dep: dict, slot: int, generation: int, cluster: str, node: str,
                    reason: str) -> str:
    """Reserve (or reuse the reservation of) the slot's next incarnation and create it."""
    name = reserve(dep, slot, generation, node)
    template = dep["template"]
    spec = specs.of_template(template, dep["resources"])
    labels = naming.container_labels(cluster, "deployment", node, name, spec.image,
                                     spec.labels, deployment=dep["name"], slot=slot,
                                     generation=generation,
                                     incarnation=int(name.rsplit(".", 1)[1]))
    service = template.get("service")
    created = create.create_and_start(name, spec, labels, deployments.secret_owner(dep["name"]),
                                      aliases=[service["name"]] if service else None)
    if created.fresh:
        events.add("instance_created", container=name, deployment=dep["name"],
                   detail={"slot": slot, "generation": generation, "reason": reason})
    return name


def reserve(dep: dict, slot: int, generation: int, node: str) -> str:
    pending = containers.reservation(dep["name"], slot, generation)
    if pending is not None:
        return pending["name"]
    spec = specs.of_template(dep["template"], dep["resources"])
    with pool.connection() as conn:
        incarnation = slots.reserve_incarnation(dep["name"], slot, conn)
        name = naming.instance_name(dep["name"], slot, incarnation)
        containers.request(name, "deployment", node, spec.image, spec.as_dict(), spec.labels,
                           conn, deployment=dep["name"], slot=slot, generation=generation,
                           incarnation=incarnation)
    return name


def remove_instance(dep: dict, name: str, graceful: bool, reason: str, cfg: config.Config,
                    keep: bool = False) -> None:
    """Take out of discovery, wait the drain delay, SIGTERM, SIGKILL after the grace period,
    and remove (or keep it stopped, for a retired slot)."""
    row = containers.by_name(name)
    if row is None or not row["docker_id"]:
        return
    if graceful:
        drain(dep, row, cfg)
    if keep:
        record(name, row["docker_id"])
        events.add("instance_stopped", container=name, deployment=dep["name"],
                   detail={"reason": reason})
        return
    containers.set_state(name, "removing")
    docker_ops.remove(row["docker_id"], force=True)
    containers.mark_gone(name)
    events.add("instance_removed", container=name, deployment=dep["name"],
               detail={"reason": reason, "graceful": graceful})


def drain(dep: dict, row: dict, cfg: config.Config) -> None:
    strategy = dep["update_strategy"]
    containers.set_draining(row["name"], True)
    registry.sync_deployment(dep["name"])  # out of discovery before the drain delay
    delay = strategy.get("drain_delay")
    delay = cfg.drain_delay if delay is None else delay
    if delay > 0:
        time.sleep(delay)
    containers.set_state(row["name"], "stopping")
    grace = strategy.get("grace_period")
    try:
        docker_ops.stop(row["docker_id"], timeout=int(cfg.grace_period if grace is None
                                                      else grace))
    except NotFound:
        pass


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


def apply(dep: dict, actions: list[Action], cluster: str,
          cfg: config.Config) -> list[tuple[Action, DockerError]]:
    """Apply a pass's actions: one task per slot (its actions in order), slots in parallel.
    Returns the actions Docker refused, with why (at most one per slot: a slot stops at its
    first failure)."""
    for action in actions:
        if action.kind == "record_failure":
            record_failure(dep, action)
    by_slot: dict = {}
    for action in actions:
        if action.kind in ("create", "start", "remove", "stop"):
            by_slot.setdefault(action.slot, []).append(action)

    def run_slot(slot_actions: list[Action]):
        for action in slot_actions:
            try:
                if action.kind == "create":
                    create_instance(dep, action.slot, action.generation, cluster,
                                    cfg.node_name, action.reason)
                elif action.kind == "start":
                    row = containers.by_name(action.name)
                    docker_ops.start(row["docker_id"])
                    record(action.name, row["docker_id"])
                else:
                    remove_instance(dep, action.name, action.graceful, action.reason, cfg,
                                    keep=action.kind == "stop")
            except DockerError as exc:
                log.warning("%s %s of %s failed: %s", action.kind, action.name or action.slot,
                            dep["name"], exc)
                return action, exc
        return None

    if not by_slot:
        return []
    with ThreadPoolExecutor(max_workers=min(len(by_slot), cfg.reconcile_concurrency),
                            thread_name_prefix="reconcile") as workers:
        return [failure for failure in workers.map(run_slot, by_slot.values()) if failure]
