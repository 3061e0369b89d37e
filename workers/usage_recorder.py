"""What a node's agent records for usage metering: every observation of a container (its runs,
pauses and limits, by node and Docker id), and a container's last counters when it is
killed or dies, read from its cgroup while that is still there.

An instance shorter than the sampling interval is never sampled: its seconds come from its
runs, and its CPU from this last read. The cgroup's directories are found (through the
process's /proc/<pid>/cgroup) while the container runs, because once its process is gone
there is no pid to find them by. On cgroup v1 with Docker 20.10 the directories are removed
before the "die" event is sent, so the read that counts is the one at "kill" (a stop sends
one, and so does a kill); the one at "die" is tried anyway, for engines that keep them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from db import health, usage
from workers import sampler

log = logging.getLogger("harbormaster.agent")
FINAL_READS = ("kill", "die")


@dataclass(frozen=True)
class Target:
    pid: int
    paths: dict
    name: str
    deployment: str | None


def event_time(event: dict) -> datetime:
    """When Docker says an event happened (nanoseconds when it gives them)."""
    if event.get("timeNano"):
        return datetime.fromtimestamp(int(event["timeNano"]) / 1e9, timezone.utc)
    if event.get("time"):
        return datetime.fromtimestamp(float(event["time"]), timezone.utc)
    return datetime.now(timezone.utc)


class Recorder:
    def __init__(self, node: str):
        self.node = node
        self.targets: dict[str, Target] = {}   # docker id -> where its cgroup is

    def observed(self, f: dict, action: str, at: datetime | None) -> None:
        """One observation (``core.observe.fields``) made at ``at`` (None: now, a sync) on
        ``action`` (the event's, or "sync")."""
        resources = f.get("resources") or {}
        cpus, memory = resources.get("cpus"), resources.get("memory")
        # the event says when it paused or unpaused, even if the inspect came after a change
        paused = action == "pause" or (action != "unpause" and f["state"] == "paused")
        usage.observe(self.node, f, at or datetime.now(timezone.utc),
                      round(cpus * 1e9) if cpus else None, int(memory) if memory else None,
                      paused)
        docker_id, pid = f["docker_id"], f["pid"]
        if f["state"] != "running" or not pid:
            return
        known = self.targets.get(docker_id)
        if known is not None and known.pid == pid:
            return
        try:
            paths = sampler.cgroup_paths(pid, docker_id)
        except (sampler.Unreadable, ValueError):
            return  # another pid namespace: the sampler's Engine API fallback covers it
        self.targets[docker_id] = Target(pid, paths, f["name"],
                                         (f["labels"] or {}).get("harbormaster.deployment"))

    def final_read(self, docker_id: str, action: str, at: datetime) -> bool:
        """Store the container's counters as a sample now, if its cgroup is still there."""
        target = self.targets.get(docker_id)
        if target is None:
            return False
        try:
            sample = sampler.read_cgroup(target.paths)
        except (sampler.Unreadable, KeyError, ValueError, IndexError, OSError):
            return False  # gone already: the last periodic sample is the last counter
        try:
            sample.net_rx, sample.net_tx = sampler.read_network(target.pid, Path("/proc"))
        except (sampler.Unreadable, ValueError, IndexError):
            pass  # the process is gone with its network namespace: those counters stay
        health.insert_snapshots([(
            at, target.name, target.deployment, self.node, False, sample.cpu_ns,
            sample.memory_bytes, sample.memory_limit, sample.cpu_limit, sample.net_rx,
            sample.net_tx, sample.blk_read, sample.blk_write, sample.pids, None, None,
            "stopped", "final", docker_id)])
        log.info("last counters of %s read at its %s event", target.name, action)
        return True

    def gone(self, docker_id: str, at: datetime) -> None:
        """Destroyed: a run or pause whose end was missed ends now."""
        self.targets.pop(docker_id, None)
        usage.gone(self.node, docker_id, at)
