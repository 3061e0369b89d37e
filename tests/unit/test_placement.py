"""core.placement: the constraint grammar, the rules, spread and binpack, the reasons,
place_many, global; examples, then properties against a reference written from the rules."""
from __future__ import annotations

import string
from dataclasses import replace
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.placement import (Ask, Decision, NodeState, global_nodes, matches,
                            parse_constraint, place, place_many)

MIB, GIB = 1024 * 1024, 1024 * 1024 * 1024


def node(name, *, used_ports=(), **changes):
    empty = NodeState(name, ready=True, availability="active", labels={}, cpus=2.0,
                      memory=2 * GIB, reserved_cpus=0.0, reserved_memory=0,
                      used_ports=frozenset(used_ports), instances=0)
    return replace(empty, **changes)


def ask(*, ports=(), constraints=(), **changes):
    web = Ask(deployment="web", cpus=0.25, memory=128 * MIB, ports=frozenset(ports),
              constraints=tuple(map(parse_constraint, constraints)), max_per_node=None)
    return replace(web, **changes)


# --- the constraint grammar ---------------------------------------------------------------
VALID = [  # as written -> field, operator, value
    ("node.name==n2", "node.name == n2"), ("node.name != local", "node.name != local"),
    ("node.labels.zone  ==  b", "node.labels.zone == b"),
    ("  node.labels.zone!= b  ", "node.labels.zone != b"),
    ("node.labels.a.b==c", "node.labels.a.b == c"),
    ("node.labels.com.example-team_x==ops", "node.labels.com.example-team_x == ops"),
    ("node.labels.zone==us east 1", "node.labels.zone == us east 1"),
    ("node.labels.disk==ssd:/dev/sda[0]", "node.labels.disk == ssd:/dev/sda[0]"),
    # Swarm: field names in any case, the label key as written
    ("NODE.Name==N2", "node.name == N2"), ("Node.Labels.Zone==b", "node.labels.Zone == b")]


@pytest.mark.parametrize("text, parts", VALID)
def test_valid_constraints(text, parts):
    c = parse_constraint(text)
    assert [c.field, c.op, c.value] == parts.split(" ", 2) and c.text == text.strip()


REFUSED = {
    "not a field": ["node.role==manager", "node.hostname==n2", "node.id==abc", "==n2",
                    "engine.labels.os==linux", "node.labels==b", "labels.zone==b"],
    "needs an operator": ["node.name=n2", "node.name~=n2", "node.name =~ n2", "node.name<n2",
                          "node.name", ""],
    "empty label key": ["node.labels.==b", "node.labels. == b"],
    "the label key": ["node.labels.zo ne==b", "node.labels.zone!x==b", "node.labels.zöne==b",
                      "node.labels.\u212a==b"],  # the Kelvin sign: case-folds to k
    "empty value": ["node.name==", "node.labels.zone !=   "], "the value": [
        "node.name==a==b", "node.name==a=b", "node.name!==b", "node.name==~b", "node.name==\u017f",
        "node.labels.zone==b\tc", "node.labels.zone==b\nc", "node.labels.zone==é"]}


@pytest.mark.parametrize("text, why", [(t, why) for why, ts in REFUSED.items() for t in ts])
def test_refused_constraints_say_why(text, why):
    with pytest.raises(ValueError, match=why):
        parse_constraint(text)


@settings(max_examples=300, deadline=None)
@given(st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12),
       st.sampled_from(["==", "!="]), st.sampled_from(["", " ", "  "]),
       st.text(string.ascii_letters + string.digits + ":-_.*()?+[]\\^$|/ ", min_size=1,
               max_size=12).filter(str.strip))
def test_grammar_round_trip(key, op, spaces, value):
    c = parse_constraint(f"node.labels.{key}{spaces}{op}{spaces}{value}")
    assert (c.field, c.op, c.value) == (f"node.labels.{key}", op, value.strip())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.text("node.labelsz=!~ ", max_size=30))
