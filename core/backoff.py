"""Per-slot restart backoff (seed 003, Kubernetes' CrashLoopBackOff shape).

The first failure of a slot restarts at once; then ``initial``, 2 x initial, ... up to
``maximum``. An instance that ran ``reset_after`` seconds or more starts the count afresh.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    failures: int        # consecutive failures, this one included
    delay: float         # seconds until the slot may start again


def after_failure(previous_failures: int, uptime: float | None, initial: float,
                  maximum: float, reset_after: float) -> Backoff:
    if uptime is not None and uptime >= reset_after:
        return Backoff(1, 0.0)
    failures = previous_failures + 1
    if failures == 1:
        return Backoff(1, 0.0)
    return Backoff(failures, float(min(maximum, initial * 2 ** (failures - 2))))
