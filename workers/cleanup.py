"""Cleanup (seed 003), sent by the scheduler: stopped instances of retired slots after an
age, kept instances no longer their slot's newest or past their age (workers.kept), orphans (our cluster label naming a deployment that no longer exists) after a grace
period, and events and ended jobs past their retention. Standalone containers are never
touched.
"""
from __future__ import annotations

import logging
import time

import config
from core import naming, observe
from db import (containers, deployments, events, health, idempotency, installation, jobs,
                startup)
from workers import docker_ops, kept

log = logging.getLogger("harbormaster.cleanup")


def run(cfg: config.Config) -> dict:
    cluster = installation.cluster_id()
    known = {d["name"]: d for d in deployments.find(limit=100000)}
    listed = docker_ops.list_containers({naming.CLUSTER: cluster, naming.KIND: "deployment",
                                         naming.NODE: cfg.node_name})
    removed = {"retired": [], "orphans": []}
    now = time.time()
    for entry in listed:
        labels = entry.get("Labels") or {}
        name = observe.list_entry_name(entry)
        dep = known.get(labels.get(naming.DEPLOYMENT))
        age = now - entry.get("Created", now)
        if dep is None:
            if age >= cfg.orphan_grace:
                remove(entry, name, "orphan_removed", labels.get(naming.DEPLOYMENT),
                       {"age": round(age)})
                removed["orphans"].append(name)
            continue
        slot = int(labels.get(naming.SLOT, -1))
        if slot in dep["retired_slots"] and entry.get("State") in ("exited", "dead", "created"):
            row = containers.by_name(name)
            stopped_for = (now - row["finished_at"].timestamp()) if row and row["finished_at"] \
                else age
            if stopped_for >= cfg.retired_instance_age:
                remove(entry, name, "retired_removed", dep["name"],
                       {"slot": slot, "stopped_for": round(stopped_for)})
                removed["retired"].append(name)
    removed["kept"] = []
    for row, reason in kept.superseded(cfg):   # logs --previous keeps each slot's newest
        kept.remove(row, reason)
        removed["kept"].append(row["name"])
    result = {**removed, **prune_records(cfg)}
    if removed["retired"] or removed["orphans"] or removed["kept"]:
        log.info("cleanup: %s", result)
    return result


def remove(entry: dict, name: str, kind: str, deployment: str | None, detail: dict) -> None:
    docker_ops.remove(entry["Id"], force=True)
    containers.mark_gone(name)
    events.add(kind, container=name, deployment=deployment, detail=detail)


def prune_records(cfg: config.Config) -> dict:
    """Records past their retention."""
    idempotency.prune(cfg.job_retention)  # a key outlives no job it could have made
    return {"events": events.prune(cfg.event_retention),
            "jobs": jobs.delete_ended_before(cfg.job_retention),
            "snapshots": health.prune(cfg.snapshot_retention),
            "container_rows": containers.prune_removed(cfg.job_retention),
            "startup_rows": startup.prune(cfg.job_retention)}
