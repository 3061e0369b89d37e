"""Placement, the runner's side: the nodes as core.placement sees them, what a deployment's
instance asks for, and each slot's node decided, persisted (slots.node) and explained.

A slot keeps its node while that node is ready, active and satisfies the deployment's
constraints; it is placed again when its node goes down (``rescheduled``), drains, or stops
qualifying. A slot placed nowhere stays pending with the reason per node and is placed as
soon as a node fits. A deployment in global mode has one slot per eligible node.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import config
from core import placement
from core.placement import Ask
from core.plan import desired_slots
from db import events, nodes as node_store, slots

@dataclass
class Fleet:
    """Every node as placement sees it, and its row (status, epoch, address)."""
    states: dict = field(default_factory=dict)     # name -> NodeState
    rows: dict = field(default_factory=dict)       # name -> nodes row

    def ready(self, name: str | None) -> bool:
        """Takes work now: fresh heartbeat, Docker usable, not down."""
        return name is not None and name in self.states and self.states[name].ready

    def holds(self, name: str | None) -> bool:
        """Keeps what is placed on it: not declared down (a heartbeat late by less than
        HARBORMASTER_NODE_DOWN_AFTER moves nothing; being declared down does)."""
        return name is not None and name in self.rows and self.rows[name]["status"] == "ready"

def is_ready(row: dict, cfg: config.Config) -> bool:
    return placement.node_is_ready(row["status"], row["age"], row["docker_ok"],
                                   cfg.heartbeat_stale_after)


def fleet(cfg: config.Config) -> Fleet:
    rows = {r["name"]: r for r in node_store.all_nodes()}
    usage = node_store.usage(cfg.default_cpu_request, cfg.default_memory_request)
    return Fleet(rows=rows, states={
        name: placement.node_state(row, usage.get(name, {}), is_ready(row, cfg),
                                   cfg.node_reserve_cpus, cfg.node_reserve_memory)
        for name, row in rows.items()})


def ask_of(dep: dict, cfg: config.Config) -> Ask:
    """What one instance of the deployment needs, from its template and resources."""
    template, resources = dep["template"], dep["resources"] or {}
    rules = template.get("placement") or {}
    return Ask(deployment=dep["name"],
               cpus=float(resources.get("cpus") or cfg.default_cpu_request),
               memory=int(resources.get("memory") or cfg.default_memory_request),
               ports=placement.fixed_ports(template.get("ports")),
               constraints=tuple(placement.parse_constraint(c)
                                 for c in rules.get("constraints") or ()),
               max_per_node=rules.get("max_per_node"),
               strategy=rules.get("strategy") or placement.SPREAD,
               volumes=placement.named_volumes(template.get("mounts"))
               if rules.get("follow_volumes", True) else frozenset())

@dataclass
class Placed:
    slots: list                                       # the wanted slots
    assignment: dict = field(default_factory=dict)    # slot -> node
    pending: dict = field(default_factory=dict)       # slot -> why placed nowhere

def keeps(ask: Ask, fleet_: Fleet, node: str | None) -> bool:
    """Whether a slot may stay on its node: not down, not drained, constraints still met
    (pause stops new work only)."""
    state = fleet_.states.get(node) if node else None
    return (state is not None and fleet_.holds(node) and state.availability != "drain"
            and all(placement.matches(c, state) for c in ask.constraints))

def place_slots(dep: dict, fleet_: Fleet, cfg: config.Config) -> Placed:
    """Each wanted slot's node: kept, or placed (again), persisted with its reason."""
    ask = ask_of(dep, cfg)
    current = slots.assignments(dep["name"])
    if (dep["template"].get("mode") or "replicated") == "global":
        return place_global(dep, ask, fleet_, current)
    # the warm pool's slots are placed as replicas are: its members hold their memory there
    wanted = desired_slots(dep["replicas"] + dep["warm_pool"], set(dep["retired_slots"]))
    out = Placed(wanted)
    held: dict[str, int] = {}
    unplaced = []
    for slot in wanted:
        node = (current.get(slot) or {}).get("node")
        if keeps(ask, fleet_, node):
            out.assignment[slot] = node
            held[node] = held.get(node, 0) + 1
        else:
            unplaced.append((slot, node))
    states = [fleet_.states[n] for n in sorted(fleet_.states)]
    # instances already running where they are placed hold their place in the counts
    decisions = placement.place_many(ask, states, held, len(unplaced)) if unplaced else []
    for (slot, before), decision in zip(unplaced, decisions):
        record(dep["name"], slot, before, decision, fleet_, current.get(slot))
        if decision.node is None:
            out.pending[slot] = decision.reason
        else:
            out.assignment[slot] = decision.node
    return out

def place_global(dep: dict, ask: Ask, fleet_: Fleet, current: dict) -> Placed:
    """One slot per eligible node: a node keeps its slot number; a new node gets the next."""
    by_node = {row["node"]: slot for slot, row in current.items() if row["node"]}
    states = [fleet_.states[n] for n in sorted(fleet_.states)]
    eligible, reason = placement.global_nodes(ask, states, running=frozenset(by_node))
    out = Placed([])
    next_slot = max(current, default=-1) + 1
    for node in eligible:
        slot = by_node.get(node)
        if slot is None:
            slot, next_slot = next_slot, next_slot + 1
            slots.assign(dep["name"], slot, node, f"global: {reason}", None)
            events.add("placed", deployment=dep["name"],
                       detail={"slot": slot, "node": node, "reason": f"global: {reason}"})
        out.slots.append(slot)
        out.assignment[slot] = node
    for node, slot in by_node.items():
        if node not in eligible and slot not in out.assignment:
            slots.assign(dep["name"], slot, None, None, f"{node} no longer eligible")
    out.slots.sort()
    return out

def record(deployment: str, slot: int, before: str | None, decision, fleet_: Fleet,
           row: dict | None) -> None:
    """Persist a placement decision and say it, once (not again each pass)."""
    previous = row or {}
    if decision.node is None:
        if previous.get("pending_reason") != decision.reason or previous.get("node"):
            slots.assign(deployment, slot, None, None, decision.reason)
            events.add("pending", deployment=deployment,
                       detail={"slot": slot, "reason": decision.reason})
        return
    slots.assign(deployment, slot, decision.node, decision.reason, None)
    kind = "placed"
    if before is not None and before != decision.node:
        state = fleet_.rows.get(before, {})
        kind = "rescheduled" if state.get("status") != "ready" else "moved"
    events.add(kind, deployment=deployment,
               detail={"slot": slot, "node": decision.node, "from": before,
                       "reason": decision.reason})
