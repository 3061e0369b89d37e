"""Placement: which node takes one instance of a deployment, and why (issue 14).

Pure (no I/O): the caller gathers the node states (reserved CPU and memory, bound fixed
ports, instance counts, volumes) and applies the decisions. The rules are Swarm's and Nomad's:

- candidates are ready nodes with availability "active" that satisfy every constraint,
  have none of the instance's fixed host ports bound, hold fewer than ``max_per_node``
  instances of the deployment, and have room for its CPU and memory reservation;
- ``spread`` (the default, Swarm's rule) ranks by fewest instances of this deployment, then
  fewest instances in all, then the name; ``binpack`` (Nomad's default) by the most
  allocated node after placing (the higher of its CPU and memory fractions), then the name;
- constraints use Swarm's grammar: ``node.name`` or ``node.labels.<key>``, ``==`` or
  ``!=``, a value; field names and values compare case-insensitively as in Swarm, label
  keys exactly, and a missing label never equals anything;
- volumes are per engine: an instance that mounts named volumes goes where they are (an
  engine holding one, or a node with instances of its deployment); when none has them yet,
  the first goes where the ranking says and the others follow it.

Every decision keeps its reason: the ranking when placed (spread shows the counts a node
holds now, binpack its allocation if it takes the instance); when nothing fits, the causes
per node grouped by cause, and every constraint that no node at all satisfies.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

SPREAD, BINPACK = "spread", "binpack"
STRATEGIES = (SPREAD, BINPACK)
NAME_FIELD, LABELS_PREFIX = "node.name", "node.labels."

_OPERATOR = re.compile(r"==|!=")
# Swarm's patterns (swarmkit, manager/constraint): a key of letters, digits, "-", "_", ".";
# a value with no operator character so that no text reads two ways, and spaces as its only
# whitespace (Swarm takes any, but a tab or a newline would break the one-line reasons).
_KEY = re.compile(r"[a-z_][a-z0-9\-_.]+", re.IGNORECASE | re.ASCII)
_VALUE = re.compile(r"[a-z0-9:\-_ .*()?+\[\]\\^$|/]+", re.IGNORECASE | re.ASCII)
_VALUE_CHARACTERS = r"letters, digits, spaces and : - _ . * ( ) ? + [ ] \ ^ $ | /"

# The order of the causes in a pending reason, and where a node's name goes in each.
(_NOT_READY, _AVAILABILITY, _CONSTRAINT, _VOLUMES, _PORTS, _MAX_PER_NODE, _CAPACITY,
 _NO_NODE) = range(8)
_NODES = "{nodes}"
_UNAVAILABLE = {"pause": "paused", "drain": "drained"}


@dataclass(frozen=True)
class Constraint:
    field: str      # "node.name" or "node.labels.<key>"
    op: str         # "==" or "!="
    value: str
    text: str       # as the user wrote it (outer spaces dropped), for reasons


@dataclass(frozen=True)
class NodeState:
    name: str
    ready: bool              # fresh heartbeat, Docker usable, not down
    availability: str        # "active" | "pause" | "drain": only active takes new instances
    labels: dict             # str -> str
    cpus: float              # what may be reserved (capacity or its override, minus reserve)
    memory: int              # bytes, likewise
    reserved_cpus: float     # reserved by instances already there (limits, or the default
    reserved_memory: int     #   request for instances without limits)
    used_ports: frozenset    # fixed host ports bound there, as "8080/tcp"
    instances: int           # instances there in all (every deployment)
    volumes: frozenset = frozenset()   # the named volumes its engine holds


@dataclass(frozen=True)
class Ask:
    """What one instance of a deployment needs."""
    deployment: str
    cpus: float              # its limit, or the configured default request
    memory: int
    ports: frozenset         # fixed host ports it binds, as "8080/tcp"
    constraints: tuple       # of Constraint
    max_per_node: int | None
    strategy: str = SPREAD   # "spread" | "binpack"
    volumes: frozenset = frozenset()   # named volumes it mounts and follows


@dataclass(frozen=True)
class Decision:
    node: str | None         # None: fits nowhere now (pending)
    reason: str


def parse_constraint(text: str) -> Constraint:
    """Swarm's grammar: "node.name==n2", "node.labels.zone != b"; ValueError says why."""
    written = text.strip()
    found = _OPERATOR.search(written)
    if found is None:
        raise ValueError(f"constraint {written!r} needs an operator: == or !=")
    field = _field(written[:found.start()].strip(), written)
    value = written[found.end():].strip()
    if not value:
        raise ValueError(f"constraint {written!r} has an empty value")
    if not _VALUE.fullmatch(value):
        raise ValueError(f"constraint {written!r}: the value {value!r} may hold only "
                         f"{_VALUE_CHARACTERS}")
    return Constraint(field=field, op=found.group(), value=value, text=written)


