"""Pure reconciliation: plan(desired, observed, now) -> actions, each with a reason.

No I/O here. The runner (workers.deploy) observes Docker, calls ``plan`` and applies the
actions; it calls ``plan`` again until there is nothing left to do. Rules:

- the desired slots are the ``replicas`` lowest slot numbers that are not retired;
- an instance in a slot above them is removed (scale down removes the highest slots);
- an instance in a retired slot is stopped and kept (cleanup removes it later);
- a dead instance is removed and its slot refilled, at once the first time and later only
  when its backoff allows (the runner records failures and computes the backoff);
- an instance of an older generation is replaced by a rolling update: start-first (a new
  instance beside the old one, at most ``max_surge`` at a time, the old one removed once
  the new one is ready) or stop-first (at most ``max_unavailable`` slots down at a time);
- a new-generation instance that dies, or is not ready by the progress deadline, fails the
  rollout (the runner rolls back or pauses).
"""
from __future__ import annotations

from dataclasses import dataclass, field

LIVE = {"running", "created", "starting", "paused"}
DEAD = {"stopped", "error"}


@dataclass(frozen=True)
class Instance:
    name: str
    slot: int
    generation: int
    state: str
    started_at: float | None = None     # epoch seconds
    health: str = "none"
    exit_code: int | None = None
    draining: bool = False


@dataclass(frozen=True)
class Desired:
    replicas: int
    generation: int
    stable_generation: int | None = None
    retired: frozenset = frozenset()
    max_surge: int = 1
    max_unavailable: int = 0
    order: str = "start-first"
    monitor: float = 5.0
    progress_deadline: float = 600.0
    rollout_started_at: float | None = None
    has_health_check: bool = False
    backoff_until: dict = field(default_factory=dict)    # slot -> epoch of next allowed start
    failures: dict = field(default_factory=dict)         # slot -> consecutive failures
    deleting: bool = False
    paused: bool = False
    rolling_back: bool = False


@dataclass(frozen=True)
class Action:
    kind: str               # create, start, remove, stop, record_failure, rollout_failed, wait
    reason: str
    slot: int | None = None
    name: str | None = None
    generation: int | None = None
    graceful: bool = True
    until: float | None = None


@dataclass
class Plan:
    actions: list
    state: str
    reason: str
    counts: dict

    @property
    def work(self) -> list:
        """Actions that change something (everything but waits)."""
        return [a for a in self.actions if a.kind != "wait"]

    @property
    def waits(self) -> list:
        return [a for a in self.actions if a.kind == "wait"]


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


