"""Startup phases of an instance, the pure arithmetic: from the moments it reached (planned,
image ready, created, started, seen running, ready) to the seconds each phase took,
monotonic and never negative, and the histogram buckets each falls in.

Moments come from several processes (the planner, the node's executor, Docker's own
StartedAt) whose clocks and recording order can disagree by a little: a moment earlier
than the one before it counts as that one (the phase took 0 s), and a missing moment
(an instance adopted after a worker died) likewise.
"""
from __future__ import annotations

import math

MOMENTS = ("planned", "image_ready", "created", "started", "running", "ready")
# each phase ends at its moment and starts at the previous one; "total" is planned -> ready
PHASES = ("image_ready", "created", "started", "running", "ready", "total")
# the kubelet's pod startup buckets (kubelet_pod_start_sli_duration_seconds)
BUCKETS = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0,
           240.0, 300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0)


def monotonic(moments: dict[str, float | None]) -> dict[str, float]:
    """Each moment at least the one before it (the first must be known)."""
    planned = moments.get("planned")
    if planned is None:
        raise ValueError("an instance's startup starts when it was planned")
    out, last = {}, planned
    for name in MOMENTS:
        value = moments.get(name)
        last = last if value is None or value < last else value
        out[name] = last
    return out


def phases(moments: dict[str, float | None]) -> dict[str, float]:
    """Seconds of each phase, every one >= 0, the phases adding up to the total."""
    at = monotonic(moments)
    out = {}
    for previous, name in zip(MOMENTS, MOMENTS[1:]):
        out[name] = at[name] - at[previous]
    out["total"] = at["ready"] - at["planned"]
    return out


def buckets_of(seconds: float) -> list[float]:
    """The cumulative buckets a value counts in (its ``le`` bounds, +Inf last)."""
    return [b for b in BUCKETS if seconds <= b] + [math.inf]


def is_slow(total: float, limit: float) -> bool:
    return limit > 0 and total > limit
