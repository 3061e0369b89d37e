"""Pure warm-pool planning (issue 18): a deployment's ``warm_pool: N`` keeps N instances of
its current generation created, started, ready once and then paused (role ``warm``). No I/O;
core.plan calls it, workers.warm carries out what it asks.

The pool is the N slots after the replicas' (the ``replicas + N`` lowest slots that are not
retired, less the replicas' own), so its arithmetic is the slots':

- scaling up from R to R + k takes the members of slots R .. R + k - 1 (``wake``: unpaused,
  one health check passed, then active); the pool's window moves up k slots, and its empty
  slots are refilled in the background;
- scaling down from R to R - k pauses the actives of slots R - k .. R - k + N - 1 back into
  the pool (``to_pool``) and removes what lies beyond the window (the pool keeps N);
- a member that dies (or fails its check before it is paused) is removed, its failure
  counted, and its slot refilled with the normal backoff; a paused member is never judged by
  its health (it is not probed);
- a rollout refreshes the pool after the active instances: members of an older generation
  are replaced once every replica runs the new one.

Refills (creates and starts of members) are planned only while the replicas have no work:
taking the pool and making replicas ready come first. Global deployments have no pool.
"""
from __future__ import annotations

from core.plan_types import Action, Desired, Instance

DEAD = {"stopped", "error"}
WAKEABLE = {"paused", "running", "created"}


def pool_slots(d: Desired, slots: list[int]) -> list[int]:
    """The pool's slots: the ``warm_pool`` lowest free slot numbers above the replicas'."""
    if d.slots is not None or d.warm_pool <= 0:
        return []
    out, taken, candidate = [], set(slots), (max(slots) + 1 if slots else 0)
    while len(out) < d.warm_pool:
        if candidate not in d.retired and candidate not in taken:
            out.append(candidate)
        candidate += 1
    return out


def misplaced(d: Desired, inst: Instance) -> bool:
    target = d.assignment.get(inst.slot)
    return target is not None and inst.node != target


def on(kind: str, reason: str, inst: Instance, graceful: bool = False) -> Action:
    return Action(kind, reason, inst.slot, inst.name, graceful=graceful, node=inst.node)


def can_wake(d: Desired, inst: Instance) -> bool:
    """A member that can serve now: the current generation, where its slot is placed, not
    failed or on its way out."""
    return (inst.generation == d.generation and not misplaced(d, inst)
            and inst.state in WAKEABLE and not inst.draining and inst.health != "unhealthy")


def wakes(d: Desired, slots: list[int], active_by_slot: dict, warm_by_slot: dict
          ) -> tuple[list[Action], set]:
    """Scale-up takes pool members first: each wanted slot with no replica and a member that
    can serve wakes it. Returns the actions and the slots being woken (the planner leaves
    those alone this pass); members in wanted slots that cannot serve are removed."""
    actions, woken = [], set()
    for slot in slots:
        members = warm_by_slot.get(slot, [])
        if not members:
            continue
        best = None
        if not active_by_slot.get(slot):
            ready = sorted((m for m in members if can_wake(d, m)),
                           key=lambda m: (m.state != "paused", m.state != "running"))
            best = ready[0] if ready else None
        for member in members:
            if member is best:
                actions.append(on("wake", f"scaled up: {member.name} taken from the warm pool",
                                  member))
                woken.add(slot)
            else:
                actions.append(on("remove", f"{member.name} cannot serve slot {slot}", member))
    return actions, woken


def leaving(d: Desired, pool: list[int], active_by_slot: dict, warm_by_slot: dict,
            is_ready) -> list[Action]:
    """Scale-down: replicas in the pool's slots pause back into it (a ready one of the
    current generation on its slot's node, when the slot has no member yet); the others
    go."""
    actions = []
    for slot in pool:
        actives = active_by_slot.get(slot, [])
        keep = None
        if not warm_by_slot.get(slot):
            fit = [i for i in actives if i.generation == d.generation and not misplaced(d, i)
                   and is_ready(i)]
            keep = fit[0] if fit else None
        for inst in actives:
            if inst is keep:
                actions.append(on("to_pool", f"scaled down to {d.replicas}: {inst.name} "
                                             f"paused into the warm pool", inst, graceful=True))
            else:
                actions.append(on("remove", f"scaled down to {d.replicas}", inst,
                                  graceful=inst.state not in DEAD))
    return actions


def beyond(pool: list[int], slots: list[int], warm_by_slot: dict, d: Desired) -> list[Action]:
    """Members whose slot is neither a replica's nor the pool's: the pool shrank."""
    wanted = set(pool) | set(slots)
    return [on("remove", f"warm pool is {d.warm_pool}", m)
            for slot, members in sorted(warm_by_slot.items(), reverse=True)
            if slot not in wanted for m in members]


def maintain(d: Desired, pool: list[int], warm_by_slot: dict, quiet: bool, refreshed: bool,
             is_ready, now: float) -> list[Action]:
    """Each pool slot's member: started, paused once ready, replaced when it dies or fails
    before its pause or (once ``refreshed``: the replicas run the current generation) when
    it is of an older one; an empty slot is filled while the replicas are ``quiet``."""
    actions = []
    for slot in pool:
        members = sorted(warm_by_slot.get(slot, []),
                         key=lambda m: (not can_wake(d, m), m.state != "paused"))
        for extra in members[1:]:
            actions.append(on("remove", "a second member in a pool slot", extra))
        if not members:
            if quiet:
                actions += fill(d, slot, now)
            continue
        actions += member(d, members[0], refreshed, is_ready, now)
    return actions


def member(d: Desired, m: Instance, refreshed: bool, is_ready, now: float) -> list[Action]:
    if m.state in DEAD:
        code = f" with code {m.exit_code}" if m.exit_code is not None else ""
        why = f"warm {m.name} exited{code}"
        return [on("record_failure", why, m), on("remove", why, m)]
    if m.generation != d.generation or misplaced(d, m):
        return [on("remove", f"warm pool refreshed to generation {d.generation}", m)] \
            if refreshed else []
    if m.state == "created":
        return [on("start", f"warm {m.name} was created but not started", m)]
    if m.state != "running":
        return []   # paused (the pool's rest), or on its way (creating, starting)
    if d.has_health_check and m.health == "unhealthy":
        why = f"warm {m.name} is unhealthy before its pause"
        return [on("record_failure", why, m), on("remove", why, m)]
    if is_ready(m):
        return [on("pause", f"warm {m.name} ready once: paused into the pool", m)]
    return [Action("wait", f"waiting for warm {m.name} to be ready", m.slot, until=now + 0.5)]


def fill(d: Desired, slot: int, now: float) -> list[Action]:
    if slot in d.pending:
        return [Action("wait", f"pool slot {slot} pending: {d.pending[slot]}", slot,
                       until=now + 5.0)]
    until = d.backoff_until.get(slot)
    if until is not None and until > now:
        return [Action("wait", f"pool slot {slot} refills in {until - now:.0f}s", slot,
                       until=until)]
    return [Action("create", f"warm pool: slot {slot} empty", slot, generation=d.generation,
                   node=d.assignment.get(slot), role="warm")]


def held(pool: list[int], warm_by_slot: dict, d: Desired) -> int:
    """Members that can serve now: paused, of the current generation, in a pool slot."""
    return sum(1 for slot in pool
               if any(m.state == "paused" and can_wake(d, m) for m in warm_by_slot.get(slot, [])))
