"""The autoscaling arithmetic (HPA's) and its guarantees, with Hypothesis properties."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.autoscale import Decision, Observations, Policy, decide

NOW = 10_000.0
CPU60 = Policy(min_replicas=1, max_replicas=20, metrics=({"type": "cpu", "target": 60},),
               scale_up_cooldown=0, scale_down_cooldown=0, stabilization_window=0)


def test_cpu_scale_up_follows_hpa():
    d = decide(CPU60, 2, Observations(cpu=97), [], NOW)
    assert d.desired == 4 and d.applied and "ceil(2 x 97/60) = 4" in d.reason


def test_within_the_tolerance_band_nothing_changes():
    assert decide(CPU60, 4, Observations(cpu=65), [], NOW).desired == 4   # 65/60 = 1.083
    assert decide(CPU60, 4, Observations(cpu=55), [], NOW).desired == 4   # 0.917
    assert decide(CPU60, 4, Observations(cpu=67), [], NOW).desired == 5   # 1.117


def test_custom_metric_is_a_total_per_instance_target():
    p = Policy(min_replicas=1, max_replicas=20, scale_up_cooldown=0,
               metrics=({"type": "custom", "name": "requests_per_second", "target": 100},))
    d = decide(p, 1, Observations(custom={"requests_per_second": (350, 1)}), [], NOW)
    assert d.desired == 4 and "ceil(350/100) = 4" in d.reason


def test_largest_recommendation_wins():
    p = Policy(min_replicas=1, max_replicas=20, scale_up_cooldown=0,
               metrics=({"type": "cpu", "target": 50}, {"type": "memory", "target": 50},
                        {"type": "custom", "name": "rps", "target": 10}))
    d = decide(p, 2, Observations(cpu=100, memory=150, custom={"rps": (25, 0)}), [], NOW)
    assert d.desired == 6 and "memory" in d.reason


def test_scale_up_step_limit():
    assert decide(CPU60, 1, Observations(cpu=600), [], NOW).desired == 5     # +4
    assert decide(CPU60, 8, Observations(cpu=600), [], NOW).desired == 16    # +100 %


def test_missing_or_stale_metrics_never_scale_down():
    p = Policy(min_replicas=1, max_replicas=20, scale_down_cooldown=0, stabilization_window=0,
               metrics=({"type": "cpu", "target": 60},
                        {"type": "custom", "name": "rps", "target": 100}))
    d = decide(p, 5, Observations(cpu=10, custom={"rps": (0, 999)}, stale_after=30), [], NOW)
    assert d.desired == 5 and "stale" in d.reason
    assert decide(CPU60, 5, Observations(), [], NOW).desired == 5


def test_stabilization_window_keeps_the_highest_recent_recommendation():
    p = Policy(min_replicas=1, max_replicas=20, metrics=({"type": "cpu", "target": 60},),
               scale_down_cooldown=0, stabilization_window=300)
    d = decide(p, 6, Observations(cpu=10), [(NOW - 100, 5), (NOW - 400, 9)], NOW)
    assert d.desired == 5 and "stabilization" in d.reason
    assert decide(p, 6, Observations(cpu=10), [(NOW - 400, 9)], NOW).desired == 1


def test_cooldowns():
    p = Policy(min_replicas=1, max_replicas=20, metrics=({"type": "cpu", "target": 60},),
               scale_up_cooldown=300, scale_down_cooldown=600, stabilization_window=0)
    assert decide(p, 2, Observations(cpu=120), [], NOW, last_scale_up=NOW - 100).desired == 2
    assert decide(p, 2, Observations(cpu=120), [], NOW, last_scale_up=NOW - 301).desired == 4
    assert decide(p, 4, Observations(cpu=10), [], NOW, last_scale_down=NOW - 100).desired == 4
    assert decide(p, 4, Observations(cpu=10), [], NOW, last_scale_up=NOW - 700).desired == 1


def test_bounds_clamp():
    p = Policy(min_replicas=2, max_replicas=3, metrics=({"type": "cpu", "target": 60},),
               scale_up_cooldown=0, scale_down_cooldown=0, stabilization_window=0)
    assert decide(p, 3, Observations(cpu=200), [], NOW).desired == 3
    assert decide(p, 2, Observations(cpu=1), [], NOW).desired == 2
    assert decide(p, 5, Observations(), [], NOW).desired == 3  # outside bounds: clamped


def test_seed_rule_form_steps_by_one():
    p = Policy(min_replicas=1, max_replicas=10, scale_up_cooldown=0, scale_down_cooldown=0,
               stabilization_window=0,
               rules=({"metric": "cpu", "above": 80, "action": "scale_up"},
                      {"metric": "cpu", "below": 20, "action": "scale_down"}))
    assert decide(p, 3, Observations(cpu=95), [], NOW).desired == 4
    assert decide(p, 3, Observations(cpu=10), [], NOW).desired == 2
    assert decide(p, 3, Observations(cpu=50), [], NOW).desired == 3


def test_every_decision_has_reason_and_inputs():
    d = decide(CPU60, 3, Observations(cpu=60), [], NOW)
    assert isinstance(d, Decision) and not d.applied and d.reason
    assert d.inputs["cpu"] == 60 and d.inputs["current"] == 3


policies = st.builds(
    lambda lo, span, target, up, down, window: Policy(
        min_replicas=lo, max_replicas=lo + span,
        metrics=({"type": "cpu", "target": target}, {"type": "custom", "name": "rps",
                                                     "target": target}),
        scale_up_cooldown=up, scale_down_cooldown=down, stabilization_window=window),
    st.integers(0, 5), st.integers(0, 20), st.floats(1, 100), st.sampled_from([0, 60]),
    st.sampled_from([0, 60]), st.sampled_from([0, 300]))
observations = st.builds(
    lambda cpu, rps, age: Observations(cpu=cpu, custom={} if rps is None else {"rps": (rps, age)},
                                       stale_after=30),
    st.one_of(st.none(), st.floats(0, 1000)), st.one_of(st.none(), st.floats(0, 10000)),
    st.floats(0, 100))
histories = st.lists(st.tuples(st.floats(NOW - 600, NOW), st.integers(0, 40)), max_size=10)


@settings(max_examples=400, deadline=None)
@given(policies, st.integers(0, 40), observations, histories)
def test_properties(policy, current, obs, history):
    d = decide(policy, current, obs, history, NOW)
    # always within min/max
    assert policy.min_replicas <= d.desired <= policy.max_replicas
    # never a scale-down (beyond the bounds' own clamp) on missing or stale data
    missing = obs.cpu is None or "rps" not in obs.custom or obs.custom["rps"][1] > 30
    if missing and current <= policy.max_replicas:
        assert d.desired >= min(current, policy.max_replicas) or d.desired == policy.max_replicas
    # the scale-up step limit
    if d.desired > current and current >= policy.min_replicas:
        assert d.desired <= max(current * 2, current + 4)
    # the window: a scale-down never goes below a recent recommendation
    recent = [r for t, r in history if NOW - t <= policy.stabilization_window]
    if d.desired < current and recent and current <= policy.max_replicas:
        assert d.desired >= min(max(recent), current) or d.desired == policy.min_replicas


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.floats(0.91, 1.09))
def test_tolerance_band_property(current, ratio):
    p = Policy(min_replicas=0, max_replicas=100, metrics=({"type": "cpu", "target": 50},),
               scale_up_cooldown=0, scale_down_cooldown=0, stabilization_window=0)
    assert decide(p, current, Observations(cpu=50 * ratio), [], NOW).desired == current


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 500), st.floats(0, 500), st.integers(1, 10))
def test_several_metrics_take_the_largest(cpu, memory, current):
    both = Policy(min_replicas=0, max_replicas=1000, scale_up_cooldown=0,
                  scale_down_cooldown=0, stabilization_window=0,
                  metrics=({"type": "cpu", "target": 50}, {"type": "memory", "target": 50}))
    only = lambda kind: Policy(min_replicas=0, max_replicas=1000, scale_up_cooldown=0,  # noqa
                               scale_down_cooldown=0, stabilization_window=0,
                               metrics=({"type": kind, "target": 50},))
    obs = Observations(cpu=cpu, memory=memory)
    assert decide(both, current, obs, [], NOW).desired == max(
        decide(only("cpu"), current, obs, [], NOW).desired,
        decide(only("memory"), current, obs, [], NOW).desired)
