"""The fast reaction path's pure parts: when a sweep or a metric report asks for an
evaluation at once (core.autoscale.wants_more), and what a sweep measured per deployment
(workers.sweep.by_deployment)."""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from core.autoscale import Observations, Policy, decide, wants_more

CPU50 = Policy(min_replicas=1, max_replicas=5, metrics=({"type": "cpu", "target": 50},),
               scale_up_cooldown=0, scale_down_cooldown=0, stabilization_window=0)
RPS = Policy(min_replicas=1, max_replicas=10,
             metrics=({"type": "custom", "name": "rps", "target": 100},))


def test_over_the_target_beyond_the_band_asks_now():
    why = wants_more(CPU50, 1, Observations(cpu=95))
    assert why is not None and "cpu 95% vs target 50%" in why


def test_within_the_ten_percent_band_or_under_the_target_nothing_is_asked():
    assert wants_more(CPU50, 2, Observations(cpu=54)) is None    # 1.08: the band
    assert wants_more(CPU50, 2, Observations(cpu=30)) is None
    assert wants_more(CPU50, 2, Observations(cpu=None)) is None  # the first sample has no rate


def test_at_the_maximum_nothing_is_asked():
    assert wants_more(CPU50, 5, Observations(cpu=100)) is None


def test_a_custom_total_over_target_times_replicas_asks_now():
    assert "ceil(350/100) = 4" in wants_more(RPS, 2, Observations(custom={"rps": (350, 0)}))
    assert wants_more(RPS, 4, Observations(custom={"rps": (350, 0)})) is None
    assert wants_more(RPS, 2, Observations(custom={"other": (900, 0)})) is None


def test_a_scale_up_rule_that_fires_asks_now():
    rules = Policy(min_replicas=1, max_replicas=5,
                   rules=({"metric": "cpu", "above": 80, "action": "scale_up"},))
    assert wants_more(rules, 1, Observations(cpu=90)) is not None
    assert wants_more(rules, 1, Observations(cpu=70)) is None


@given(cpu=st.floats(0, 400), current=st.integers(1, 5))
def test_it_asks_exactly_when_an_evaluation_without_history_would_scale_up(cpu, current):
    decision = decide(CPU50, current, Observations(cpu=cpu), [], 10_000.0)
    assert (wants_more(CPU50, current, Observations(cpu=cpu)) is not None) == (
        decision.desired > current)


def test_a_sweep_averages_its_running_instances_per_deployment():
    from workers.sweep import by_deployment
    at = datetime.now(timezone.utc)

    def snap(name, dep, running, cpu, mem):
        return (at, name, dep, "local", running, 1, 1, 1, 1, 0, 0, 0, 0, 1, cpu, mem, "ok",
                "cgroup")
    found = by_deployment([snap("a-0.1", "a", True, 90.0, 10.0),
                           snap("a-1.1", "a", True, 70.0, 30.0),
                           snap("a-2.1", "a", True, None, 20.0),   # first sample: no rate
                           snap("a-3.1", "a", False, None, None),  # stopped
                           snap("b-0.1", "b", True, None, None),
                           snap("solo", None, True, 99.0, 99.0)])  # standalone
    assert found == {"a": (80.0, 20.0), "b": (None, None)}