def test_any_text_parses_or_is_a_value_error(text):
    try:
        c = parse_constraint(text)
    except ValueError as refused:
        assert "==" in text or "!=" in text or "needs an operator" in str(refused)
        return
    assert c.op in ("==", "!=") and c.op in text
    assert c.field == "node.name" or c.field.startswith("node.labels.")


MATCHES = {  # on a node n2 with the labels zone=b, Disk=SSD; on a node without labels
    "node.name==n2": (True, False), "node.name==N2": (True, False),   # Swarm: values any case
    "node.name!=n2": (False, True), "node.labels.zone==b": (True, False),
    "node.labels.zone==a": (False, False), "node.labels.Disk==ssd": (True, False),
    "node.labels.disk==ssd": (False, False),                           # label keys exactly
    "node.labels.zone!=b": (False, True)}               # a missing label never equals


@pytest.mark.parametrize("text, expected", MATCHES.items())
def test_matches(text, expected):
    c, n2 = parse_constraint(text), node("n2", labels={"zone": "b", "Disk": "SSD"})
    assert (matches(c, n2), matches(c, node("local"))) == expected


# --- spread, binpack and the reasons ------------------------------------------------------
SEQUENCES = [  # (nodes, ask, instances of web per node, count) -> the nodes chosen in turn
    ([node("n2"), node("local")], ask(), {}, 4, ["local", "n2", "local", "n2"]),
    # Swarm's rule: fewest of this deployment, then fewest in all (local holds 3 of another)
    ([node("local", instances=3), node("n2")], ask(), {}, 3, ["n2", "local", "n2"]),
    ([node("local", instances=3), node("n2", instances=1)], ask(), {"local": 3, "n2": 1}, 3,
     ["n2", "n2", "local"]),
    ([node("n3"), node("n1"), node("n2")], ask(), {}, 1, ["n1"]),
    ([node("local"), node("n2")], ask(constraints=["node.name==n2"]), {}, 3, ["n2"] * 3),
    ([node("local"), node("n2")], ask(max_per_node=2), {}, 5, ["local", "n2"] * 2 + [None]),
    ([node("local"), node("n2")], ask(ports=["8080/tcp"]), {}, 4, ["local", "n2", None, None]),
    # binpack fills one node to capacity before the next
    ([node("n2", cpus=1.0), node("local", cpus=1.0)], ask(cpus=0.25, strategy="binpack"), {},
     9, ["local"] * 4 + ["n2"] * 4 + [None]),
    # ten reservations of 0.1 fill 1.0 CPU exactly, although 0.1 x 10 != 1.0 in floats
    ([node("local", cpus=1.0), node("n2", cpus=1.0)], ask(cpus=0.1, strategy="binpack"), {},
     11, ["local"] * 10 + ["n2"])]


@pytest.mark.parametrize("nodes, wanted, held, count, expected", SEQUENCES)
def test_place_many_counts_the_instances_before(nodes, wanted, held, count, expected):
    assert [d.node for d in place_many(wanted, nodes, held, count)] == expected


def test_spread_reasons_rank_the_chosen_node_first():
    decisions = place_many(ask(), [node("local", instances=3), node("n2")], {}, 3)
    assert [d.reason for d in decisions] == [
        "n2: 0 of web, 0 in all; local: 0 of web, 3 in all",
        "local: 0 of web, 3 in all; n2: 1 of web, 1 in all",
        "n2: 1 of web, 1 in all; local: 1 of web, 4 in all"]
    d = place(ask(), [node("local", instances=5), node("n2", instances=4)], {"local": 2, "n2": 1})
    assert d == Decision("n2", "n2: 1 of web, 4 in all; local: 2 of web, 5 in all")


def test_binpack_ranks_by_the_higher_of_cpu_and_memory_after_placing():
    nodes = [node("n2", cpus=4.0, memory=4 * GIB, reserved_cpus=0.15),
             node("local", cpus=2.0, memory=4 * GIB, reserved_cpus=1.25)]
    assert place(ask(memory=0, strategy="binpack"), nodes, {}) == Decision(
        "local", "local: 75% allocated; n2: 10% allocated")
    nodes = [node("a", cpus=4.0, memory=1 * GIB, reserved_memory=512 * MIB),   # 62% memory
             node("b", cpus=4.0, memory=4 * GIB, reserved_cpus=2.0)]           # 56% cpu
    assert place(ask(strategy="binpack"), nodes, {}) == Decision(
        "a", "a: 62% allocated; b: 56% allocated")