def plan(d: Desired, observed: list[Instance], now: float) -> Plan:
    actions: list[Action] = []
    current = [i for i in observed if i.state not in ("removing", "removed")]

    if d.deleting:
        for inst in current:
            actions.append(Action("remove", "deployment deleted", inst.slot, inst.name,
                                  graceful=inst.state in LIVE))
        return Plan(actions, "progressing", "deleting", _counts(d, [], current, now))

    slots = desired_slots(d.replicas, d.retired)
    wanted = set(slots)
    by_slot: dict[int, list[Instance]] = {}
    for inst in current:
        by_slot.setdefault(inst.slot, []).append(inst)

    # slots nobody wants any more: retired ones stop (kept), others go
    for slot, insts in sorted(by_slot.items(), reverse=True):
        if slot in wanted:
            continue
        for inst in insts:
            if slot in d.retired:
                if inst.state in LIVE:
                    actions.append(Action("stop", f"slot {slot} retired", slot, inst.name))
            else:
                actions.append(Action("remove", f"scaled down to {d.replicas}", slot, inst.name,
                                      graceful=inst.state in LIVE))

    needs_update: list[int] = []
    surging = 0
    crashloop = []
    for slot in slots:
        insts = by_slot.get(slot, [])
        dead = [i for i in insts if i.state in DEAD]
        live = [i for i in insts if i.state in LIVE and not i.draining]
        # an instance unhealthy past its threshold is replaced like a dead one
        sick = [i for i in live if d.has_health_check and i.health == "unhealthy"]
        live = [i for i in live if i not in sick]
        for inst in sick:
            if in_rollout(d) and inst.generation == d.generation and not d.rolling_back:
                return Plan([Action("rollout_failed", f"{inst.name} of generation "
                                    f"{d.generation} is unhealthy", slot, inst.name)],
                            "progressing", "rollout failed", _counts(d, slots, current, now))
            actions.append(Action("remove", f"{inst.name} is unhealthy", slot, inst.name,
                                  graceful=False))
            actions.append(Action("record_failure", f"{inst.name} is unhealthy", slot,
                                  inst.name))
        dead += sick
        for inst in [i for i in dead if i not in sick]:
            code = f" with code {inst.exit_code}" if inst.exit_code is not None else ""
            if in_rollout(d) and inst.generation == d.generation and not d.rolling_back:
                return Plan([Action("rollout_failed",
                                    f"{inst.name} of generation {d.generation} exited{code}",
                                    slot, inst.name)],
                            "progressing", "rollout failed", _counts(d, slots, current, now))
            actions.append(Action("remove", f"{inst.name} exited{code}", slot, inst.name,
                                  graceful=False))
            actions.append(Action("record_failure", f"{inst.name} exited{code}", slot,
                                  inst.name))
        new = [i for i in live if i.generation == d.generation]
        old = [i for i in live if i.generation != d.generation]
        for extra in new[1:]:
            actions.append(Action("remove", "duplicate instance in slot", slot, extra.name))
        new = new[:1]
        # two older generations in one slot (a rollout interrupted by another): keep the
        # best one until it is replaced, the others go now
        old.sort(key=lambda i: (is_ready(i, d, now), i.generation), reverse=True)
        for extra in old[1:]:
            actions.append(Action("remove", "an older instance already has a successor", slot,
                                  extra.name))
        old = old[:1]
        for inst in new:
            if inst.state == "created":
                actions.append(Action("start", f"{inst.name} was created but not started",
                                      slot, inst.name))
        if not new and not old:
            if dead:
                continue  # the failure is recorded first; the next pass refills or waits
            until = d.backoff_until.get(slot)
            if until is not None and until > now:
                failures = d.failures.get(slot, 0)
                if failures >= 2:
                    crashloop.append(slot)
                actions.append(Action("wait", f"slot {slot} restarts in {until - now:.0f}s "
                                              f"(backoff after {failures} failures)",
                                      slot, until=until))
            else:
                reason = "replacing a failed instance" if slot in d.backoff_until \
                    else "slot empty"
                actions.append(Action("create", reason, slot, generation=d.generation))
        elif new and old:
            surging += 1
            if is_ready(new[0], d, now):
                # the old one still exists until this pass removes it: it keeps counting
                # against max_surge, so the next surge instance waits for the next pass
                for inst in old:
                    actions.append(Action("remove", f"replaced by {new[0].name}", slot,
                                          inst.name))
            elif _past_deadline(d, now):
                return Plan([Action("rollout_failed", f"{new[0].name} not ready within the "
                                    f"progress deadline ({d.progress_deadline:.0f}s)", slot,
                                    new[0].name)],
                            "progressing", "rollout failed", _counts(d, slots, current, now))
            else:
                actions.append(Action("wait", f"waiting for {new[0].name} to be ready", slot,
                                      until=now + 0.5))
        elif old:
            needs_update.append(slot)
        elif new and not is_ready(new[0], d, now) and new[0].state == "running":
            if in_rollout(d) and _past_deadline(d, now):
                return Plan([Action("rollout_failed", f"{new[0].name} not ready within the "
                                    f"progress deadline ({d.progress_deadline:.0f}s)", slot,
                                    new[0].name)],
                            "progressing", "rollout failed", _counts(d, slots, current, now))
            if in_rollout(d) or d.stable_generation is None:
                actions.append(Action("wait", f"waiting for {new[0].name} to be ready", slot,
                                      until=now + 0.5))

    if needs_update and not d.paused:
        actions += _rolling_update(d, slots, by_slot, needs_update, surging, now)

    counts = _counts(d, slots, current, now)
    if d.paused:
        state, reason = "paused", "rollout paused"
    elif crashloop:
        state, reason = "crashloop", f"slots {crashloop} keep failing; restarting with backoff"
    elif d.rolling_back and (actions or counts["updated"] < len(slots)):
        state, reason = "rolling-back", f"rolling back to generation {d.generation}"
    elif not actions and counts["updated"] == len(slots):
        state, reason = "steady", f"{len(slots)}/{len(slots)} ready"
    else:
        state, reason = "progressing", f"{counts['ready']}/{len(slots)} ready"
    return Plan(actions, state, reason, counts)


def _past_deadline(d: Desired, now: float) -> bool:
    return d.rollout_started_at is not None and now - d.rollout_started_at > d.progress_deadline


def _rolling_update(d: Desired, slots, by_slot, candidates: list[int], surging: int,
                    now: float) -> list[Action]:
    actions = []
    max_surge, max_unavailable = d.max_surge, d.max_unavailable
    if max_surge <= 0 and max_unavailable <= 0:
        max_surge = 1  # neither would never progress
    if d.order == "start-first" and max_surge > 0:
        budget = max_surge - surging
        for slot in candidates[:max(0, budget)]:
            actions.append(Action("create", f"rolling update to generation {d.generation}",
                                  slot, generation=d.generation))
        return actions
    ready_slots = sum(1 for s in slots
                      if any(is_ready(i, d, now) for i in by_slot.get(s, [])))
    unavailable = len(slots) - ready_slots
    budget = max(max_unavailable, 1 if max_surge > 0 else 0) - unavailable
    for slot in candidates[:max(0, budget)]:
        for inst in by_slot.get(slot, []):
            if inst.state in LIVE:
                actions.append(Action("remove", f"rolling update to generation {d.generation} "
                                      "(stop-first)", slot, inst.name))
        actions.append(Action("create", f"rolling update to generation {d.generation}", slot,
                              generation=d.generation))
    return actions


def _counts(d: Desired, slots, current, now: float) -> dict:
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
