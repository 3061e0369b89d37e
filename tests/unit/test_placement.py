"""core.placement by example: the constraint grammar, the rules (readiness, availability,
constraints, fixed host ports, max_per_node, capacity after the reserve, the default request),
spread and binpack with their ties, the reasons, place_many, global, rebalance, and the node
figures placement sees. The properties are in test_placement_properties.py."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import pytest

from core.placement import (Ask, Decision, NodeState, fixed_ports, global_nodes, matches,
                            node_is_ready, node_state, parse_constraint, place, place_many,
                            rebalance_moves)
from workers.placing import ask_of

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
    ("NODE.Name==N2", "node.name == N2"), ("Node.Labels.Zone==b", "node.labels.Zone == b"),
    ("node.name==n*", "node.name == n*")]      # a glob is literal text (see MATCHES)


@pytest.mark.parametrize("text, parts", VALID)
def test_valid_constraints(text, parts):
    c = parse_constraint(text)
    assert [c.field, c.op, c.value] == parts.split(" ", 2) and c.text == text.strip()


REFUSED = {
    "not a field": ["node.role==manager", "node.hostname==n2", "node.id==abc", "==n2",
                    "engine.labels.os==linux", "node.labels==b", "labels.zone==b",
                    "node.name.x==n2", "node.names==n2", "node.label.zone==b",
                    "node.labelszone==b", "node .name==n2"],
    "needs an operator": ["node.name=n2", "node.name~=n2", "node.name =~ n2", "node.name<n2",
                          "node.name", "", "   ", "node.name = = n2", "node.name ! = n2"],
    "empty label key": ["node.labels.==b", "node.labels. == b"],
    "the label key": ["node.labels.zo ne==b", "node.labels.zone!x==b", "node.labels.zöne==b",
                      "node.labels.\u212a==b",   # the Kelvin sign: case-folds to k
                      "node.labels.zone/x==b", "node.labels.a:b==c"],
    "empty value": ["node.name==", "node.labels.zone !=   "], "the value": [
        "node.name==a==b", "node.name==a=b", "node.name!==b", "node.name==~b", "node.name==\u017f",
        "node.labels.zone==b\tc", "node.labels.zone==b\nc", "node.labels.zone==é",
        "node.name==a!=b", "node.name==a;b", "node.name==a,b", "node.name=={b}", "node.name==a<b",
        "node.name==a>b", "node.name==a~b", "node.name==a!b", "node.name=='n2'",
        'node.name=="n2"']}


@pytest.mark.parametrize("text, why", [(t, why) for why, ts in REFUSED.items() for t in ts])
def test_refused_constraints_say_why(text, why):
    with pytest.raises(ValueError, match=why):
        parse_constraint(text)


MATCHES = {  # on a node n2 with the labels zone=b, Disk=SSD; on a node without labels
    "node.name==n2": (True, False), "node.name==N2": (True, False),   # Swarm: values any case
    "node.name!=n2": (False, True), "node.labels.zone==b": (True, False),
    "node.labels.zone==a": (False, False), "node.labels.Disk==ssd": (True, False),
    "node.labels.disk==ssd": (False, False),                           # label keys exactly
    "node.labels.zone!=b": (False, True),               # a missing label never equals
    "node.name!=N2": (False, True), "node.labels.zone==B": (True, False),
    "node.labels.zone!=a": (True, True), "node.labels.Disk!=ssd": (False, True),
    "node.name==n*": (False, False), "node.name!=n*": (True, True),    # no globs
    "node.labels.zone==none": (False, False), "node.labels.zone!=None": (True, True)}


@pytest.mark.parametrize("text, expected", MATCHES.items())
def test_matches(text, expected):
    c, n2 = parse_constraint(text), node("n2", labels={"zone": "b", "Disk": "SSD"})
    assert (matches(c, n2), matches(c, node("local"))) == expected


@pytest.mark.parametrize("text, said", [  # the 422 a user reads, after "constraint '<text>'"
    ("node.role==manager", ": 'node.role' is not a field; use node.name or node.labels.<key>"),
    ("node.name=n2", " needs an operator: == or !="), (" node.name== ", " has an empty value"),
    ("node.labels.==b", " has an empty label key"),
    ("node.labels.zo ne==b", ": the label key 'zo ne' may hold only letters, digits, - _ and ."),
    ("node.name==a;b", ": the value 'a;b' may hold only letters, digits, spaces and : - _ . * "
                       "( ) ? + [ ] \\ ^ $ | /")])
def test_a_refused_constraint_says_what_to_write_instead(text, said):
    with pytest.raises(ValueError) as refused:
        parse_constraint(text)
    assert str(refused.value) == f"constraint {text.strip()!r}{said}"


# --- spread, binpack and the reasons ------------------------------------------------------
SEQUENCES = [  # (nodes, ask, instances of web per node, count) -> the nodes chosen in turn
    ([node("n2"), node("local")], ask(), {}, 4, ["local", "n2", "local", "n2"]),
    # Swarm's rule, the example: with 3 instances of another deployment on local, 3
    # replicas go 2 on n2 and 1 on local (fewest of this deployment, then fewest in all)
    ([node("local", instances=3), node("n2")], ask(), {}, 3, ["n2", "local", "n2"]),
    ([node("local", instances=3), node("n2", instances=1)], ask(), {"local": 3, "n2": 1}, 3,
     ["n2", "n2", "local"]),
    ([node("n3"), node("n1"), node("n2")], ask(), {}, 1, ["n1"]),
    ([node("n2"), node("n10")], ask(), {}, 1, ["n10"]),      # names compare as text
    # fewest of this deployment first, however many a node holds in all
    ([node("local", instances=5), node("n2", instances=1)], ask(), {"n2": 1}, 1, ["local"]),
    ([node("local"), node("n2")], ask(max_per_node=2), {"local": 2}, 3, ["n2", "n2", None]),
    # a UDP port is not its TCP namesake
    ([node("local", used_ports=["53/tcp"])], ask(ports=["53/udp"]), {}, 2, ["local", None]),
    # binpack: as full after placing (1.0 of 2 CPUs, 0.5 of 1), the name decides
    ([node("n2", cpus=2.0, reserved_cpus=0.75), node("local", cpus=1.0, reserved_cpus=0.25)],
     ask(memory=0, strategy="binpack"), {}, 1, ["local"]),
    # binpack ignores the counts: the fuller node first
    ([node("n2"), node("local", reserved_cpus=1.0)], ask(strategy="binpack"), {"local": 4}, 2,
     ["local", "local"]),
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
    # the fullest node first, where spread starts with the emptiest
    nodes = [node("n2", cpus=1.0), node("local", cpus=1.0, reserved_cpus=0.5, instances=1)]
    assert place_many(ask(cpus=0.5, memory=0, strategy="binpack"), nodes, {}, 4) == [
        Decision("local", "local: 100% allocated; n2: 50% allocated"),
        Decision("n2", "n2: 50% allocated"), Decision("n2", "n2: 100% allocated"),
        Decision(None, "insufficient cpu on local, n2")]
    assert [d.node for d in place_many(ask(cpus=0.5, memory=0), nodes, {}, 4)] == [
        "n2", "local", "n2", None]


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
     "insufficient cpu on local, n2"),
    ([node("n3", cpus=0.2, memory=64 * MIB), node("n2", memory=64 * MIB),
      node("local", cpus=0.2)], ask(), {},
     "insufficient cpu on local; insufficient memory on n2; insufficient cpu and memory on n3"),
    ([node("n2", availability="cordon")], ask(), {}, "availability cordon: n2"),
    # constraints in the order written, whichever node fails them
    ([node("local", labels={"zone": "b"}), node("n2", labels={"zone": "a"})],
     ask(constraints=["node.labels.zone==b", "node.name!=local"]), {},
     "node.labels.zone==b not met on n2; node.name!=local not met on local"),
    ([node("local", used_ports=["8080/tcp"]), node("n2", used_ports=["8080/tcp", "9090/tcp"])],
     ask(ports=["8080/tcp", "9090/tcp"]), {},
     "port 8080/tcp in use on local; ports 8080/tcp, 9090/tcp in use on n2"),
    ([node("local"), node("n2"), node("n3", ready=False)], ask(max_per_node=1),
     {"local": 1, "n2": 1}, "not ready: n3; 1 of web already on local, n2 (max_per_node 1)")]


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
    # a node that joins is eligible at once; max_per_node does not apply (one per node)
    assert global_nodes(ask(max_per_node=1), [node("local"), node("n2")],
                        running=frozenset({"local"})) == (["local", "n2"], "eligible: local, n2")
    # a paused node takes no new global instance
    assert global_nodes(ask(), [node("local"), node("n2", availability="pause")]) == (
        ["local"], "eligible: local; paused: n2")


# --- capacity: the node's figures less the reserve, the default request ------------------
def row(name="n2", **changes):
    """A nodes row as db.nodes.all_nodes returns it (the columns node_state reads)."""
    return {"name": name, "availability": "active", "all_labels": {}, "cpus": 2,
            "memory_bytes": GIB, "cpus_override": None, "memory_override": None, **changes}


def test_capacity_is_what_the_node_has_less_the_reserve_to_the_byte():
    # 2 CPUs less a reserve of 0.5 leave 1.5, of which 1.0 is reserved; 1 GiB less 256 MiB
    # leaves 768 MiB, of which 512 MiB is reserved
    n2 = node_state(row(), {"cpus": 1.0, "memory": 512 * MIB, "instances": 2}, True, 0.5,
                    256 * MIB)
    fits = ask(cpus=0.5, memory=256 * MIB)
    assert place(fits, [n2], {}) == Decision("n2", "n2: 0 of web, 2 in all")
    for more, short in [({"cpus": 0.500000001}, "cpu"), ({"memory": 256 * MIB + 1}, "memory"),
                        ({"cpus": 0.75, "memory": GIB}, "cpu and memory")]:
        assert place(replace(fits, **more), [n2], {}) == Decision(None,
                                                                  f"insufficient {short} on n2")
    # 1 CPU less a reserve of 0.9 is 0.09999999999999998 in floats: still room for 0.1
    assert place(ask(cpus=0.1), [node_state(row(cpus=1), {}, True, 0.9, 0)], {}).node == "n2"


CFG = SimpleNamespace(default_cpu_request=0.1, default_memory_request=64 * MIB)


def test_an_instance_without_limits_reserves_the_default_request():
    dep = {"name": "web", "resources": None, "template": {"image": "nginx"}}
    assert ask_of(dep, CFG) == Ask(deployment="web", cpus=0.1, memory=64 * MIB,
                                   ports=frozenset(), constraints=(), max_per_node=None)
    limited = ask_of({**dep, "resources": {"cpus": 0.5, "memory": 256 * MIB}}, CFG)
    assert (limited.cpus, limited.memory) == (0.5, 256 * MIB)
    # 1.25 CPUs less a reserve of 0.25 hold ten default requests of 0.1, not eleven
    local = node_state(row("local", cpus=1.25, memory_bytes=4 * GIB), {}, True, 0.25, 0)
    decisions = place_many(ask_of(dep, CFG), [local], {}, 11)
    assert [d.node for d in decisions] == ["local"] * 10 + [None]
    assert decisions[-1].reason == "insufficient cpu on local"
    # the template's placement rules, its fixed host ports; a bad constraint is refused
    rules = {"constraints": ["node.labels.zone==b"], "max_per_node": 2, "strategy": "binpack"}
    assert ask_of({**dep, "template": {"ports": {"80/tcp": 8080, "81": None}, "placement": rules}},
                  CFG) == replace(ask_of(dep, CFG), ports=frozenset({"8080/tcp"}), max_per_node=2,
                                  constraints=(parse_constraint("node.labels.zone==b"),),
                                  strategy="binpack")
    with pytest.raises(ValueError, match="not a field"):
        ask_of({**dep, "template": {"placement": {"constraints": ["node.role==manager"]}}}, CFG)


def test_node_state_is_the_reported_capacity_or_its_override_less_the_reserve():
    used = {"cpus": 1.5, "memory": 512 * MIB, "ports": {"8080/tcp"}, "instances": 3}
    assert node_state(row(all_labels={"zone": "b"}, cpus=4, memory_bytes=8 * GIB), used, True,
                      0.5, 256 * MIB) == NodeState(
        "n2", ready=True, availability="active", labels={"zone": "b"}, cpus=3.5,
        memory=8 * GIB - 256 * MIB, reserved_cpus=1.5, reserved_memory=512 * MIB,
        used_ports=frozenset({"8080/tcp"}), instances=3)
    overridden = node_state(row(cpus_override=1.0, memory_override=GIB), {}, True, 0.25, MIB)
    assert (overridden.cpus, overridden.memory) == (0.75, GIB - MIB)
    # an override of 0 is a capacity of 0, not "use the reported one"
    zero = node_state(row(cpus_override=0, memory_override=0), {}, True, 0.0, 0)
    assert (zero.cpus, zero.memory) == (0.0, 0)
    # figures not reported yet, or a reserve above them: nothing may be reserved there
    assert node_state(row(cpus=None, memory_bytes=None, all_labels=None,
                          availability="pause"), {}, True, 0.5, 256 * MIB) == NodeState(
        "n2", True, "pause", {}, 0.0, 0, 0.0, 0, frozenset(), 0)
    assert node_state(row(cpus=1, memory_bytes=128 * MIB), {}, True, 2.0, 256 * MIB).memory == 0
    # what SQL sums to over no rows (NULL) is nothing placed
    assert node_state(row(), {"cpus": None, "memory": None, "ports": None, "instances": 0},
                      True, 0.0, 0) == node_state(row(), {}, True, 0.0, 0)


@pytest.mark.parametrize("status, age, docker_ok, ready", [
    ("ready", 0.0, True, True), ("ready", 6.0, True, True),     # the limit is still fresh
    ("ready", 6.001, True, False), ("ready", 0.0, False, False),
    ("down", 0.0, True, False), ("returning", 0.0, True, False)])
def test_node_is_ready(status, age, docker_ok, ready):
    assert node_is_ready(status, age, docker_ok, stale_after=6.0) is ready


def test_fixed_ports_are_the_host_ports_with_their_protocol():
    assert fixed_ports({"80/tcp": 8080, "53/udp": 5353, "443": 8443, "9000/tcp": None}) == {
        "8080/tcp", "5353/udp", "8443/tcp"}
    assert fixed_ports({"53/tcp": 53, "53/udp": 53}) == {"53/tcp", "53/udp"}
    assert fixed_ports({}) == fixed_ports(None) == fixed_ports({"80/tcp": None}) == frozenset()