PENDING = [  # (nodes, ask, instances of web per node) -> why nothing fits
    ([], ask(), {}, "no nodes"),
    ([node("n2", memory=GIB, reserved_memory=GIB), node("local", memory=GIB)],
     ask(memory=2 * GIB, constraints=["node.labels.zone==b"]), {},
     "insufficient memory on local, n2; node.labels.zone==b matches no node"),
    ([node("local", used_ports=["8080/tcp"]), node("n2"), node("n3", ready=False),
      node("n4", availability="pause")], ask(ports=["8080/tcp"], max_per_node=2), {"n2": 2},
     "not ready: n3; paused: n4; port 8080/tcp in use on local; "
     "2 of web already on n2 (max_per_node 2)"),
    # a ready node is reported for every rule it fails, a drained one for that alone
    ([node("local", cpus=0.5, memory=GIB, reserved_cpus=0.5, reserved_memory=GIB,
           used_ports=["80/tcp", "443/tcp"], labels={"zone": "a"}),
      node("n2", labels={"zone": "b"}, availability="drain")],
     ask(ports=["80/tcp", "443/tcp"], constraints=["node.labels.zone==b"]), {},
     "drained: n2; node.labels.zone==b not met on local; ports 443/tcp, 80/tcp in use on "
     "local; insufficient cpu and memory on local"),
    # "matches no node" counts every node, ready or not
    ([node("local", ready=False)], ask(constraints=["node.name==n9"]), {},
     "not ready: local; node.name==n9 matches no node"),
    ([node("local"), node("n2", ready=False, labels={"zone": "b"})],
     ask(constraints=["node.labels.zone==b"]), {},
     "not ready: n2; node.labels.zone==b not met on local"),
    ([node("local"), node("n2")], ask(max_per_node=2), {"local": 2, "n2": 3},
     "2 of web already on local (max_per_node 2); 3 of web already on n2 (max_per_node 2)"),
    ([node("local", cpus=1.0, reserved_cpus=0.9), node("n2", cpus=0.0)], ask(), {},
     "insufficient cpu on local, n2")]


@pytest.mark.parametrize("nodes, wanted, held, reason", PENDING)
def test_pending_reasons_group_the_nodes_by_cause(nodes, wanted, held, reason):
    assert place(wanted, nodes, held) == Decision(None, reason)
    assert place_many(wanted, nodes, held, 2) == [Decision(None, reason)] * 2


def test_pending_is_placed_as_soon_as_a_node_fits():
    wanted = ask(memory=GIB, constraints=["node.name==n2"])
    assert place(wanted, [node("local"), node("n2", memory=512 * MIB)], {}) == Decision(
        None, "node.name==n2 not met on local; insufficient memory on n2")
    assert place(wanted, [node("local"), node("n2", memory=2 * GIB)], {}).node == "n2"


def test_place_many_does_not_change_its_inputs_and_refuses_unknown_strategies():
    nodes, held = [node("local"), node("n2")], {"local": 1}
    place_many(ask(ports=["8080/tcp"]), nodes, held, 2)
    assert nodes == [node("local"), node("n2")] and held == {"local": 1}
    with pytest.raises(ValueError, match="strategy"):
        place(ask(strategy="random"), nodes, {})


