"""core.placement, properties: every rule checked against a reference written from the
issue, the limits place_many never breaks, spread's evenness, order-independence; and
rebalance_moves, by example and as the fewest moves that even a deployment out."""
from __future__ import annotations

import string
from collections import Counter
from dataclasses import replace
from functools import partial
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.placement import (Ask, NodeState, global_nodes, matches, parse_constraint,
                            place_many, rebalance_moves)
from tests.unit.test_placement import GIB, MIB, ask, node


# --- the grammar --------------------------------------------------------------------------
@settings(max_examples=120, deadline=None)
@given(st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12),
       st.sampled_from(["==", "!="]), st.sampled_from(["", " ", "  "]),
       st.text(string.ascii_letters + string.digits + ":-_.*()?+[]\\^$|/ ", min_size=1,
               max_size=12).filter(str.strip))
def test_grammar_round_trip(key, op, spaces, value):
    c = parse_constraint(f"node.labels.{key}{spaces}{op}{spaces}{value}")
    assert (c.field, c.op, c.value) == (f"node.labels.{key}", op, value.strip())


@settings(max_examples=120, deadline=None)
@given(st.text(max_size=40) | st.text("node.labelsz=!~ ", max_size=30))
def test_any_text_parses_or_is_a_value_error(text):
    try:
        c = parse_constraint(text)
    except ValueError as refused:
        assert "==" in text or "!=" in text or "needs an operator" in str(refused)
        return
    assert c.op in ("==", "!=") and c.op in text
    assert c.field == "node.name" or c.field.startswith("node.labels.")


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


@settings(max_examples=120, deadline=None)
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


@settings(max_examples=120, deadline=None)
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


@settings(max_examples=120, deadline=None)
@given(clusters(), asks, st.integers(0, 12))
def test_binpack_leaves_a_node_only_when_it_is_full(cluster, a, count):
    (nodes, held), a = cluster, replace(a, strategy="binpack")
    steps = list(replay(a, nodes, held, place_many(a, nodes, held, count)))
    for (_, _, before), (state, counts, after) in zip(steps, steps[1:]):
        if before.node is not None and after.node != before.node:
            assert not reference_fits(a, state[before.node], counts[before.node])


@settings(max_examples=120, deadline=None)
@given(clusters(), asks)
def test_global_nodes_are_every_eligible_node_once(cluster, a):
    (nodes, _), unlimited = cluster, replace(a, max_per_node=None)
    names, reason = global_nodes(a, nodes)
    assert names == sorted(n.name for n in nodes if reference_fits(unlimited, n, 0))
    assert_accounts_for_every_node(a, nodes, reason)


@settings(max_examples=120, deadline=None)
@given(clusters(), constraint_texts)
def test_not_equal_is_exactly_the_opposite_of_equal(cluster, text):
    equal = parse_constraint(text.replace("!=", "=="))
    differ = parse_constraint(text.replace("==", "!="))
    for n in cluster[0]:
        assert matches(differ, n) is not matches(equal, n)
        assert matches(equal, n) is reference_matches(equal, n)


# --- the limits place_many never breaks ----------------------------------------------------
@settings(max_examples=120, deadline=None)
@given(clusters(), asks, st.integers(0, 12))
def test_place_many_never_breaks_a_limit(cluster, a, count):
    nodes, held = cluster
    decisions = place_many(a, nodes, held, count)
    placed = Counter(d.node for d in decisions if d.node is not None)
    # once one instance is pending, the rest are: nothing changed in between
    assert [d.node is None for d in decisions] == [i >= sum(placed.values())
                                                   for i in range(count)]
    for n in nodes:
        k = placed[n.name]
        if not k:
            continue
        assert n.ready and n.availability == "active"
        assert all(reference_matches(c, n) for c in a.constraints)
        # exact: every CPU figure here is a sum of powers of two
        assert n.reserved_cpus + k * a.cpus <= n.cpus
        assert n.reserved_memory + k * a.memory <= n.memory
        assert a.max_per_node is None or held.get(n.name, 0) + k <= a.max_per_node
        assert not a.ports or (k == 1 and not a.ports & n.used_ports)


# --- spread keeps a deployment even where capacity does not bind ---------------------------
AMPLE = {"cpus": 64.0, "memory": 64 * GIB}
OUT = [{"ready": False}, {"availability": "pause"}, {"availability": "drain"},
       {"labels": {"zone": "b"}}, {"memory": 0}]


@st.composite
def ample_clusters(draw):
    """Eligible nodes with room for everything (other deployments' instances on them),
    some left out for each reason, and the deployment's instances per eligible node."""
    k = draw(st.integers(1, 5))
    eligible = [node(f"e{i}", instances=draw(st.integers(0, 9)), **AMPLE) for i in range(k)]
    out = [node(f"o{i}", **AMPLE | changes)
           for i, changes in enumerate(draw(st.lists(st.sampled_from(OUT), max_size=3)))]
    held = {n.name: draw(st.integers(0, 4)) for n in eligible}
    return eligible, out, held


@settings(max_examples=120, deadline=None)
@given(ample_clusters(), st.integers(0, 20), st.booleans())
def test_spread_evens_the_deployment_out_over_the_eligible_nodes(cluster, count, fresh):
    eligible, out, held = cluster
    held = {} if fresh else held
    decisions = place_many(ask(constraints=["node.labels.zone!=b"]), out + eligible, held,
                           count)
    counts = {n.name: held.get(n.name, 0) for n in eligible}
    before = sorted(counts.values())
    for d in decisions:
        # never pending, never a node left out; always one the deployment has fewest on
        assert d.node in counts
        assert counts[d.node] == min(counts.values())
        counts[d.node] += 1
    after = sorted(counts.values())
    assert after[-1] - after[0] <= max(1, before[-1] - before[0])
    if fresh or count >= sum(before[-1] - b for b in before):
        assert after[-1] - after[0] <= 1


