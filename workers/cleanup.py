"""Cleanup (seed 003), sent by the scheduler: stopped instances of retired slots after an
age, orphans (our cluster label naming a deployment that no longer exists) after a grace
period, and events and ended jobs past their retention. Standalone containers are never
touched.
"""
from __future__ import annotations

import logging
import time

import config
from db import (containers, deployments, events, health, idempotency, installation, jobs,
                pool)
from workers import docker_ops, labels

log = logging.getLogger("harbormaster.cleanup")


def run() -> dict:
    cfg = config.load()
    cluster = installation.cluster_id()
    removed_retired, removed_orphans = [], []
    known = {d["name"]: d for d in deployments.find(limit=100000)}
    listed = docker_ops.list_containers({labels.CLUSTER: cluster, labels.KIND: "deployment",
                                         labels.NODE: cfg.node_name})
    now = time.time()
    for entry in listed:
        lab = entry.get("Labels") or {}
        name = (entry.get("Names") or ["/"])[0].lstrip("/")
        dep = known.get(lab.get(labels.DEPLOYMENT))
        age = now - entry.get("Created", now)
        if dep is None:
            if age >= cfg.orphan_grace:
                docker_ops.remove(entry["Id"], force=True)
                containers.mark_gone(name)
                events.add("orphan_removed", container=name,
                           deployment=lab.get(labels.DEPLOYMENT),
                           detail={"age": round(age)})
                removed_orphans.append(name)
            continue
        slot = int(lab.get(labels.SLOT, -1))
        if slot in dep["retired_slots"] and entry.get("State") in ("exited", "dead", "created"):
            row = containers.by_name(name)
            stopped_for = (now - row["finished_at"].timestamp()) if row and row["finished_at"] \
                else age
            if stopped_for >= cfg.retired_instance_age:
                docker_ops.remove(entry["Id"], force=True)
                containers.mark_gone(name)
                events.add("retired_removed", container=name, deployment=dep["name"],
                           detail={"slot": slot, "stopped_for": round(stopped_for)})
                removed_retired.append(name)
    pruned_events = pool.execute("DELETE FROM events WHERE at < now() - make_interval(secs => %s)",
                                 (cfg.event_retention,))
    pruned_jobs = jobs.delete_ended_before(cfg.job_retention)
    idempotency.prune(cfg.job_retention)  # a key outlives no job it could have made
    pruned_snapshots = health.prune(cfg.snapshot_retention)
    pruned_rows = pool.execute("DELETE FROM containers WHERE state = 'removed' AND"
                               " updated_at < now() - make_interval(secs => %s)",
                               (cfg.job_retention,))
    result = {"retired": removed_retired, "orphans": removed_orphans, "events": pruned_events,
              "jobs": pruned_jobs, "snapshots": pruned_snapshots, "container_rows": pruned_rows}
    if removed_retired or removed_orphans:
        log.info("cleanup: %s", result)
    return result