# --- global -------------------------------------------------------------------------------
def test_global_nodes_are_the_eligible_ones_sorted_and_the_rest_named():
    nodes = [node("n4", labels={"zone": "a"}), node("n3", ready=False), node("local"),
             node("n2"), node("n5", memory=0), node("n6", used_ports=["8080/tcp"])]
    wanted = ask(ports=["8080/tcp"], constraints=["node.labels.zone!=a"], max_per_node=1)
    assert global_nodes(wanted, nodes) == (["local", "n2"], (
        "eligible: local, n2; not ready: n3; node.labels.zone!=a not met on n4; "
        "port 8080/tcp in use on n6; insufficient memory on n5"))
    assert global_nodes(ask(), [node("n2"), node("local")]) == (["local", "n2"],
                                                              "eligible: local, n2")
    assert global_nodes(ask(constraints=["node.name==n9"]), [node("local")]) == (
        [], "no node eligible; node.name==n9 matches no node")
    assert global_nodes(ask(), []) == ([], "no nodes")
    # a node running its own instance keeps it: that instance holds the port and capacity
    full = node("local", cpus=0.25, reserved_cpus=0.25, used_ports=["8080/tcp"], instances=1)
    wanted, running = ask(ports=["8080/tcp"]), frozenset({"local"})
    assert global_nodes(wanted, [full])[0] == []
    assert global_nodes(wanted, [full], running=running) == (["local"], "eligible: local")
    # pause stops new work only: the instance already there stays; drain takes it away
    assert global_nodes(wanted, [replace(full, availability="pause")], running=running) == (
        ["local"], "eligible: local")
    assert global_nodes(wanted, [replace(full, availability="drain")], running=running) == (
        [], "no node eligible; drained: local")


# --- properties against a reference -------------------------------------------------------
NAMES, ZONES, PORTS = ["local", "n2", "n3", "n4", "n5"], ["a", "b", "ssd"], ["80/tcp", "53/udp"]
# CPU amounts are sums of powers of two, so the reference's float sums are exact.
CPU_CAPACITIES, CPU_ASKS = [0.0, 0.5, 1.0, 2.0, 4.0], [0.0, 0.25, 0.5, 1.0]
MEMORIES, MEMORY_ASKS = [0, 256 * MIB, 512 * MIB, GIB, 2 * GIB], [0, 64 * MIB, 256 * MIB]
constraint_texts = st.one_of(
    st.builds("node.name{}{}".format, st.sampled_from(["==", "!="]), st.sampled_from(NAMES)),
    st.builds("node.labels.{} {} {}".format, st.sampled_from(["zone", "disk"]),
              st.sampled_from(["==", "!="]), st.sampled_from(ZONES)))
node_states = partial(
    st.builds, NodeState, ready=st.booleans(),
    availability=st.sampled_from(["active", "active", "pause", "drain"]),
    labels=st.dictionaries(st.sampled_from(["zone", "disk"]), st.sampled_from(ZONES)),
    cpus=st.sampled_from(CPU_CAPACITIES), memory=st.sampled_from(MEMORIES),
    reserved_cpus=st.sampled_from(CPU_ASKS), reserved_memory=st.sampled_from(MEMORY_ASKS),
    used_ports=st.frozensets(st.sampled_from(PORTS)), instances=st.integers(0, 6))
asks = st.builds(
    Ask, deployment=st.just("web"), cpus=st.sampled_from(CPU_ASKS),
    memory=st.sampled_from(MEMORY_ASKS), ports=st.frozensets(st.sampled_from(PORTS), max_size=1),
    constraints=st.lists(constraint_texts.map(parse_constraint), max_size=2).map(tuple),
    max_per_node=st.none() | st.integers(1, 3), strategy=st.sampled_from(["spread", "binpack"]))


@st.composite
def clusters(draw):
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    nodes = [draw(node_states(name=st.just(n))) for n in names]
    return nodes, {n.name: draw(st.integers(0, n.instances)) for n in nodes}


def reference_fits(a, n, held):
    """Every rule, written out from the issue: may `n` take one more instance of `a`?"""
    return (n.ready and n.availability == "active"
            and all(reference_matches(c, n) for c in a.constraints)
            and not (a.ports & n.used_ports)
            and (a.max_per_node is None or held < a.max_per_node)
            and n.reserved_cpus + a.cpus <= n.cpus
            and n.reserved_memory + a.memory <= n.memory)


def reference_matches(c, n):
    label = c.field.removeprefix("node.labels.")
    actual = n.name if c.field == "node.name" else n.labels.get(label)
    equal = actual is not None and actual.lower() == c.value.lower()
    return equal if c.op == "==" else not equal