# --- the same input, the same answer -------------------------------------------------------
@settings(max_examples=120, deadline=None)
@given(clusters(), asks, st.integers(0, 8), st.data())
def test_placement_depends_on_the_nodes_not_on_their_order(cluster, a, count, data):
    nodes, held = cluster
    shuffled = data.draw(st.permutations(nodes))
    held_reordered = dict(reversed(held.items()))
    decisions = place_many(a, nodes, held, count)
    assert place_many(a, nodes, held, count) == decisions
    assert place_many(a, shuffled, held_reordered, count) == decisions
    assert global_nodes(a, shuffled) == global_nodes(a, nodes)


# --- rebalance by example ---------------------------------------------------------------
REBALANCES = [  # (slot -> node, eligible nodes) -> the slots placed again
    ({}, ["local", "n2"], []), ({0: "local"}, [], []),
    ({0: "local", 1: "n2", 2: "local", 3: "n2"}, ["local", "n2"], []),     # even already
    # n2 joined (or was activated): local gives its highest slots beyond its share
    ({0: "local", 1: "local", 2: "local", 3: "local"}, ["local", "n2"], [2, 3]),
    ({s: "local" for s in range(5)}, ["n2", "local"], [3, 4]),             # 3 and 2
    ({s: "local" for s in range(6)}, ["local", "n2", "n3"], [2, 3, 4, 5]),
    # slots not numbered from 0 (some retired); a third node joining
    ({1: "local", 4: "local", 7: "local", 9: "n2"}, ["local", "n2", "n3"], [7]),
    # a node no longer eligible (drained, down, failing a constraint) gives all it holds
    ({0: "a", 1: "b", 2: "c", 3: "c"}, ["a", "b"], [2, 3]), ({0: "x", 1: "x"}, ["a"], [0, 1]),
    ({0: "a", 1: "a"}, ["a", "b", "c"], [1])]                               # fewer slots


@pytest.mark.parametrize("assignment, eligible, moves", REBALANCES)
def test_rebalance_moves(assignment, eligible, moves):
    assert rebalance_moves(assignment, eligible) == moves


def test_rebalance_breaks_a_tie_the_same_way_whatever_the_order():
    # 4 over a, b, c: one of a and b keeps 2, the other gives 1; which one never depends
    # on the order of the nodes or the slots
    moves = rebalance_moves({0: "a", 1: "a", 2: "b", 3: "b"}, ["a", "b", "c"])
    assert moves in ([1], [3])
    assert rebalance_moves({3: "b", 2: "b", 1: "a", 0: "a"}, ["c", "b", "a"]) == moves


def test_rebalance_then_spread_evens_a_deployment_after_a_drain():
    # local was drained, all four went to n2; local is active again
    moves = rebalance_moves({0: "n2", 1: "n2", 2: "n2", 3: "n2"}, ["local", "n2"])
    assert moves == [2, 3]
    # start-first: the moved instances still run on n2 while their new places are chosen
    nodes = [node("local"), node("n2", instances=4, reserved_cpus=1.0,
                                 reserved_memory=512 * MIB)]
    assert [d.node for d in place_many(ask(), nodes, {"n2": 2}, len(moves))] == [
        "local", "local"]


# --- rebalance: the fewest moves that even a deployment out ---------------------------------
@st.composite
def layouts(draw):
    """Slots (not contiguous: some retired) on nodes, some of them no longer eligible
    (drained, down, failing a constraint); the eligible nodes in any order."""
    eligible = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=5))
    slots = draw(st.lists(st.integers(0, 30), unique=True, max_size=14))
    return {s: draw(st.sampled_from(NAMES + ["gone"])) for s in slots}, eligible


def fewest_moves(assignment, eligible):
    """Every even layout tried: k nodes hold n // k or one more, n % k of them one more;
    a slot stays only where its node keeps it."""
    counts, (share, extra) = Counter(assignment.values()), divmod(len(assignment), len(eligible))
    return len(assignment) - max(sum(min(counts[n], share + (n in more)) for n in eligible)
                                 for more in combinations(eligible, extra))


@settings(max_examples=120, deadline=None)
@given(layouts(), st.data())
def test_rebalance_moves_the_fewest_from_above_the_share_to_below(layout, data):
    assignment, eligible = layout
    moves = rebalance_moves(assignment, eligible)
    assert moves == sorted(set(moves)) and set(moves) <= set(assignment)
    assert len(moves) == fewest_moves(assignment, eligible)
    assert rebalance_moves(dict(reversed(assignment.items())),
                           data.draw(st.permutations(eligible))) == moves
    counts, share = Counter(assignment.values()), len(assignment) // len(eligible)
    sources = {assignment[s] for s in moves}
    for source in sources:
        assert source not in eligible or counts[source] > share
        theirs = sorted(s for s, n in assignment.items() if n == source)
        gone = [s for s in moves if assignment[s] == source]
        assert gone == theirs[len(theirs) - len(gone):]        # its highest slots
    # placed again by spread on eligible nodes with room: each goes to a node below the
    # share, none back where it came from, and the deployment ends even
    kept = Counter(n for s, n in assignment.items() if s not in moves)
    nodes = [node(n, instances=counts[n], **AMPLE) for n in eligible]
    to = Counter(d.node for d in place_many(ask(), nodes, dict(kept), len(moves)))
    assert not set(to) & sources and all(counts[n] <= share for n in to)
    final = [kept[n] + to[n] for n in eligible]
    assert sum(final) == len(assignment) and max(final) - min(final) <= 1
