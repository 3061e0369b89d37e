"""Pure reconcile planning: plan(desired, observed, now) -> actions, each with a reason.

No I/O. The runner (workers.converge) observes, calls ``plan``, applies the actions, and
calls it again until nothing is left to do. Only ``active`` instances are replicas (never
``warm``, ``kept`` or ``stale`` ones); the warm pool's members are core.pool's. Rules:

- the desired slots are the ``replicas`` lowest slot numbers that are not retired;
- an instance in a slot above them is removed (scaling down removes the highest slots);
- an instance in a retired slot is stopped and kept (cleanup removes it later);
- a dead or unhealthy instance is kept, stopped, for ``logs --previous`` (role ``kept``: the
  slot's kept one before it goes) and its slot refilled, at once the first time and later
  when its backoff allows (the runner records the failure: core.backoff);
- an instance of an older generation is replaced by a rolling update: start-first (a new
  instance beside the old one, at most ``max_surge`` at a time, the old one removed once
  the new one is ready) or stop-first (at most ``max_unavailable`` slots down at a time);
- each slot has a node (placement, decided by the runner: ``assignment``); an instance on
  another node moves there start-first, as a rolling update does; a slot placed nowhere yet
  (``pending``) waits, saying why; an instance still being created (``creating``: reserved,
  its node's executor at work) holds its slot;
- a new-generation instance that dies, turns unhealthy, or is not ready by the progress
  deadline fails the rollout (the runner rolls back or pauses).
"""
from __future__ import annotations

from core import pool
from core.plan_types import Action, Desired, Instance, Plan, SlotPlan

LIVE = {"creating", "running", "created", "starting", "paused"}
DEAD = {"stopped", "error"}


def desired_slots(replicas: int, retired) -> list[int]:
    slots, candidate = [], 0
    while len(slots) < replicas:
        if candidate not in retired:
            slots.append(candidate)
        candidate += 1
    return slots


def is_ready(inst: Instance, d: Desired, now: float) -> bool:
    if inst.state != "running" or inst.draining:
        return False
    if d.has_health_check:
        return inst.health == "healthy"
    return inst.started_at is not None and now - inst.started_at >= d.monitor


def in_rollout(d: Desired) -> bool:
    return d.stable_generation is not None and d.generation != d.stable_generation


def past_deadline(d: Desired, now: float) -> bool:
    return d.rollout_started_at is not None and now - d.rollout_started_at > d.progress_deadline


def fails_rollout(d: Desired, inst: Instance) -> bool:
    """A failure of the generation being rolled out fails the rollout (not a rollback's)."""
    return in_rollout(d) and inst.generation == d.generation and not d.rolling_back


def plan(d: Desired, observed: list[Instance], now: float) -> Plan:
    current = [i for i in observed
               if i.role == "active" and i.state not in ("removing", "removed")]
    if d.deleting:
        doomed = [i for i in observed if i.state not in ("removing", "removed")]
        return Plan([act("remove", "deployment deleted", i,
                         graceful=i.state in LIVE and i.role == "active")
                     for i in doomed],
                    "progressing", "deleting", counts_of(d, [], current, now))
    slots = list(d.slots) if d.slots is not None else desired_slots(d.replicas, d.retired)
    by_slot = by_slot_of(current)
    warm = by_slot_of([i for i in observed
                       if i.role == "warm" and i.state not in ("removing", "removed")])
    in_pool = pool.pool_slots(d, slots)
    actions = unwanted(d, by_slot, set(slots) | set(in_pool))
    actions += pool.leaving(d, in_pool, by_slot, warm, lambda i: is_ready(i, d, now))
    wakes, woken = pool.wakes(d, slots, by_slot, warm)
    actions += wakes
    per_slot = []
    for slot in slots:
        if slot in woken:
            continue
        slot_plan = plan_slot(d, slot, by_slot.get(slot, []), now)
        if slot_plan.failed is not None:
            return Plan([slot_plan.failed], "progressing", "rollout failed",
                        counts_of(d, slots, current, now))
        per_slot.append((slot, slot_plan))
        actions += slot_plan.actions
    needs_update = [slot for slot, p in per_slot if p.needs_update]
    if needs_update and not d.paused:
        surging = sum(1 for _, p in per_slot if p.surging)
        actions += rolling_update(d, slots, by_slot, needs_update, surging, now)
    counts = counts_of(d, slots, current, now)
    state, reason = verdict(d, actions, counts, slots,
                            [slot for slot, p in per_slot if p.crashloop])
    return Plan(actions, state, reason, {**counts, **pool_counts(d, in_pool, warm)},
                pool_upkeep(d, slots, in_pool, warm, actions, counts, now))


def by_slot_of(instances: list[Instance]) -> dict[int, list[Instance]]:
    out: dict[int, list[Instance]] = {}
    for inst in instances:
        out.setdefault(inst.slot, []).append(inst)
    return out


