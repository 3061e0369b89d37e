"""core.placement and named volumes: volumes are per engine, so an instance that mounts one
goes where it is (an engine holding it, or a node with instances of the deployment), and the
first instance of a deployment whose volume exists nowhere takes the others with it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core.placement import (Ask, NodeState, global_nodes, named_volumes, node_state, place,
                            place_many)

MIB, GIB = 1024 * 1024, 1024 * 1024 * 1024


def node(name, **changes):
    empty = NodeState(name, ready=True, availability="active", labels={}, cpus=2.0,
                      memory=2 * GIB, reserved_cpus=0.0, reserved_memory=0,
                      used_ports=frozenset(), instances=0)
    return replace(empty, **changes)


DB = Ask(deployment="db", cpus=0.25, memory=128 * MIB, ports=frozenset(), constraints=(),
         max_per_node=None, volumes=frozenset({"db-data"}))


def nodes_of(decisions):
    return [d.node for d in decisions]


def test_without_the_volume_anywhere_the_first_goes_by_spread_and_the_rest_follow():
    # spread alone would give local, n2, local
    decisions = place_many(DB, [node("local"), node("n2")], {}, 3)
    assert nodes_of(decisions) == ["local", "local", "local"]
    # the first decision is spread's ranking; the next ones follow the first
    assert decisions[0].reason == "local: 0 of db, 0 in all; n2: 0 of db, 0 in all"
    assert decisions[1].reason == "local: 1 of db, 1 in all"


def test_the_node_holding_the_volume_takes_every_instance_even_when_busier():
    busy_n2 = node("n2", instances=9, volumes=frozenset({"db-data", "other"}))
    assert nodes_of(place_many(DB, [node("local"), busy_n2], {}, 2)) == ["n2", "n2"]


def test_instances_already_placed_keep_the_rest_with_them():
    assert place(DB, [node("local"), node("n2")], {"n2": 1}).node == "n2"
    # a count of zero is no instance: it does not hold the deployment there
    assert place(DB, [node("local"), node("n2")], {"n2": 0}).node == "local"


def test_the_volumes_node_down_leaves_the_instance_pending_saying_where_the_data_is():
    down = node("n2", ready=False, volumes=frozenset({"db-data"}))
    decision = place(DB, [node("local"), down], {})
    assert decision.node is None
    assert decision.reason == "not ready: n2; volume db-data: on n2, not on local"


def test_full_home_node_is_pending_not_moved_elsewhere():
    full = node("n2", volumes=frozenset({"db-data"}), reserved_memory=2 * GIB)
    decision = place(DB, [node("local"), full], {})
    assert decision.node is None
    assert decision.reason == "volume db-data: on n2, not on local; insufficient memory on n2"


def test_two_volumes_on_two_nodes_allow_both_and_spread_between_them():
    two = replace(DB, volumes=frozenset({"a", "b"}))
    nodes = [node("local", volumes=frozenset({"a"})), node("n2", volumes=frozenset({"b"})),
             node("n3")]
    decisions = place_many(two, nodes, {}, 4)
    assert nodes_of(decisions) == ["local", "n2", "local", "n2"]
    pending = place(two, [replace(n, ready=n.name == "n3") for n in nodes], {})
    assert pending.reason == "not ready: local, n2; volumes a, b: on local, n2, not on n3"


def test_an_ask_without_volumes_ignores_them():
    free = replace(DB, volumes=frozenset())
    nodes = [node("local"), node("n2", volumes=frozenset({"db-data"}))]
    assert nodes_of(place_many(free, nodes, {}, 2)) == ["local", "n2"]


def test_global_runs_on_every_node_whatever_its_volumes():
    names, _ = global_nodes(DB, [node("local"), node("n2", volumes=frozenset({"db-data"}))])
    assert names == ["local", "n2"]


@pytest.mark.parametrize("mounts, expected", [
    (None, set()), ([], set()),
    ([{"type": "volume", "source": "data", "target": "/d"}], {"data"}),
    ([{"type": "volume", "target": "/anonymous"}], set()),
    ([{"type": "volume", "source": None, "target": "/anonymous"}], set()),
    ([{"type": "tmpfs", "target": "/t"}, {"type": "bind", "source": "/srv", "target": "/s"}],
     set()),
    ([{"type": "volume", "source": "a", "target": "/a"},
      {"type": "volume", "source": "b", "target": "/b", "read_only": True},
      {"type": "volume", "source": "a", "target": "/again"}], {"a", "b"}),
])
def test_named_volumes_are_the_sources_of_volume_mounts(mounts, expected):
    assert named_volumes(mounts) == expected


def test_node_state_carries_the_reported_volumes():
    row = {"name": "n2", "availability": "active", "all_labels": {}, "cpus": 2,
           "memory_bytes": GIB, "cpus_override": None, "memory_override": None,
           "volumes": ["b", "a"]}
    assert node_state(row, {}, True, 0.0, 0).volumes == {"a", "b"}
    assert node_state({**row, "volumes": None}, {}, True, 0.0, 0).volumes == frozenset()
