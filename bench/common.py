"""Shared bench helpers: a private platform (the test platform), percentiles, tables."""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.platform import TestPlatform  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe(values: list[float]) -> str:
    return (f"p50 {percentile(values, 50):.3f}s  p95 {percentile(values, 95):.3f}s  "
            f"mean {statistics.mean(values):.3f}s  n={len(values)}")


def private_platform(second_node: bool = False, **env) -> TestPlatform:
    """A platform of one node (bench/multinode asks for the second one)."""
    plat = TestPlatform(extra_env=env, second_node=second_node)
    try:
        plat.start()
    except BaseException:
        plat.teardown()  # a start that failed halfway leaves nothing running
        raise
    return plat