def _field(key: str, written: str) -> str:
    """The canonical field a constraint's key names: node.name or node.labels.<key>."""
    if key.lower() == NAME_FIELD:
        return NAME_FIELD
    if key.lower().startswith(LABELS_PREFIX):
        label = key[len(LABELS_PREFIX):]
        if not label:
            raise ValueError(f"constraint {written!r} has an empty label key")
        if not _KEY.fullmatch(key):
            raise ValueError(f"constraint {written!r}: the label key {label!r} may hold only "
                             "letters, digits, - _ and .")
        return LABELS_PREFIX + label
    raise ValueError(f"constraint {written!r}: {key!r} is not a field; use {NAME_FIELD} "
                     f"or {LABELS_PREFIX}<key>")


def matches(c: Constraint, node: NodeState) -> bool:
    """Whether `node` satisfies `c`; a missing label never equals (so != holds there)."""
    if c.field == NAME_FIELD:
        actual = node.name
    else:
        actual = node.labels.get(c.field[len(LABELS_PREFIX):])
    equal = actual is not None and str(actual).casefold() == c.value.casefold()
    return equal if c.op == "==" else not equal


def place(ask: Ask, nodes: list[NodeState], of_deployment: dict[str, int]) -> Decision:
    """The node for one instance of `ask`; `of_deployment` counts its instances per node."""
    if ask.strategy not in STRATEGIES:
        raise ValueError(f"unknown placement strategy {ask.strategy!r}: use spread or binpack")
    if not nodes:
        return Decision(None, "no nodes")
    candidates, groups = _sort_out(ask, nodes, of_deployment, frozenset(),
                                   volume_homes(ask, nodes, of_deployment))
    if not candidates:
        return Decision(None, _render(groups))
    if ask.strategy == SPREAD:
        ranked = sorted(candidates, key=lambda n: (of_deployment.get(n.name, 0), n.instances,
                                                   n.name))
        shown = [f"{n.name}: {of_deployment.get(n.name, 0)} of {ask.deployment}, "
                 f"{n.instances} in all" for n in ranked]
    else:
        ranked = sorted(candidates, key=lambda n: (-_allocated(ask, n), n.name))
        shown = [f"{n.name}: {100 * _allocated(ask, n):.0f}% allocated" for n in ranked]
    return Decision(ranked[0].name, "; ".join(shown))


def place_many(ask: Ask, nodes: list[NodeState], of_deployment: dict[str, int],
               count: int) -> list[Decision]:
    """`count` instances one after another, each decision counting the ones before it."""
    nodes, held = list(nodes), dict(of_deployment)
    decisions: list[Decision] = []
    while len(decisions) < count:
        decision = place(ask, nodes, held)
        if decision.node is None:
            # Nothing changed since the last decision: the rest are pending for one reason.
            return decisions + [decision] * (count - len(decisions))
        decisions.append(decision)
        nodes = [_with_one_more(ask, n) if n.name == decision.node else n for n in nodes]
        held[decision.node] = held.get(decision.node, 0) + 1
    return decisions


def global_nodes(ask: Ask, nodes: list[NodeState], *,
                 running: frozenset = frozenset()) -> tuple[list[str], str]:
    """The nodes a "global" deployment runs one instance on, sorted, and who is left out.

    `running` names the nodes that already run its instance: their reservation and ports
    are its own, so there only readiness, availability and constraints are checked, and a
    paused node keeps it (as a Swarm global service keeps a task on a node that still
    qualifies; a drained one does not).
    """
    if not nodes:
        return [], "no nodes"
    # No instances counted: max_per_node (at least 1) never leaves a node out. One
    # instance per node: each node's own copy of a volume is what a global deployment wants.
    candidates, groups = _sort_out(ask, nodes, {}, running, frozenset())
    names = sorted(n.name for n in candidates)
    head = f"eligible: {', '.join(names)}" if names else "no node eligible"
    left_out = _render(groups)
    return names, f"{head}; {left_out}" if left_out else head