def pool_counts(d: Desired, in_pool: list[int], warm: dict) -> dict:
    return {"warm": pool.held(in_pool, warm, d), "warm_pool": len(in_pool)}


def pool_upkeep(d: Desired, slots: list[int], in_pool: list[int], warm: dict, actions: list,
                counts: dict, now: float) -> list[Action]:
    """The warm pool's background work (core.pool): refills only while the replicas have
    none, a refresh to a new generation once every replica runs it."""
    if d.paused:
        return []
    quiet = not any(a.kind != "wait" for a in actions)
    refreshed = quiet and counts["updated"] == len(slots)
    return (pool.beyond(in_pool, slots, warm, d)
            + pool.maintain(d, in_pool, warm, quiet, refreshed, lambda i: is_ready(i, d, now),
                            now))


def unwanted(d: Desired, by_slot: dict, wanted: set) -> list[Action]:
    """Slots nobody wants any more: retired ones stop (kept), others go."""
    actions = []
    for slot, insts in sorted(by_slot.items(), reverse=True):
        if slot in wanted:
            continue
        for inst in insts:
            if slot in d.retired:
                if inst.state in LIVE:
                    actions.append(act("stop", f"slot {slot} retired", inst))
            else:
                actions.append(act("remove", f"scaled down to {d.replicas}", inst,
                                   graceful=inst.state in LIVE))
    return actions


def act(kind: str, reason: str, inst: Instance, graceful: bool = True) -> Action:
    """An action on an instance, addressed to the node it is on."""
    return Action(kind, reason, inst.slot, inst.name, graceful=graceful, node=inst.node)


def create(d: Desired, slot: int, reason: str) -> Action:
    """A new instance of the current generation, on the node the slot is placed on."""
    return Action("create", reason, slot, generation=d.generation,
                  node=d.assignment.get(slot))


def resources_differ(d: Desired, inst: Instance) -> bool:
    """A limit the deployment sets that the instance does not run with (limits apply live,
    without a rollout)."""
    return any(inst.resources.get(k) != v for k, v in d.resources.items() if v is not None)


def misplaced(d: Desired, inst: Instance) -> bool:
    """On another node than its slot's (a drain, a rebalance, a constraint change)."""
    target = d.assignment.get(inst.slot)
    return target is not None and inst.node != target


def not_ready_in_time(d: Desired, inst: Instance) -> Action:
    return act("rollout_failed", f"{inst.name} not ready within the progress deadline "
                                 f"({d.progress_deadline:.0f}s)", inst)


def plan_slot(d: Desired, slot: int, insts: list[Instance], now: float) -> SlotPlan:
    out = SlotPlan()
    live = [i for i in insts if i.state in LIVE and not i.draining]
    # an instance unhealthy past its threshold is replaced like a dead one
    sick = [i for i in live if d.has_health_check and i.health == "unhealthy"]
    live = [i for i in live if i not in sick]
    dead = [(i, "is unhealthy") for i in sick]
    for inst in insts:
        if inst.state in DEAD:
            code = f" with code {inst.exit_code}" if inst.exit_code is not None else ""
            dead.append((inst, f"exited{code}"))
    for inst, what in dead:
        if fails_rollout(d, inst):
            out.failed = act("rollout_failed", f"{inst.name} of generation {d.generation} "
                                               f"{what}", inst)
            return out
        why = f"{inst.name} {what}"
        out.actions.append(act("keep", why, inst, graceful=False))
        out.actions.append(act("record_failure", why, inst))
    new, old = one_of_each(d, slot, live, now, out)
    for inst in new:
        if inst.state == "created":
            out.actions.append(act("start", f"{inst.name} was created but not started", inst))
        elif inst.state in ("running", "paused") and resources_differ(d, inst):
            out.actions.append(act("update", f"{inst.name}: resources applied live", inst))
    if not new and not old:
        if not dead:  # a failure is recorded first; the next pass refills or waits
            fill(d, slot, now, out)
    elif new and old:
        out.surging = True
        surge(d, slot, new[0], old, now, out)
    elif old:
        out.needs_update = True
    elif not is_ready(new[0], d, now) and new[0].state == "running":
        if in_rollout(d) and past_deadline(d, now):
            out.failed = not_ready_in_time(d, new[0])
        elif in_rollout(d) or d.stable_generation is None:
            out.actions.append(Action("wait", f"waiting for {new[0].name} to be ready", slot,
                                      until=now + 0.5))
    return out


