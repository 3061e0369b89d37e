"""Usage rows as a billing system imports them: OpenCost's allocation column names where they
apply, ours beside them, in the units people read (seconds, cores, bytes), and the cost.

The sums come from the rollup's rows (integers in core.metering's units), with billable =
max(requested, used) per resource taken per instance and period before summing (OpenCost's
rule: an allocation is billed what it reserved, or what it used beyond that).
"""
from __future__ import annotations

from dataclasses import dataclass

from core.metering import US

CORE_NS = 10 ** 9            # core-ns per core-second (the cgroup counter's unit)
NANOCORE_US = 10 ** 15       # nanocore-µs per core-second (requested CPU)
BYTE_US = US                 # byte-µs per byte-second
GIB = 1024 ** 3              # a price per "GB-hour" is per GiB-hour, as OpenCost's RAM prices
DIGITS = 6

#: the figures of every row, in order (after the row's own Date and grouping columns)
FIGURES = ("ContainerSeconds", "PausedSeconds", "CPUCoreUsageAverage",
           "CPUCoreRequestAverage", "RAMBytesUsageAverage", "RAMBytesRequestAverage",
           "CPUCoreUsageSeconds", "CPUCoreRequestSeconds", "CPUCoreSeconds",
           "RAMByteUsageSeconds", "RAMByteRequestSeconds", "RAMByteSeconds",
           "NetworkReceiveBytes", "NetworkTransferBytes", "Cost")
IDLE_FIGURES = ("CapacityCPUCoreSeconds", "IdleCPUCoreSeconds", "CapacityRAMByteSeconds",
                "IdleRAMByteSeconds")


@dataclass(frozen=True)
class Prices:
    """Optional prices; without both, rows have no cost."""
    cpu_core_hour: float | None = None
    memory_gb_hour: float | None = None

    @property
    def set(self) -> bool:
        return self.cpu_core_hour is not None or self.memory_gb_hour is not None


def _r(value: float) -> float:
    return round(value, DIGITS)


def figures(sums: dict, prices: Prices) -> dict:
    """One row's figures from its sums (running_us, paused_us, cpu_used_ns, cpu_request,
    cpu_billable, memory_used, memory_request, memory_billable, net_rx, net_tx)."""
    running = int(sums["running_us"]) / US
    held = (int(sums["running_us"]) + int(sums["paused_us"])) / US
    cpu_used = int(sums["cpu_used_ns"]) / CORE_NS
    cpu_request = int(sums["cpu_request"]) / NANOCORE_US
    cpu_billable = int(sums["cpu_billable"]) / NANOCORE_US
    memory_used = int(sums["memory_used"]) / BYTE_US
    memory_request = int(sums["memory_request"]) / BYTE_US
    memory_billable = int(sums["memory_billable"]) / BYTE_US
    return {
        "ContainerSeconds": _r(running),
        "PausedSeconds": _r(int(sums["paused_us"]) / US),
        # OpenCost's averages: over the time the allocation ran (memory: held, paused too)
        "CPUCoreUsageAverage": _r(cpu_used / running) if running else 0.0,
        "CPUCoreRequestAverage": _r(cpu_request / running) if running else 0.0,
        "RAMBytesUsageAverage": _r(memory_used / held) if held else 0.0,
        "RAMBytesRequestAverage": _r(memory_request / held) if held else 0.0,
        "CPUCoreUsageSeconds": _r(cpu_used),
        "CPUCoreRequestSeconds": _r(cpu_request),
        "CPUCoreSeconds": _r(cpu_billable),
        "RAMByteUsageSeconds": _r(memory_used),
        "RAMByteRequestSeconds": _r(memory_request),
        "RAMByteSeconds": _r(memory_billable),
        "NetworkReceiveBytes": int(sums["net_rx"]),
        "NetworkTransferBytes": int(sums["net_tx"]),
        "Cost": cost(cpu_billable, memory_billable, prices),
    }


def cost(cpu_core_seconds: float, ram_byte_seconds: float, prices: Prices) -> float | None:
    """Billable core-hours and GiB-hours at their prices (None without prices)."""
    if not prices.set:
        return None
    cpu = cpu_core_seconds / 3600 * (prices.cpu_core_hour or 0.0)
    memory = ram_byte_seconds / GIB / 3600 * (prices.memory_gb_hour or 0.0)
    return _r(cpu + memory)


def idle(capacity: dict, reserved: dict) -> dict:
    """A node's capacity in one period and what nothing reserved of it (the requests of its
    instances, running or paused): what a platform team looks at to size its hosts."""
    cpu = int(capacity["cpu"]) / NANOCORE_US
    memory = int(capacity["memory"]) / BYTE_US
    cpu_reserved = int(reserved.get("cpu_request") or 0) / NANOCORE_US
    memory_reserved = int(reserved.get("memory_request") or 0) / BYTE_US
    return {"CapacityCPUCoreSeconds": _r(cpu),
            "IdleCPUCoreSeconds": _r(max(0.0, cpu - cpu_reserved)),
            "CapacityRAMByteSeconds": _r(memory),
            "IdleRAMByteSeconds": _r(max(0.0, memory - memory_reserved))}