def volume_homes(ask: Ask, nodes: list[NodeState], of_deployment: dict[str, int]) \
        -> frozenset:
    """The nodes an instance of `ask` may go to for its named volumes (empty: any node):
    those whose engine holds one of them, and those holding instances of the deployment."""
    if not ask.volumes:
        return frozenset()
    return frozenset({n.name for n in nodes if n.volumes & ask.volumes}
                     | {name for name, count in of_deployment.items() if count > 0})


def _sort_out(ask: Ask, nodes: list[NodeState], of_deployment: dict[str, int],
              running: frozenset, homes: frozenset) -> tuple[list[NodeState], dict]:
    """The candidates, and the others' causes: {(order, sub-order, template): [node]}."""
    hopeless = {i for i, c in enumerate(ask.constraints)
                if not any(matches(c, n) for n in nodes)}
    groups: dict[tuple, list[str]] = {
        (_NO_NODE, i, f"{ask.constraints[i].text} matches no node"): [] for i in hopeless}
    candidates = []
    for node in nodes:
        causes = _causes(ask, node, of_deployment.get(node.name, 0), hopeless,
                         node.name in running, homes)
        if not causes:
            candidates.append(node)
        for cause in causes:
            groups.setdefault(cause, []).append(node.name)
    return candidates, groups


def _causes(ask: Ask, node: NodeState, held: int, hopeless: set, own: bool,
            homes: frozenset) -> list[tuple]:
    """Why `node` cannot take one instance of `ask` (empty: it can).

    A node that is not ready, paused or drained is reported for that alone: nothing else
    about it matters until it changes. Otherwise every failed rule is reported, so that a
    reason names all a user has to change.
    """
    if not node.ready:
        return [(_NOT_READY, 0, f"not ready: {_NODES}")]
    # pause stops new work only: what already runs there (a global instance) stays
    if node.availability != "active" and not (own and node.availability == "pause"):
        word = _UNAVAILABLE.get(node.availability, f"availability {node.availability}")
        return [(_AVAILABILITY, 0, f"{word}: {_NODES}")]
    causes = []
    for i, c in enumerate(ask.constraints):
        if i in hopeless:
            causes.append((_NO_NODE, i, f"{c.text} matches no node"))
        elif not matches(c, node):
            causes.append((_CONSTRAINT, i, f"{c.text} not met on {_NODES}"))
    if homes and node.name not in homes:  # "volume data: on n2, not on local"
        word = "volume" if len(ask.volumes) == 1 else "volumes"
        causes.append((_VOLUMES, 0, f"{word} {_names(ask.volumes)}: on {_names(homes)}, "
                                    f"not on {_NODES}"))
    taken = sorted(ask.ports & node.used_ports)
    if taken and not own:
        noun = "port" if len(taken) == 1 else "ports"
        causes.append((_PORTS, 0, f"{noun} {', '.join(taken)} in use on {_NODES}"))
    if ask.max_per_node is not None and held >= ask.max_per_node:
        causes.append((_MAX_PER_NODE, held, f"{held} of {ask.deployment} already on {_NODES} "
                                            f"(max_per_node {ask.max_per_node})"))
    short = [] if own else _short(ask, node)
    if short:
        causes.append((_CAPACITY, len(short), f"insufficient {' and '.join(short)} on {_NODES}"))
    return causes


def _names(names) -> str:
    return ", ".join(sorted(names))


def _short(ask: Ask, node: NodeState) -> list[str]:
    """The resources `node` lacks for one more instance of `ask`: "cpu", "memory"."""
    short = []
    if _nano(node.reserved_cpus) + _nano(ask.cpus) > _nano(node.cpus):
        short.append("cpu")
    if node.reserved_memory + ask.memory > node.memory:
        short.append("memory")
    return short


