"""The dashboard's nodes panel in headless Chromium (test_dashboard's page and fixture): both
nodes with the CPU and memory reserved of each as /api/nodes counts them, a paused and a
down node marked, and the node of each instance, at 800 px and within the one summary
request per refresh."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.test_dashboard import CUT_PANELS, dashboard, deploy, remove  # noqa: F401
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


NODE_CARDS = """() => Object.fromEntries(
  [...document.querySelectorAll('#nodes .node-card')].map(c => [c.dataset.name, {
    classes: c.className, text: c.textContent,
    border: getComputedStyle(c).borderColor,
    status: getComputedStyle(c.querySelector('.badge.status')).color,
    cpu: Number(c.querySelector('.meter.cpu [role=meter]').ariaValueNow),
    cpuMax: Number(c.querySelector('.meter.cpu [role=meter]').ariaValueMax),
    memory: Number(c.querySelector('.meter.memory [role=meter]').ariaValueNow),
    fill: c.querySelector('.meter.cpu .fill').style.width}]))"""
NODE_CELLS = """name => [...document.querySelectorAll('#instances tbody tr')]
  .filter(r => r.dataset.deployment === name)
  .map(r => ({node: r.querySelector('td.node').textContent,
              colour: getComputedStyle(r.querySelector('td.node')).color}))"""
RED = "rgb(179, 38, 30)"


@pytest.fixture
def on_n2(api):
    """A deployment with one instance held on n2 (a constraint), reserving 0.5 CPU and 64m."""
    name = f"dashn2-{uuid.uuid4().hex[:6]}"
    job = deploy(api, name, image="harbormaster/busybox-httpd", replicas=1,
                 resources={"cpus": 0.5, "memory": "64m"},
                 placement={"constraints": ["node.name==n2"]})
    assert job["status"] == "succeeded", job
    yield name
    remove(api, name)


def test_nodes_panel_and_where_each_instance_runs(api, platform, dashboard, on_n2):
    [instance] = api.get("/api/containers", params={"deployment": on_n2}).json()["items"]
    assert instance["node"] == "n2", instance
    [docker_c] = [c for c in platform.containers(**{"harbormaster.name": instance["name"]})
                  if c.status == "running"]
    assert docker_c.node == "n2"  # the engine it runs in
    assert api.post("/api/nodes/n2/pause").status_code == 200
    try:
        view = dashboard(width=800)
        view.sign_in(platform.admin_token)
        page = view.page
        page.wait_for_function(f"name => ({NODE_CELLS})(name).length === 1", arg=on_n2,
                               timeout=30000)

        def as_the_api_says():
            """The cards, once they show what /api/nodes says (other tests' instances may
            still come and go on a refresh)."""
            expected = {n["name"]: n for n in api.get("/api/nodes").json()["items"]}
            cards = page.evaluate(NODE_CARDS)
            assert sorted(cards) == sorted(expected) == ["local", "n2"], cards
            return cards if all(
                # the bars are what the API counts as reserved of capacity
                card["cpu"] == pytest.approx(expected[name]["reserved"]["cpus"])
                and card["cpuMax"] == pytest.approx(expected[name]["capacity"]["cpus"])
                and card["memory"] == expected[name]["reserved"]["memory"]
                and f"{expected[name]['instances']} instance" in card["text"]
                for name, card in cards.items()) else None

        cards = wait_until(as_the_api_says, 60, "the node cards to show what /api/nodes says",
                           interval=1.0)
        for card in cards.values():
            assert "ready" in card["text"] and "down" not in card["classes"], card
        assert cards["n2"]["cpu"] >= 0.5 and cards["n2"]["fill"] != "0%", cards["n2"]
        assert "paused" in cards["n2"]["text"] and "zone=b" in cards["n2"]["text"], cards["n2"]
        assert "paused" not in cards["local"]["text"], cards["local"]
        assert page.evaluate(NODE_CELLS, on_n2) == [{"node": "n2", "colour": "rgb(29, 35, 48)"}]
        # no request of its own: the nodes come in the one summary request
        # polls only the summary (the events panel is one stream, opened once)
        paths = [path for _, path in view.requests]
        assert set(paths) - {"/api/events/stream"} == {"/api/summary"}, view.requests
        assert paths.count("/api/events/stream") == 1, view.requests
        assert page.evaluate("document.documentElement.scrollWidth") <= 800
        assert page.evaluate(CUT_PANELS) == []
        view.screenshot("dashboard-nodes-800px.png")

        # a down node, as the server reports one (the summary with n2 down): in red, and
        # so is the node of each instance on it
        summary = api.get("/api/summary").json()
        n2 = next(n for n in summary["nodes"] if n["name"] == "n2")
        n2.update(status="down", ready=False, heartbeat_age=42.0,
                  down_since=summary["generated_at"],
                  docker={"ok": False, "version": None, "error": "Cannot connect"})
        body = json.dumps(summary)
        view.answer = lambda route: route.fulfill(status=200, body=body,
                                                  content_type="application/json")
        page.wait_for_function(
            "() => (document.querySelector(\"#nodes .node-card[data-name='n2']\") || {})"
            ".className === 'node-card down'", timeout=30000)
        cards = page.evaluate(NODE_CARDS)
        assert cards["n2"]["status"] == RED and cards["n2"]["border"] == "rgb(217, 48, 37)"
        assert "Docker unusable: Cannot connect" in cards["n2"]["text"], cards["n2"]
        assert "down" not in cards["local"]["classes"], cards["local"]
        assert page.evaluate(NODE_CELLS, on_n2) == [{"node": "n2", "colour": RED}]
        view.screenshot("dashboard-node-down.png")
        view.answer = None
    finally:
        api.post("/api/nodes/n2/activate")
