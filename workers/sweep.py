"""One health sweep of a node: sample every instance at once, derive percentages from the
previous snapshot, classify, store in one batched insert, and raise or re-arm alerts."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import psutil

import config
from db import containers, events, health as store, installation, nodes, pool
from core import health, naming, observe
from workers import autoscaler, docker_ops, sampler


def thresholds(cfg: config.Config) -> health.Thresholds:
    return health.Thresholds(warning=cfg.warning_threshold, critical=cfg.critical_threshold,
                             high_cpu=cfg.high_cpu_threshold,
                             high_memory=cfg.high_memory_threshold,
                             rearm_margin=cfg.alert_rearm_margin)


def sweep(node: str, cfg: config.Config) -> dict:
    t = thresholds(cfg)
    started = time.perf_counter()
    # only replicas are load: pool members, kept and stale containers are not sampled
    rows = [r for r in containers.find(node=node, role="active", limit=100000)
            if r["docker_id"]]
    running = [r for r in rows if r["state"] == "running"]
    samples = sampler.sample_all([(r["name"], r["pid"], r["docker_id"]) for r in running],
                                 docker_ops.stats)
    host = sampler.host_figures()
    previous = store.latest_counters([r["name"] for r in running])
    now = time.time()
    at = datetime.fromtimestamp(now, timezone.utc)
    snapshots, alerts_due = [], []
    for row in rows:
        if row["state"] != "running" or row["name"] not in samples:
            if row["state"] in ("stopped", "error", "paused", "created"):
                snapshots.append((at, row["name"], row["deployment"], node, False, None, None,
                                  None, None, None, None, None, None, None, None, None,
                                  "stopped", "state", row["docker_id"]))
            continue
        s = samples[row["name"]]
        cores = s.cpu_limit or host["cores"]
        mem_limit = s.memory_limit or host["memory_bytes"]
        before = previous.get(row["name"])
        cpu = None
        if before is not None and before["cpu_ns"] is not None and s.cpu_ns is not None:
            cpu = health.cpu_percent(s.cpu_ns, before["cpu_ns"], now - float(before["at"]),
                                     cores)
        mem = health.memory_percent(s.memory_bytes, mem_limit)
        status = health.classify(True, cpu, mem, t)
        snapshots.append((at, row["name"], row["deployment"], node, True, s.cpu_ns,
                          s.memory_bytes, mem_limit, cores, s.net_rx, s.net_tx, s.blk_read,
                          s.blk_write, s.pids, cpu, mem, status, s.source, row["docker_id"]))
        alerts_due.append((row, cpu, health.memory_percent(s.memory_bytes, s.memory_limit)))
    store.insert_snapshots(snapshots)
    fired = evaluate_alerts(alerts_due, t)
    nodes.record_host(node, psutil.cpu_percent(interval=None), host)
    # a deployment found over its target is evaluated now, not at the next tick
    asked = autoscaler.trigger_over_target(cfg, by_deployment(snapshots))
    return {"instances": len(running), "snapshots": len(snapshots), "alerts": fired,
            "autoscale": asked, "seconds": round(time.perf_counter() - started, 4)}


def by_deployment(snapshots: list[tuple]) -> dict[str, tuple]:
    """deployment -> (cpu %, memory %) averaged over its instances this sweep measured
    (None where no instance has the figure yet: the first sample has no CPU rate)."""
    figures: dict[str, tuple[list, list]] = {}
    for snap in snapshots:
        deployment, running, cpu, mem = snap[2], snap[4], snap[14], snap[15]
        if deployment is None or not running:
            continue
        cpus, mems = figures.setdefault(deployment, ([], []))
        if cpu is not None:
            cpus.append(cpu)
        if mem is not None:
            mems.append(mem)
    return {name: (sum(c) / len(c) if c else None, sum(m) / len(m) if m else None)
            for name, (c, m) in figures.items()}


def evaluate_alerts(due: list[tuple], t: health.Thresholds) -> list[str]:
    """high_cpu (>= 80 %) and high_memory (>= 90 % of the limit), with hysteresis."""
    states = store.alert_states([row["name"] for row, _, _ in due])
    fired = []
    with pool.connection() as conn:
        for row, cpu, mem_of_limit in due:
            for kind, value, threshold in (("high_cpu", cpu, t.high_cpu),
                                           ("high_memory", mem_of_limit, t.high_memory)):
                firing = states.get((row["name"], kind), False)
                change = health.alert_transition(firing, value, threshold, t.rearm_margin)
                if change == "fire":
                    store.set_alert(row["name"], kind, True, conn)
                    events.add(kind, container=row["name"], deployment=row["deployment"],
                               conn=conn, detail={"value": value, "threshold": threshold})
                    fired.append(f"{kind}:{row['name']}")
                elif change == "rearm":
                    store.set_alert(row["name"], kind, False, conn)
                    events.add(f"{kind}_resolved", container=row["name"],
                               deployment=row["deployment"], conn=conn,
                               detail={"value": value, "threshold": threshold})
    return fired


def measure_disk(node: str) -> int:
    """The writable layer's size, on its own slower cadence (Docker computes it slowly)."""
    measured = 0
    for entry in docker_ops.list_sizes({naming.CLUSTER: installation.cluster_id(),
                                        naming.NODE: node}):
        name = observe.list_entry_name(entry)
        containers.set_disk(name, entry.get("SizeRw") or 0)
        measured += 1
    return measured