def _nano(cpus: float) -> int:
    # CPUs compare in Docker's unit (NanoCPUs), so that float sums such as ten reservations
    # of 0.1 fill a 1.0 CPU node exactly instead of missing it by a rounding error.
    return round(cpus * 1_000_000_000)


def _allocated(ask: Ask, node: NodeState) -> float:
    """Binpack's score: the higher of the CPU and memory fractions after placing `ask`."""
    cpu = _fraction(_nano(node.reserved_cpus) + _nano(ask.cpus), _nano(node.cpus))
    memory = _fraction(node.reserved_memory + ask.memory, node.memory)
    return max(cpu, memory)


def _fraction(used: int, capacity: int) -> float:
    # A candidate fits, so a capacity of 0 means nothing is used there either.
    return used / capacity if capacity > 0 else 0.0


def _with_one_more(ask: Ask, node: NodeState) -> NodeState:
    """`node` after it takes one instance of `ask`."""
    return replace(node, reserved_cpus=node.reserved_cpus + ask.cpus,
                   reserved_memory=node.reserved_memory + ask.memory,
                   used_ports=node.used_ports | ask.ports, instances=node.instances + 1)


def _render(groups: dict) -> str:
    """One line from the grouped causes: "insufficient memory on local, n2; ..."."""
    lines = []
    for key in sorted(groups):
        template = key[2]
        lines.append(template.replace(_NODES, _names(groups[key])))
    return "; ".join(lines)


def node_is_ready(status: str, heartbeat_age: float, docker_ok: bool,
                  stale_after: float) -> bool:
    """Fresh heartbeat, Docker usable, not declared down (nor returning from it)."""
    return status == "ready" and heartbeat_age <= stale_after and docker_ok


def node_state(row: dict, used: dict, ready: bool, reserve_cpus: float,
               reserve_memory: int) -> NodeState:
    """A node as placement sees it, from its record (reported figures, operator overrides,
    labels) and what is placed on it (instances, reservations, fixed ports)."""
    cpus = row["cpus"] if row["cpus_override"] is None else row["cpus_override"]
    memory = row["memory_bytes"] if row["memory_override"] is None else row["memory_override"]
    return NodeState(
        name=row["name"], ready=ready, availability=row["availability"],
        labels=dict(row["all_labels"] or {}),
        cpus=max(0.0, float(cpus or 0) - reserve_cpus),
        memory=max(0, int(memory or 0) - reserve_memory),
        reserved_cpus=float(used.get("cpus") or 0.0), reserved_memory=int(used.get("memory") or 0),
        used_ports=frozenset(used.get("ports") or ()), instances=int(used.get("instances") or 0),
        volumes=frozenset(row.get("volumes") or ()))


def named_volumes(mounts) -> frozenset:
    """The named volumes a template's mounts use (not anonymous ones, tmpfs or binds)."""
    return frozenset(m["source"] for m in mounts or () if m.get("type") == "volume"
                     and m.get("source"))


def fixed_ports(ports: dict) -> frozenset:
    """The fixed host ports a port map binds, as "8080/tcp" ("80/tcp": 8080)."""
    return frozenset(f"{host}/{(spec.split('/') + ['tcp'])[1]}"
                     for spec, host in (ports or {}).items() if host)


def rebalance_moves(assignment: dict, eligible: list[str]) -> list[int]:
    """Slots to place again so that a deployment spreads evenly over ``eligible`` nodes:
    from each node holding more than its share, its highest slots beyond the share."""
    if not eligible or not assignment:  # nowhere to go, or nothing to move
        return []
    share, extra = divmod(len(assignment), len(eligible))
    by_node: dict[str, list[int]] = {}
    for slot, node in sorted(assignment.items()):
        by_node.setdefault(node, []).append(slot)
    counts = sorted(((len(s), n) for n, s in by_node.items() if n in eligible), reverse=True)
    allowed = {n: share + (1 if i < extra else 0) for i, (_, n) in enumerate(counts)}
    moves = []
    for node, held in by_node.items():
        limit = allowed.get(node, 0) if node in eligible else 0
        moves += held[limit:]
    return sorted(moves)