def one_of_each(d: Desired, slot: int, live: list[Instance], now: float,
                out: SlotPlan) -> tuple[list, list]:
    """At most one instance of the current generation (on the slot's node) and one older
    (or misplaced) one per slot."""
    new = [i for i in live if i.generation == d.generation and not misplaced(d, i)]
    old = [i for i in live if i not in new]
    for extra in new[1:]:
        out.actions.append(act("remove", "duplicate instance in slot", extra))
    # two older generations in one slot (a rollout interrupted by another): keep the best
    # one until it is replaced, the others go now
    old.sort(key=lambda i: (is_ready(i, d, now), i.generation), reverse=True)
    for extra in old[1:]:
        out.actions.append(act("remove", "an older instance already has a successor", extra))
    return new[:1], old[:1]


def fill(d: Desired, slot: int, now: float, out: SlotPlan) -> None:
    """An empty slot: create, unless its backoff says wait or it is placed nowhere yet."""
    if slot in d.pending:
        out.actions.append(Action("wait", f"slot {slot} pending: {d.pending[slot]}", slot,
                                  until=now + 5.0))
        return
    until = d.backoff_until.get(slot)
    if until is not None and until > now:
        failures = d.failures.get(slot, 0)
        out.crashloop = failures >= 2
        out.actions.append(Action("wait", f"slot {slot} restarts in {until - now:.0f}s "
                                          f"(backoff after {failures} failures)",
                                  slot, until=until))
        return
    reason = "replacing a failed instance" if slot in d.backoff_until else "slot empty"
    out.actions.append(create(d, slot, reason))


def surge(d: Desired, slot: int, new: Instance, old: list[Instance], now: float,
          out: SlotPlan) -> None:
    """A new instance beside an old one: the old goes once the new one is ready."""
    if is_ready(new, d, now):
        # the old one still exists until this pass removes it: it keeps counting against
        # max_surge, so the next surge instance waits for the next pass
        for inst in old:
            out.actions.append(act("remove", f"replaced by {new.name}", inst))
    elif past_deadline(d, now):
        out.failed = not_ready_in_time(d, new)
    else:
        out.actions.append(Action("wait", f"waiting for {new.name} to be ready", slot,
                                  until=now + 0.5))


def rolling_update(d: Desired, slots, by_slot, candidates: list[int], surging: int,
                   now: float) -> list[Action]:
    actions = []
    max_surge, max_unavailable = d.max_surge, d.max_unavailable
    if max_surge <= 0 and max_unavailable <= 0:
        max_surge = 1  # neither would never progress
    candidates = [s for s in candidates if s not in d.pending]
    moves = [s for s in candidates
             if all(i.generation == d.generation for i in by_slot.get(s, []))]
    reason = f"rolling update to generation {d.generation}"
    if (d.order == "start-first" and max_surge > 0) or moves == candidates:
        # moving to another node is always start-first: nothing is down meanwhile
        budget = max(0, max(max_surge, 1) - surging)
        for slot in candidates[:budget]:
            actions.append(create(d, slot, f"moving to {d.assignment.get(slot)}"
                                  if slot in moves else reason))
        return actions
    ready_slots = sum(1 for s in slots
                      if any(is_ready(i, d, now) for i in by_slot.get(s, [])))
    budget = max(max_unavailable, 1 if max_surge > 0 else 0) - (len(slots) - ready_slots)
    for slot in candidates[:max(0, budget)]:
        for inst in by_slot.get(slot, []):
            if inst.state in LIVE:
                actions.append(act("remove", f"{reason} (stop-first)", inst))
        actions.append(create(d, slot, reason))
    return actions


def verdict(d: Desired, actions: list, counts: dict, wanted_slots: list[int],
            crashloop: list[int]) -> tuple[str, str]:
    """The deployment's state and why."""
    wanted = len(wanted_slots)
    if d.paused:
        return "paused", "rollout paused"
    if crashloop:
        return "crashloop", f"slots {crashloop} keep failing; restarting with backoff"
    pending = sorted(s for s in d.pending if s in wanted_slots)
    if pending and counts["updated"] < wanted:
        return "pending", f"slots {pending} placed nowhere: {d.pending[pending[0]]}"
    if d.rolling_back and (actions or counts["updated"] < wanted):
        return "rolling-back", f"rolling back to generation {d.generation}"
    if not actions and counts["updated"] == wanted:
        return "steady", f"{wanted}/{wanted} ready"
    return "progressing", f"{counts['ready']}/{wanted} ready"


def counts_of(d: Desired, slots, current, now: float) -> dict:
    wanted = set(slots)
    mine = [i for i in current if i.slot in wanted]
    return {
        "desired": len(slots),
        "running": sum(1 for i in mine if i.state == "running"),
        "ready": len({i.slot for i in mine if is_ready(i, d, now)}),
        "healthy": sum(1 for i in mine if i.health == "healthy"),
        "updated": len({i.slot for i in mine
                        if i.generation == d.generation and is_ready(i, d, now)}),
    }
