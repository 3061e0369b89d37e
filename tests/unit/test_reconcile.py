"""The pure reconcile plan: scaling, healing, backoff, rolling updates, rollbacks."""
from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from core.plan import desired_slots, is_ready, plan
from core.plan_types import Desired, Instance

NOW = 1_000_000.0


def inst(slot, gen=1, state="running", age=60.0, health="none", exit_code=None, name=None):
    return Instance(name=name or f"web-{slot}-g{gen}", slot=slot, generation=gen, state=state,
                    started_at=NOW - age, health=health, exit_code=exit_code)


def kinds(p):
    return [(a.kind, a.slot) for a in p.actions]


def test_desired_slots_skip_retired():
    assert desired_slots(3, frozenset()) == [0, 1, 2]
    assert desired_slots(3, frozenset({1})) == [0, 2, 3]
    assert desired_slots(0, frozenset({0})) == []


def test_empty_deployment_creates_every_slot():
    p = plan(Desired(replicas=3, generation=1), [], NOW)
    assert kinds(p) == [("create", 0), ("create", 1), ("create", 2)]
    assert all(a.generation == 1 and a.reason for a in p.actions)
    assert p.state == "progressing"


def test_steady_when_every_slot_has_a_ready_instance():
    d = Desired(replicas=2, generation=1, stable_generation=1)
    p = plan(d, [inst(0), inst(1)], NOW)
    assert p.actions == [] and p.state == "steady"
    assert p.counts == {"desired": 2, "running": 2, "ready": 2, "healthy": 0, "updated": 2,
                        "warm": 0, "warm_pool": 0}


def test_scale_down_removes_the_highest_slots_gracefully():
    d = Desired(replicas=2, generation=1, stable_generation=1)
    p = plan(d, [inst(s) for s in range(5)], NOW)
    assert kinds(p) == [("remove", 4), ("remove", 3), ("remove", 2)]
    assert all(a.graceful and "scaled down" in a.reason for a in p.actions)


def test_retired_slot_is_stopped_and_kept_not_refilled():
    d = Desired(replicas=2, generation=1, stable_generation=1, retired=frozenset({1}))
    p = plan(d, [inst(0), inst(1), inst(2)], NOW)
    assert kinds(p) == [("stop", 1)]
    stopped = plan(d, [inst(0), inst(1, state="stopped"), inst(2)], NOW)
    assert stopped.actions == [] and stopped.state == "steady"


def test_dead_instance_is_kept_and_its_failure_recorded_before_a_refill():
    d = Desired(replicas=2, generation=1, stable_generation=1)
    p = plan(d, [inst(0), inst(1, state="stopped", exit_code=137)], NOW)
    assert kinds(p) == [("keep", 1), ("record_failure", 1)]
    assert not p.actions[0].graceful and "137" in p.actions[0].reason
    # once kept it is no replica: the slot is refilled, the kept one left alone
    kept = plan(d, [inst(0), replace(inst(1, state="stopped", exit_code=137), role="kept")],
                NOW)
    assert kinds(kept) == [("create", 1)]


def test_an_unhealthy_instance_is_kept_too():
    d = Desired(replicas=1, generation=1, stable_generation=1, has_health_check=True)
    p = plan(d, [inst(0, health="unhealthy")], NOW)
    assert kinds(p) == [("keep", 0), ("record_failure", 0)] and "unhealthy" in p.actions[0].reason


def test_empty_slot_waits_for_its_backoff_then_refills():
    d = Desired(replicas=1, generation=1, stable_generation=1, backoff_until={0: NOW + 20},
                failures={0: 3})
    p = plan(d, [], NOW)
    assert kinds(p) == [("wait", 0)] and p.actions[0].until == NOW + 20
    assert p.state == "crashloop" and "backoff" in p.actions[0].reason
    later = plan(d, [], NOW + 21)
    assert kinds(later) == [("create", 0)] and "failed" in later.actions[0].reason


def test_first_failure_waits_for_nothing():
    d = Desired(replicas=1, generation=1, stable_generation=1, backoff_until={0: NOW},
                failures={0: 1})
    assert kinds(plan(d, [], NOW)) == [("create", 0)]


def test_start_first_rolling_update_respects_max_surge():
    d = Desired(replicas=4, generation=2, stable_generation=1, max_surge=2, max_unavailable=0,
                rollout_started_at=NOW - 1)
    p = plan(d, [inst(s) for s in range(4)], NOW)
    assert kinds(p) == [("create", 0), ("create", 1)]
    # one new instance not ready yet: only one more may start
    p = plan(d, [inst(s) for s in range(4)] + [inst(0, gen=2, age=0.1)], NOW)
    assert kinds(p) == [("wait", 0), ("create", 1)]