def reference_rank(a, n, held):
    if a.strategy == "spread":
        return (held, n.instances, n.name)
    cpu = (n.reserved_cpus + a.cpus) / n.cpus if n.cpus else 0.0
    memory = (n.reserved_memory + a.memory) / n.memory if n.memory else 0.0
    return (-max(cpu, memory), n.name)


def replay(a, nodes, held, decisions):
    """(node states, instances of `a` per node, decision), each placed one counted after."""
    state, counts = {n.name: n for n in nodes}, dict(held)
    for d in decisions:
        yield state, counts, d
        if d.node is not None:
            n = state[d.node]
            state = {**state, d.node: replace(
                n, reserved_cpus=n.reserved_cpus + a.cpus, used_ports=n.used_ports | a.ports,
                reserved_memory=n.reserved_memory + a.memory, instances=n.instances + 1)}
            counts = {**counts, d.node: counts.get(d.node, 0) + 1}


def assert_accounts_for_every_node(a, nodes, reason):
    assert nodes or reason == "no nodes"
    hopeless = [c for c in a.constraints if nodes
                and not any(reference_matches(c, n) for n in nodes)]
    for c in hopeless:
        assert f"{c.text} matches no node" in reason
    for n in nodes:
        # every node is named, unless a constraint no node satisfies is what keeps it out
        assert n.name in reason or (hopeless and n.ready and n.availability == "active")
    assert ("in use" in reason) <= bool(a.ports)


@settings(max_examples=400, deadline=None)
@given(clusters(), asks, st.integers(1, 12))
def test_place_many_keeps_every_rule_counting_the_instances_before(cluster, a, count):
    nodes, held = cluster
    decisions = place_many(a, nodes, held, count)
    assert len(decisions) == count
    for i, (state, counts, d) in enumerate(replay(a, nodes, held, decisions)):
        fitting = [n for n in state.values() if reference_fits(a, n, counts.get(n.name, 0))]
        if not fitting:
            # pending: says why of every node, and the rest stay pending for that reason
            assert d.node is None and all(later == d for later in decisions[i:])
            assert_accounts_for_every_node(a, nodes, d.reason)
            break
        best = min(fitting, key=lambda n: reference_rank(a, n, counts.get(n.name, 0)))
        assert d.node == best.name and d.reason.startswith(f"{best.name}: ")
        assert all(n.name in d.reason for n in fitting)


@settings(max_examples=250, deadline=None)
@given(node_states(name=st.just("e")), st.integers(2, 4), st.integers(0, 3), clusters(), asks,
       st.integers(0, 16))
def test_spread_keeps_equal_eligible_nodes_within_one(template, k, held_each, cluster, a, count):
    (others, held), a = cluster, replace(a, strategy="spread")
    equal = [replace(template, name=f"e{i}", instances=template.instances + held_each)
             for i in range(k)]
    held = {**held, **{n.name: held_each for n in equal}}
    chosen = [d.node for d in place_many(a, equal + others, held, count)]
    placed = [chosen.count(n.name) for n in equal if reference_fits(a, n, held_each)]
    assert max(placed, default=0) - min(placed, default=0) <= 1


@settings(max_examples=250, deadline=None)
@given(clusters(), asks, st.integers(0, 12))
def test_binpack_leaves_a_node_only_when_it_is_full(cluster, a, count):
    (nodes, held), a = cluster, replace(a, strategy="binpack")
    steps = list(replay(a, nodes, held, place_many(a, nodes, held, count)))
    for (_, _, before), (state, counts, after) in zip(steps, steps[1:]):
        if before.node is not None and after.node != before.node:
            assert not reference_fits(a, state[before.node], counts[before.node])


@settings(max_examples=250, deadline=None)
@given(clusters(), asks)
def test_global_nodes_are_every_eligible_node_once(cluster, a):
    (nodes, _), unlimited = cluster, replace(a, max_per_node=None)
    names, reason = global_nodes(a, nodes)
    assert names == sorted(n.name for n in nodes if reference_fits(unlimited, n, 0))
    assert_accounts_for_every_node(a, nodes, reason)
