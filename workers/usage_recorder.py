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
import queue
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from db import health, usage
from db.pool import Unavailable
from workers import sampler

log = logging.getLogger("harbormaster.agent")
FINAL_READS = ("kill", "die")
WRITES_QUEUED = 10000   # a sync's observations of every container fit many times over


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
    """The agent's metering: its reads on the caller's thread (a cgroup is read before it
    goes), its writes in order on a thread of their own (``loop``), so that billing never
    slows or breaks the agent's handling of Docker's events."""

    def __init__(self, node: str, stop: threading.Event):
        self.node, self.stop = node, stop
        self.targets: dict[str, Target] = {}   # docker id -> where its cgroup is
        self.writes: queue.Queue = queue.Queue(maxsize=WRITES_QUEUED)

    def write(self, what: str, fn, *args) -> None:
        try:
            self.writes.put_nowait((what, fn, args))
        except queue.Full:
            log.warning("metering behind: %s dropped (the next full sync records it again)",
                        what)

    def loop(self) -> None:
        """Perform the writes in the order they came; with Postgres away one is dropped with
        a warning (the next full sync observes every container again)."""
        while not self.stop.is_set():
            try:
                what, fn, args = self.writes.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                fn(*args)
            except Unavailable as exc:
                log.warning("metering: %s not recorded: %s", what, exc)
            except Exception:  # noqa: BLE001 - a bug, logged as one; the thread goes on
                log.exception("metering: %s failed", what)

    def observed(self, f: dict, action: str, at: datetime | None) -> None:
        """One observation (``core.observe.fields``) made at ``at`` (None: now, a sync) on
        ``action`` (the event's, or "sync")."""
        resources = f.get("resources") or {}
        cpus, memory = resources.get("cpus"), resources.get("memory")
        # the event says when it paused or unpaused, even if the inspect came after a change
        paused = action == "pause" or (action != "unpause" and f["state"] == "paused")
        self.write(f"{action} of {f['name']}", usage.observe, self.node, f,
                   at or datetime.now(timezone.utc), round(cpus * 1e9) if cpus else None,
                   int(memory) if memory else None, paused)
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
        """Read the container's counters now, if its cgroup is still there, and store them
        as a sample."""
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
        self.write(f"last counters of {target.name} (its {action})", health.insert_snapshots, [(
            at, target.name, target.deployment, self.node, False, sample.cpu_ns,
            sample.memory_bytes, sample.memory_limit, sample.cpu_limit, sample.net_rx,
            sample.net_tx, sample.blk_read, sample.blk_write, sample.pids, None, None,
            "stopped", "final", docker_id)])
        return True

    def gone(self, docker_id: str, at: datetime) -> None:
        """Destroyed: a run or pause whose end was missed ends now."""
        self.targets.pop(docker_id, None)
        self.write(f"destroy of {docker_id[:12]}", usage.gone, self.node, docker_id, at)
