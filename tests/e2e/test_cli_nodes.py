"""The node commands as a user runs them (bin/harbormaster against the session's platform,
whose second node n2 is labelled zone=b): node ls/get/label/pause/activate, deploy
rebalance onto an activated node, the node of each container in ps, and their errors; every
claim checked through the API or in both Docker engines."""
from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli import HTTPD, cli, ok, running, unique

pytestmark = pytest.mark.e2e


def node_of(nodes: list[dict], name: str) -> dict:
    [found] = [n for n in nodes if n["name"] == name]
    return found


def test_node_ls_get_label_pause_activate(platform, api):
    listed = json.loads(ok(cli(platform, "node", "ls", "--json")))
    assert sorted(n["name"] for n in listed) == ["local", "n2"], listed
    assert node_of(listed, "n2")["labels"].get("zone") == "b", listed
    assert [n["status"] for n in listed] == ["ready", "ready"], listed
    table = ok(cli(platform, "node", "ls"))
    [row] = [line.split() for line in table.splitlines() if line.startswith("n2 ")]
    n2 = node_of(listed, "n2")
    # name, status, availability, cpus used/total, memory, instances, heartbeat, docker, labels
    assert row[1:4] == ["ready", "active",
                        f"{n2['reserved']['cpus']:g}/{n2['capacity']['cpus']:g}"], table
    assert n2["docker"]["version"] in row and row[-1] == "zone=b", table
    try:
        assert "disk=ssd" in ok(cli(platform, "node", "label", "n2", "disk=ssd"))
        assert api.get("/api/nodes/n2").json()["labels"]["disk"] == "ssd"
        assert "disk=ssd" in ok(cli(platform, "node", "get", "n2"))
        shown = json.loads(ok(cli(platform, "node", "get", "n2", "--json")))
        assert shown["labels"] == {"zone": "b", "disk": "ssd"}, shown
        # KEY- removes, as kubectl label does
        ok(cli(platform, "node", "label", "n2", "disk-"))
        assert api.get("/api/nodes/n2").json()["labels"] == {"zone": "b"}
        assert "disk=" not in ok(cli(platform, "node", "get", "n2"))

        assert "n2 paused" in ok(cli(platform, "node", "pause", "n2"))
        assert api.get("/api/nodes/n2").json()["availability"] == "pause"
        [row] = [line.split() for line in ok(cli(platform, "node", "ls")).splitlines()
                 if line.startswith("n2 ")]
        assert row[2] == "pause", row
        assert "n2 active" in ok(cli(platform, "node", "activate", "n2"))
        assert api.get("/api/nodes/n2").json()["availability"] == "active"
    finally:
        api.patch("/api/nodes/n2", json={"labels": {"disk": None}})
        api.post("/api/nodes/n2/activate")


def test_rebalance_spreads_onto_an_activated_node_and_ps_shows_nodes(platform, api):
    name = unique("clibal")
    label = {"harbormaster.deployment": name}
    assert api.post("/api/nodes/n2/pause").status_code == 200
    try:
        r = api.post("/api/deployments", params={"wait": 90}, json={
            "name": name, "image": HTTPD, "replicas": 2,
            "update": {"monitor": 0.5, "max_surge": 1, "max_unavailable": 0}})
        assert api.job(r, wait=120)["status"] == "succeeded"
        # n2 paused: both on local, read from both engines
        assert sorted(c.node for c in running(platform, **label)) == ["local", "local"]
        ok(cli(platform, "node", "activate", "n2"))
        out = ok(cli(platform, "deploy", "rebalance", name))
        assert f"{name} rebalanced: 2/2 ready" in out and "1 on local, 1 on n2" in out, out
        assert sorted(c.node for c in running(platform, **label)) == ["local", "n2"]
        # ps and node get say where each runs, as Docker does
        listed = json.loads(ok(cli(platform, "ps", "--deployment", name, "--json")))
        on_n2 = [c["name"] for c in listed if c["node"] == "n2"]
        assert on_n2 == [c.name for c in running(platform, **label) if c.node == "n2"], listed
        [row] = [line.split() for line in ok(cli(platform, "ps", "--deployment", name))
                 .splitlines() if line.startswith(on_n2[0])]
        assert "n2" in row and "local" not in row, row
        assert on_n2[0] in ok(cli(platform, "node", "get", "n2"))
        assert on_n2[0] not in ok(cli(platform, "node", "get", "local"))
    finally:
        api.post("/api/nodes/n2/activate")
        api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_node_errors_are_one_line_with_exit_code_1(platform, viewer):
    for args, said in ((("node", "get", "nosuch"), "not_found"),
                       (("node", "drain", "nosuch", "--deadline", "1m"), "not_found"),
                       # a ready node cannot be removed: only a down one with nothing left
                       (("node", "rm", "n2"), "only a down node with nothing left"),
                       (("node", "label", "n2", "disk"), "neither KEY=VALUE"),
                       (("node", "drain", "n2", "--deadline", "soon"), "not a duration")):
        failed = cli(platform, *args)
        assert failed.returncode == 1 and said in failed.stderr, (args, failed)
        assert failed.stderr.startswith("harbormaster: ") and \
            len(failed.stderr.strip().splitlines()) == 1, (args, failed.stderr)
    denied = cli(platform, "node", "pause", "n2", token=viewer.token)
    assert denied.returncode == 1 and "forbidden" in denied.stderr, denied
    assert json.loads(ok(cli(platform, "node", "ls", "--json", token=viewer.token)))
