"""One resource sample and the Engine API's stats document read as one: Docker CLI's rules
(memory is usage minus the inactive page cache: total_inactive_file on cgroup v1,
inactive_file on v2), used by every screen that shows a container's figures."""
from __future__ import annotations

from dataclasses import dataclass

UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a huge number


@dataclass
class Sample:
    cpu_ns: int | None = None
    memory_bytes: int | None = None
    memory_limit: int | None = None   # None: no limit
    cpu_limit: float | None = None    # cores; None: no limit
    net_rx: int | None = None
    net_tx: int | None = None
    blk_read: int | None = None
    blk_write: int | None = None
    pids: int | None = None
    source: str = "cgroup"


def engine_memory_used(memory_stats: dict) -> int | None:
    """Docker CLI's rule, the one every screen uses: usage minus the inactive page cache
    (total_inactive_file on cgroup v1, inactive_file on v2)."""
    usage = memory_stats.get("usage")
    if usage is None:
        return None
    stats = memory_stats.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return max(0, usage - inactive) if inactive < usage else usage


def engine_cpu_percent(raw: dict) -> float:
    """% of one core over the engine's own two samples (as `docker stats` shows it)."""
    cpu, pre = raw.get("cpu_stats", {}), raw.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - \
        pre.get("cpu_usage", {}).get("total_usage", 0)
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    cores = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    return round((cpu_delta / sys_delta) * cores * 100.0, 2) if sys_delta > 0 else 0.0


def engine_summary(raw: dict) -> dict:
    """The figures people read from one Engine API stats document (the stats route)."""
    sample = from_engine_stats(raw)
    limit = (raw.get("memory_stats") or {}).get("limit") or 0
    used = sample.memory_bytes or 0
    return {
        "cpu_percent": engine_cpu_percent(raw),
        "memory_bytes": used,
        "memory_limit_bytes": limit,
        "memory_percent": round(used / limit * 100.0, 2) if limit else 0.0,
        "network_rx_bytes": sample.net_rx, "network_tx_bytes": sample.net_tx,
        "block_read_bytes": sample.blk_read, "block_write_bytes": sample.blk_write,
        "pids": sample.pids,
    }


def from_engine_stats(raw: dict) -> Sample:
    """The same figures from one Engine API stats document (the fallback)."""
    cpu = raw.get("cpu_stats", {})
    mem = raw.get("memory_stats", {})
    nets = raw.get("networks") or {}
    blk = (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    limit = mem.get("limit")
    return Sample(
        cpu_ns=cpu.get("cpu_usage", {}).get("total_usage"),
        memory_bytes=engine_memory_used(mem),
        memory_limit=limit if limit and limit < UNLIMITED else None,
        net_rx=sum(n.get("rx_bytes", 0) for n in nets.values()),
        net_tx=sum(n.get("tx_bytes", 0) for n in nets.values()),
        blk_read=sum(b.get("value", 0) for b in blk if b.get("op") in ("Read", "read")),
        blk_write=sum(b.get("value", 0) for b in blk if b.get("op") in ("Write", "write")),
        pids=(raw.get("pids_stats") or {}).get("current"), source="engine")


