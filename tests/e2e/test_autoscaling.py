"""Autoscaling end to end with real containers: CPU load scales out and back in, a reported
requests_per_second scales out, every decision is listed with its reason."""
from __future__ import annotations

import time
import uuid

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def deploy(api, name, image, replicas=1, **extra):
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": image, "replicas": replicas, "update": {"monitor": 0.5},
        **extra})
    assert r.json()["status"] == "succeeded", r.text


def decisions(api, name):
    return api.get("/api/scaling/decisions", params={"deployment": name}).json()["items"]


def replicas(api, name):
    return api.get(f"/api/deployments/{name}").json()["replicas"]


def test_cpu_load_scales_out_then_back_in_after_the_window(api, platform):
    name = unique("ascpu")
    deploy(api, name, "harbormaster/busybox-burn", resources={"cpus": 0.5})
    r = api.post("/api/scaling/policies", json={
        "deployment": name, "min_replicas": 1, "max_replicas": 3,
        "metrics": [{"type": "cpu", "target": 50}], "scale_up_cooldown": 0,
        "scale_down_cooldown": 0, "stabilization_window": 6})
    assert r.status_code == 201, r.text
    assert r.json()["max_replicas"] == 3
    wait_until(lambda: replicas(api, name) > 1, 30, "scaled out")
    with_cpu = [d for d in reversed(decisions(api, name)) if d["inputs"]["cpu"] is not None]
    # the scale-up was decided on CPU above its target (how many evaluations that took is
    # this machine's speed: a figure for bench/, not an assertion)
    up = next(d for d in with_cpu if d["applied"])
    assert up["desired"] > up["current"] and "cpu" in up["reason"] and "target 50%" in up["reason"]
    wait_until(lambda: replicas(api, name) == 3, 40, "scaled to the maximum")
    # the load stops everywhere
    wait_until(lambda: len([c for c in api.get(f"/api/deployments/{name}").json()["instances"]
                            if c["state"] == "running"]) == 3, 30, "three running")
    stopped_at = time.monotonic()
    for inst in api.get(f"/api/deployments/{name}").json()["instances"]:
        if inst["state"] == "running":
            api.post(f"/api/containers/{inst['name']}/exec", json={"command": ["touch", "/tmp/idle"]})
    wait_until(lambda: replicas(api, name) == 1, 60, "scaled back in")
    assert time.monotonic() - stopped_at >= 6 - 1  # not before the stabilization window
    down = next(d for d in decisions(api, name) if d["applied"] and d["desired"] < d["current"])
    assert "cpu" in down["reason"]
    kept = [d for d in decisions(api, name) if not d["applied"]]
    assert kept and all(d["reason"] for d in kept)
    api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_reported_requests_per_second_scale_out_and_stale_data_holds(api, platform):
    name = unique("asrps")
    deploy(api, name, "harbormaster/busybox-httpd")
    r = api.post("/api/scaling/policies", json={
        "deployment": name, "max_replicas": 5, "scale_up_cooldown": 0,
        "scale_down_cooldown": 0, "stabilization_window": 0,
        "metrics": [{"type": "custom", "name": "requests_per_second", "target": 100}]})
    assert r.status_code == 201, r.text
    reported = api.post(f"/api/deployments/{name}/metrics",
                        json={"name": "requests_per_second", "value": 350})
    assert reported.status_code == 200 and reported.json()["value"] == 350
    wait_until(lambda: replicas(api, name) == 4, 30, "scaled out on requests_per_second")
    up = next(d for d in decisions(api, name) if d["applied"])
    assert "ceil(350/100) = 4" in up["reason"] and up["inputs"]["custom"] == {
        "requests_per_second": 350}
    # no new reports: the value goes stale and never causes a scale-down
    wait_until(lambda: any("stale" in d["reason"] for d in decisions(api, name)), 30,
               "stale metric noticed")
    assert replicas(api, name) == 4
    wait_until(lambda: len([c for c in api.get(f"/api/deployments/{name}").json()["instances"]
                            if c["state"] == "running"]) == 4, 30, "four running")
    api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_policy_api(api, viewer):
    name = unique("aspol")
    deploy(api, name, "harbormaster/busybox-httpd")
    rules = {"deployment": name, "rules": [
        {"metric": "cpu", "above": 80, "action": "scale_up"},
        {"metric": "cpu", "below": 20, "action": "scale_down"}]}
    assert viewer.post("/api/scaling/policies", json=rules).status_code == 403
    created = api.post("/api/scaling/policies", json={**rules, "enabled": False})
    assert created.status_code == 201, created.text
    policy = created.json()
    assert policy["rules"][0] == {"metric": "cpu", "above": 80, "action": "scale_up"}
    assert policy["scale_up_cooldown"] == 300 and policy["scale_down_cooldown"] == 600
    assert api.post("/api/scaling/policies", json=rules).status_code == 409
    assert api.post("/api/scaling/policies", json={**rules, "deployment": "no-such"}).status_code == 404
    assert api.post("/api/scaling/policies", json={"deployment": name}).status_code == 422
    got = api.get(f"/api/scaling/policies/{policy['id']}").json()
    assert got["deployment"] == name and not got["enabled"]
    replaced = api.put(f"/api/scaling/policies/{policy['id']}", json={
        "deployment": name, "min_replicas": 2, "max_replicas": 4,
        "metrics": [{"type": "memory", "target": 70}]})
    assert replaced.status_code == 200 and replaced.json()["min_replicas"] == 2
    dep = api.get(f"/api/deployments/{name}").json()
    assert (dep["min_replicas"], dep["max_replicas"]) == (2, 4)
    assert policy["id"] in [p["id"] for p in viewer.get("/api/scaling/policies").json()["items"]]
    assert api.delete(f"/api/scaling/policies/{policy['id']}").status_code == 200
    assert api.get(f"/api/scaling/policies/{policy['id']}").status_code == 404
    api.delete(f"/api/deployments/{name}", params={"wait": 60})
