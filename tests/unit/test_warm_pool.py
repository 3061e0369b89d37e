"""The warm pool's arithmetic (core.pool through core.plan): which slots are the pool's,
scale-up takes members first, scale-down pauses back into the pool, refills wait for the
replicas, a rollout refreshes the pool after them, a dead member is replaced with backoff, a
paused member is never judged by its health. Every (replicas before, replicas after, pool)
up to 5 x 5 x 4 is run to its fixed point through a small simulator of the executor."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core import pool
from core.plan import plan
from core.plan_types import Desired, Instance

NOW = 1_000_000.0


def member(slot, gen=1, state="paused", health="none", role="warm", age=60.0):
    return Instance(name=f"web-{slot}.{gen}{role[0]}", slot=slot, generation=gen, state=state,
                    started_at=NOW - age, health=health, role=role)


def active(slot, gen=1, state="running", health="none"):
    return member(slot, gen, state, health, role="active")


def kinds(actions):
    return sorted((a.kind, a.slot) for a in actions)


def steady(replicas, warm, gen=1):
    return ([active(s, gen) for s in range(replicas)]
            + [member(s, gen) for s in range(replicas, replicas + warm)])


def apply(observed, actions, gen, counter):
    """What the executor would make of the actions: every instance ready at once."""
    by_name = {i.name: i for i in observed}
    for a in actions:
        if a.kind == "create":
            counter["create_" + a.role] += 1
            state = "running"
            new = Instance(name=f"new{counter['n']}", slot=a.slot, generation=a.generation,
                           state=state, started_at=NOW - 60, role=a.role)
            counter["n"] += 1
            by_name[new.name] = new
        elif a.kind == "remove":
            counter["remove"] += 1
            by_name.pop(a.name, None)
        elif a.kind == "wake":
            counter["wake"] += 1
            by_name[a.name] = replace(by_name[a.name], role="active", state="running")
        elif a.kind == "to_pool":
            counter["to_pool"] += 1
            by_name[a.name] = replace(by_name[a.name], role="warm", state="paused")
        elif a.kind == "pause":
            counter["pause"] += 1
            by_name[a.name] = replace(by_name[a.name], state="paused")
    return list(by_name.values())


def converge(d, observed, background=True, limit=20):
    from collections import Counter
    counter = Counter()
    for _ in range(limit):
        p = plan(d, observed, NOW)
        work = p.work + (p.pool_work if background else [])
        if not work:
            return observed, counter, p
        observed = apply(observed, work, d.generation, counter)
    raise AssertionError("no fixed point")


def test_pool_slots_follow_the_replicas_and_skip_retired_ones():
    d = Desired(replicas=2, generation=1, warm_pool=3)
    assert pool.pool_slots(d, [0, 1]) == [2, 3, 4]
    assert pool.pool_slots(replace(d, retired=frozenset({3})), [0, 1]) == [2, 4, 5]
    assert pool.pool_slots(replace(d, replicas=0), []) == [0, 1, 2]
    assert pool.pool_slots(replace(d, warm_pool=0), [0, 1]) == []
    assert pool.pool_slots(replace(d, slots=(0, 1)), [0, 1]) == []   # global: no pool


@pytest.mark.parametrize("before", range(5))
@pytest.mark.parametrize("after", range(5))
@pytest.mark.parametrize("size", range(4))
def test_every_scale_takes_the_pool_first_and_keeps_it_full(before, after, size):
    d = Desired(replicas=after, generation=1, stable_generation=1, warm_pool=size)
    final, done, last = converge(d, steady(before, size))
    grown = max(0, after - before)
    assert done["wake"] == min(size, grown)                  # the pool is taken first
    assert done["create_active"] == max(0, grown - size)     # cold only past the pool
    shrunk = max(0, before - after)
    assert done["to_pool"] == min(size, shrunk)              # paused back, up to N
    actives = sorted(i.slot for i in final if i.role == "active")
    warm = sorted(i.slot for i in final if i.role == "warm")
    assert actives == list(range(after))
    assert warm == list(range(after, after + size))
    assert all(i.state == "paused" for i in final if i.role == "warm")
    assert last.state == "steady" and last.counts["warm"] == size
    assert last.counts["ready"] == after and last.counts["warm_pool"] == size


@pytest.mark.parametrize("after", range(1, 5))
def test_a_scale_up_wakes_members_and_leaves_the_refill_for_later(after):
    d = Desired(replicas=after, generation=1, stable_generation=1, warm_pool=2)
    p = plan(d, steady(0, 2), NOW)
    assert kinds(p.work) == sorted([("wake", s) for s in range(min(after, 2))]
                                   + [("create", s) for s in range(2, after)])
    assert p.pool_work == []            # the replicas have work: no refill yet
    assert p.counts["running"] == 0 and p.counts["ready"] == 0
    woken = apply(steady(0, 2), p.work, 1, __import__("collections").Counter())
    refill = plan(d, woken, NOW)
    assert refill.work == [] and refill.state == "steady"
    # the members not taken stay; the pool's window moved up past the replicas
    assert kinds(refill.pool_work) == [("create", s) for s in range(max(after, 2), after + 2)]
    assert all(a.role == "warm" for a in refill.pool_work)


def test_the_replicas_converge_without_the_pool():
    d = Desired(replicas=3, generation=1, stable_generation=1, warm_pool=3)
    final, done, last = converge(d, steady(0, 3), background=False)
    assert done["wake"] == 3 and done["create_warm"] == 0 and last.state == "steady"
    assert last.counts["warm"] == 0 and kinds(last.pool_work) == [("create", s)
                                                                  for s in (3, 4, 5)]


def test_members_are_no_replicas():
    d = Desired(replicas=1, generation=1, stable_generation=1, warm_pool=2)
    p = plan(d, [active(0)] + [member(1, state="running"), member(2)], NOW)
    assert p.counts["running"] == 1 and p.counts["ready"] == 1
    assert p.counts["warm"] == 1                      # the running one is not paused yet
    assert kinds(p.pool_work) == [("pause", 1)]       # ready once: paused


def test_a_member_waits_for_its_check_before_its_pause():
    d = Desired(replicas=0, generation=1, stable_generation=1, warm_pool=1,
                has_health_check=True)
    starting = plan(d, [member(0, state="running", health="starting")], NOW)
    assert [a.kind for a in starting.pool] == ["wait"]
    healthy = plan(d, [member(0, state="running", health="healthy")], NOW)
    assert kinds(healthy.pool_work) == [("pause", 0)]


def test_a_paused_member_is_never_judged_by_its_health():
    d = Desired(replicas=1, generation=1, stable_generation=1, warm_pool=1,
                has_health_check=True)
    p = plan(d, [active(0, health="healthy"), member(1, health="unhealthy")], NOW)
    assert p.work == [] and p.pool_work == []


def test_a_member_that_fails_or_dies_is_replaced_with_backoff():
    d = Desired(replicas=0, generation=1, stable_generation=1, warm_pool=1,
                has_health_check=True)
    sick = plan(d, [member(0, state="running", health="unhealthy")], NOW)
    assert kinds(sick.pool_work) == [("record_failure", 0), ("remove", 0)]
    dead = plan(d, [member(0, state="stopped")], NOW)
    assert kinds(dead.pool_work) == [("record_failure", 0), ("remove", 0)]
    backing_off = replace(d, backoff_until={0: NOW + 10}, failures={0: 1})
    waiting = plan(backing_off, [], NOW)
    assert waiting.pool_work == [] and "refills in 10s" in waiting.pool[0].reason
    assert kinds(plan(replace(backing_off, backoff_until={0: NOW - 1}), [], NOW).pool_work) \
        == [("create", 0)]


def test_a_rollout_refreshes_the_pool_after_the_replicas():
    d = Desired(replicas=2, generation=2, stable_generation=1, warm_pool=2)
    old = steady(2, 2, gen=1)
    p = plan(d, old, NOW)
    assert [a.kind for a in p.work] == ["create"] and p.pool_work == []   # a surge, no refresh
    half = [active(0, 2), active(1, 2)] + [member(2), member(3)]
    refresh = plan(d, half, NOW)
    assert kinds(refresh.pool_work) == [("remove", 2), ("remove", 3)]
    final, done, last = converge(d, old)
    assert {i.generation for i in final} == {2} and done["create_warm"] == 2
    assert sorted(i.slot for i in final if i.role == "warm") == [2, 3]


def test_a_member_of_an_older_generation_is_never_woken():
    d = Desired(replicas=1, generation=2, stable_generation=2, warm_pool=1)
    p = plan(d, [member(0, gen=1), member(1, gen=2)], NOW)
    assert ("remove", 0) in kinds(p.work) and ("create", 0) in kinds(p.work)
    assert ("wake", 1) not in kinds(p.work)


def test_a_misplaced_member_is_not_woken_and_is_replaced():
    d = Desired(replicas=1, generation=1, stable_generation=1, warm_pool=1,
                assignment={0: "n1", 1: "n1"})
    far = replace(member(0), node="n2")
    p = plan(d, [far], NOW)
    assert kinds(p.work) == [("create", 0), ("remove", 0)]


def test_a_shrunk_pool_removes_the_members_beyond_it():
    d = Desired(replicas=1, generation=1, stable_generation=1, warm_pool=1)
    p = plan(d, steady(1, 3), NOW)
    assert kinds(p.pool_work) == [("remove", 2), ("remove", 3)]
    assert p.work == [] and p.state == "steady"


def test_scale_to_zero_with_a_pool_wakes_at_once():
    d = Desired(replicas=0, generation=1, stable_generation=1, warm_pool=2)
    final, done, last = converge(d, steady(2, 0))
    assert done["to_pool"] == 2 and done["remove"] == 0
    up = plan(replace(d, replicas=2), final, NOW)
    assert kinds(up.work) == [("wake", 0), ("wake", 1)]


def test_deleting_removes_members_without_a_drain():
    d = Desired(replicas=1, generation=1, warm_pool=1, deleting=True)
    p = plan(d, steady(1, 1), NOW)
    assert sorted((a.slot, a.graceful) for a in p.actions) == [(0, True), (1, False)]


def test_a_paused_deployment_keeps_its_pool_as_it_is():
    d = Desired(replicas=1, generation=1, stable_generation=1, warm_pool=2, paused=True)
    assert plan(d, [active(0)], NOW).pool == []