def test_old_instance_removed_once_the_new_one_is_ready_and_still_counts_as_surge():
    d = Desired(replicas=2, generation=2, stable_generation=1, max_surge=1,
                rollout_started_at=NOW - 30)
    p = plan(d, [inst(0), inst(1), inst(0, gen=2, age=30)], NOW)
    assert kinds(p) == [("remove", 0)]  # no new surge until the removal is done
    assert "replaced by" in p.actions[0].reason


def test_stop_first_takes_at_most_max_unavailable_down():
    d = Desired(replicas=4, generation=2, stable_generation=1, order="stop-first",
                max_surge=0, max_unavailable=2, rollout_started_at=NOW - 1)
    p = plan(d, [inst(s) for s in range(4)], NOW)
    assert kinds(p) == [("remove", 0), ("create", 0), ("remove", 1), ("create", 1)]


def test_a_new_generation_that_dies_fails_the_rollout():
    d = Desired(replicas=2, generation=2, stable_generation=1, rollout_started_at=NOW - 5)
    p = plan(d, [inst(0), inst(1), inst(0, gen=2, state="stopped", exit_code=1)], NOW)
    assert kinds(p) == [("rollout_failed", 0)] and "exited with code 1" in p.actions[0].reason


def test_not_ready_by_the_progress_deadline_fails_the_rollout():
    d = Desired(replicas=1, generation=2, stable_generation=1, has_health_check=True,
                progress_deadline=60, rollout_started_at=NOW - 61)
    p = plan(d, [inst(0), inst(0, gen=2, health="starting")], NOW)
    assert kinds(p) == [("rollout_failed", 0)] and "deadline" in p.actions[0].reason


def test_readiness_uses_the_health_check_when_there_is_one():
    d = Desired(replicas=1, generation=1, has_health_check=True, monitor=5)
    assert not is_ready(inst(0, health="starting"), d, NOW)
    assert is_ready(inst(0, health="healthy", age=0.1), d, NOW)
    plain = Desired(replicas=1, generation=1, monitor=5)
    assert not is_ready(inst(0, age=1), plain, NOW) and is_ready(inst(0, age=6), plain, NOW)


def test_paused_deployment_does_not_update():
    d = Desired(replicas=2, generation=2, stable_generation=1, paused=True)
    p = plan(d, [inst(0), inst(1)], NOW)
    assert p.actions == [] and p.state == "paused"


def test_deleting_removes_everything():
    d = Desired(replicas=2, generation=1, deleting=True)
    p = plan(d, [inst(0), inst(1, state="stopped")], NOW)
    assert kinds(p) == [("remove", 0), ("remove", 1)]
    assert p.actions[0].graceful and not p.actions[1].graceful


def test_created_but_not_started_instance_is_started():
    d = Desired(replicas=1, generation=1, stable_generation=1)
    assert ("start", 0) in kinds(plan(d, [inst(0, state="created")], NOW))


instances = st.lists(st.builds(
    inst, slot=st.integers(0, 12), gen=st.integers(1, 3),
    state=st.sampled_from(["running", "created", "stopped", "error", "paused"]),
    age=st.floats(0, 100)), max_size=20, unique_by=lambda i: (i.slot, i.generation))


@settings(max_examples=300, deadline=None)
@given(replicas=st.integers(0, 10), generation=st.integers(1, 3), observed=instances,
       surge=st.integers(0, 3), unavailable=st.integers(0, 3))
def test_plan_never_creates_beyond_desired_slots_and_surge(replicas, generation, observed,
                                                           surge, unavailable):
    d = Desired(replicas=replicas, generation=generation, stable_generation=1,
                max_surge=surge, max_unavailable=unavailable, rollout_started_at=NOW - 1)
    p = plan(d, observed, NOW)
    wanted = set(desired_slots(replicas, frozenset()))
    creates = [a for a in p.actions if a.kind == "create"]
    assert all(a.slot in wanted and a.generation == generation for a in creates)
    assert len({a.slot for a in creates}) == len(creates)
    removed = {a.name for a in p.actions if a.kind == "remove"}
    live_after = [i for i in observed if i.state in ("running", "created", "paused")
                  and i.name not in removed]
    # an empty wanted slot is always filled; a creation beside a live instance of its slot
    # is a surge, and those never exceed max_surge (1 when both are 0)
    occupied = {i.slot for i in live_after}
    surges = [a for a in creates if a.slot in occupied]
    assert len(surges) <= max(surge, 1)
    for a in p.actions:
        assert a.reason
