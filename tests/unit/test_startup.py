"""Startup-phase arithmetic (core.startup): monotonic moments, phases never negative and
adding up to the total, the kubelet's buckets."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import startup

T = 1_000_000.0


def test_phases_of_an_ordinary_start():
    got = startup.phases({"planned": T, "image_ready": T + 0.2, "created": T + 0.3,
                          "started": T + 0.5, "running": T + 0.6, "ready": T + 5.6})
    assert got == pytest.approx({"image_ready": 0.2, "created": 0.1, "started": 0.2,
                                 "running": 0.1, "ready": 5.0, "total": 5.6})


def test_a_moment_before_the_one_before_it_counts_as_that_one():
    # Docker's StartedAt a little before our "created" (clocks of two processes)
    got = startup.phases({"planned": T, "image_ready": T + 1, "created": T + 2,
                          "started": T + 1.9, "running": T + 2.1, "ready": T + 3})
    assert got["started"] == 0 and got["running"] == pytest.approx(0.1)
    assert got["total"] == pytest.approx(3)


def test_missing_moments_take_no_time():
    # an instance adopted after its worker died: no image or create moment recorded
    got = startup.phases({"planned": T, "image_ready": None, "created": None,
                          "started": T + 4, "running": T + 4.5, "ready": T + 6})
    assert got["image_ready"] == 0 and got["created"] == 0 and got["started"] == 4
    with pytest.raises(ValueError):
        startup.phases({"planned": None, "ready": T})


moment = st.one_of(st.none(), st.floats(min_value=T - 100, max_value=T + 100))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({m: moment for m in startup.MOMENTS[1:]}),
       st.floats(min_value=T - 100, max_value=T + 100))
def test_phases_are_never_negative_and_add_up(moments, planned):
    got = startup.phases({**moments, "planned": planned})
    assert all(v >= 0 for v in got.values())
    parts = sum(v for k, v in got.items() if k != "total")
    assert parts == pytest.approx(got["total"], abs=1e-6)


def test_buckets_are_the_kubelets_and_cumulative():
    assert startup.BUCKETS[:14] == (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120)
    assert startup.buckets_of(0.3)[0] == 0.5 and startup.buckets_of(0.3)[-1] == math.inf
    assert startup.buckets_of(5.0)[0] == 5 and 4 not in startup.buckets_of(5.0)
    assert startup.buckets_of(10_000) == [math.inf]
    assert len(startup.buckets_of(0)) == len(startup.BUCKETS) + 1


def test_slow_is_past_the_limit_and_zero_turns_it_off():
    assert startup.is_slow(5.1, 5) and not startup.is_slow(5.0, 5)
    assert not startup.is_slow(100, 0)
