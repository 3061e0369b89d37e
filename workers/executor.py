"""A node's executor: the Docker work the planner sent to this node's queue, done here.

It refuses work for another node and drops work planned under an older epoch of this node
(the node was declared down since: fencing). Before each action it looks at its own engine
again: a create finds an instance a dead worker already made (adopted by name), a removal
of what is gone is done. Slots run in parallel on a bounded pool, each slot's actions in
order; the result lists what Docker refused, permanent or not.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import config
from core import naming, spec as specs
from db import containers, deployments, events, installation, registry
from workers import create, docker_ops, kept, warm
from workers.docker_ops import DockerError, NotFound, Permanent
from workers.fencing import check_fence
from workers.record import record

log = logging.getLogger("harbormaster.executor")
# a dynamic host port may be taken on another engine of this host: Docker picks again
PORT_TAKEN = ("address already in use", "port is already allocated")
WARM = {"wake": warm.wake, "to_pool": warm.to_pool, "pause": warm.pause}   # the warm pool's
WAKE_CONCURRENCY = 32


def run(args: dict, cfg: config.Config) -> dict:
    """Carry out one batch of a deployment's actions on this node."""
    check_fence(args, cfg)
    dep = deployments.get(args["deployment"])
    if dep is None:
        return {"deployment": args["deployment"], "done": 0, "refused": []}
    cluster = installation.cluster_id()
    by_slot: dict = {}
    for action in args["actions"]:
        by_slot.setdefault(action["slot"], []).append(action)

    def run_slot(slot_actions: list[dict]) -> dict | None:
        for action in slot_actions:
            try:
                act(dep, action, cluster, cfg)
            except DockerError as exc:
                log.warning("%s %s of %s failed: %s", action["kind"], action.get("name"),
                            dep["name"], exc)
                return {**action, "error": str(exc), "permanent": isinstance(exc, Permanent)}
        return None

    # waking pool members is an unpause and one check each, no create: all at once
    limit = WAKE_CONCURRENCY if all(a["kind"] == "wake" for a in args["actions"]) \
        else cfg.reconcile_concurrency
    with ThreadPoolExecutor(max_workers=max(1, min(len(by_slot), limit)),
                            thread_name_prefix="execute") as pool:
        refused = [r for r in pool.map(run_slot, by_slot.values()) if r]
    registry.sync_deployment(dep["name"])
    return {"deployment": dep["name"], "done": len(args["actions"]) - len(refused),
            "refused": refused}


def act(dep: dict, action: dict, cluster: str, cfg: config.Config) -> None:
    kind = action["kind"]
    if kind == "create":
        create_instance(dep, action, cluster, cfg)
    elif kind in ("start", "update"):
        row = containers.by_name(action["name"])
        if row is not None and row["docker_id"]:
            if kind == "start":
                start(row["docker_id"])
            else:
                docker_ops.update(row["docker_id"], dep["resources"] or {})
            record(action["name"], row["docker_id"])  # the state and limits it now has
    elif kind == "keep":
        kept.keep_instance(dep, action, cfg)
    elif kind in WARM:
        WARM[kind](dep, action, cfg)
    else:
        remove_instance(dep, action, cfg, keep=kind == "stop")


def create_instance(dep: dict, action: dict, cluster: str, cfg: config.Config) -> None:
    """The reserved instance, from the template of the generation it was planned for."""
    name, generation = action["name"], action["generation"]
    revision = deployments.revision(dep["name"], generation)
    template = revision["template"] if revision else dep["template"]
    spec = specs.of_template(template, dep["resources"])
    labels = naming.container_labels(cluster, "deployment", cfg.node_name, name, spec.image,
                                     spec.labels, deployment=dep["name"], slot=action["slot"],
                                     generation=generation,
                                     incarnation=action["incarnation"])
    service = template.get("service")
    try:
        created = create.create_and_start(name, spec, labels,
                                          deployments.secret_owner(dep["name"]),
                                          aliases=[service["name"]] if service else None,
                                          start=start,
                                          pinned_image=(revision or {}).get("image_digest"))
    except DockerError:
        # nothing was made under the reserved name (or it is seen and recorded): the slot
        # is free for the next pass instead of held by a reservation nobody takes up
        containers.abandon_request(name)
        raise
    if created.fresh:
        events.add("instance_created", container=name, deployment=dep["name"],
                   detail={"slot": action["slot"], "generation": generation,
                           "node": cfg.node_name, "reason": action["reason"],
                           "role": action.get("role", "active")})


def start(docker_id: str, attempts: int = 5) -> None:
    """Start, retrying when a dynamic host port was taken meanwhile by another engine of
    this host (each start picks a free port again)."""
    for attempt in range(attempts):
        try:
            docker_ops.start(docker_id)
            return
        except Permanent as exc:
            if attempt == attempts - 1 or not any(t in str(exc) for t in PORT_TAKEN):
                raise
            time.sleep(0.1)


def remove_instance(dep: dict, action: dict, cfg: config.Config, keep: bool) -> None:
    """Take out of discovery, wait the drain delay, SIGTERM, SIGKILL after the grace period,
    and remove (or keep it stopped, for a retired slot)."""
    name = action["name"]
    row = containers.by_name(name)
    if row is None:
        return
    if not row["docker_id"]:
        containers.abandon_request(name)  # reserved, never created: nothing to remove
        return
    if action.get("graceful", True):
        drain(dep, row, cfg)
    if keep:
        record(name, row["docker_id"])
        events.add("instance_stopped", container=name, deployment=dep["name"],
                   detail={"reason": action["reason"]})
        return
    containers.set_state(name, "removing")
    docker_ops.remove(row["docker_id"], force=True)
    containers.mark_gone(name)
    events.add("instance_removed", container=name, deployment=dep["name"],
               detail={"reason": action["reason"], "graceful": action.get("graceful", True),
                       "node": cfg.node_name})


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
