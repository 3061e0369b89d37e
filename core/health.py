"""Pure health logic: cpu/memory percentages, classification (seed 000), alert hysteresis.

No I/O: the sampler and the probes call these with numbers and get decisions back.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    warning: float = 75.0      # inclusive
    critical: float = 90.0     # inclusive
    high_cpu: float = 80.0     # alert
    high_memory: float = 90.0  # alert, % of the limit
    rearm_margin: float = 10.0  # an alert re-arms once the value is this far below


def cpu_percent(cpu_ns_now: int, cpu_ns_before: int | None, seconds: float,
                cores: float) -> float | None:
    """CPU time used / (wall time x the CPU limit or host cores), in percent."""
    if cpu_ns_before is None or seconds <= 0 or cores <= 0 or cpu_ns_now < cpu_ns_before:
        return None
    return round((cpu_ns_now - cpu_ns_before) / 1e9 / (seconds * cores) * 100.0, 2)


def memory_percent(used: int | None, limit: int | None) -> float | None:
    if used is None or not limit:
        return None
    return round(used / limit * 100.0, 2)


def classify(running: bool, cpu: float | None, memory: float | None,
             t: Thresholds = Thresholds()) -> str:
    """healthy below warning, warning from it, critical from critical (cpu or memory)."""
    if not running:
        return "stopped"
    worst = max(cpu or 0.0, memory or 0.0)
    if worst >= t.critical:
        return "critical"
    if worst >= t.warning:
        return "warning"
    return "healthy"


def alert_transition(firing: bool, value: float | None, threshold: float,
                     margin: float) -> str | None:
    """'fire' when the value reaches the threshold while armed; 'rearm' once it has gone
    back below threshold - margin; None otherwise (a value hovering at the threshold fires
    once)."""
    if value is None:
        return None
    if not firing and value >= threshold:
        return "fire"
    if firing and value < threshold - margin:
        return "rearm"
    return None


def probe_transition(health: str, successes: int, failures: int, healthy_threshold: int,
                     unhealthy_threshold: int, in_start_period: bool) -> str:
    """The health after a probe, from the consecutive successes and failures so far.

    Failures inside the start period do not count (as Docker's HEALTHCHECK); a success
    there still makes the instance healthy.
    """
    if successes >= healthy_threshold:
        return "healthy"
    if failures >= unhealthy_threshold and not in_start_period:
        return "unhealthy"
    if health == "none":
        return "starting"
    return health
