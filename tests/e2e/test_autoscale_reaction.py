"""The fast reaction path (issue 18, point 2): a sweep that measures a deployment over its
target, or a custom metric reported above it, has the deployment evaluated at once. On a
platform whose periodic evaluation is an hour apart, any scale-up can only come from such a
trigger; the decision records say which one asked."""
from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
NO_TICK = {"HARBORMASTER_SAMPLE_INTERVAL": "1", "HARBORMASTER_AUTOSCALE_INTERVAL": "3600"}


@pytest.fixture(scope="module")
def quiet_ticks():
    plat = TestPlatform(extra_env=NO_TICK, second_node=False)
    try:
        plat.start()
        yield plat
    finally:
        plat.teardown()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def decisions(api: Api, name: str) -> list[dict]:
    """Oldest first."""
    items = api.get("/api/scaling/decisions", params={"deployment": name}).json()["items"]
    return list(reversed(items))


def replicas(api: Api, name: str) -> int:
    return api.get(f"/api/deployments/{name}").json()["replicas"]


def deploy(api: Api, name: str, image: str, **extra) -> None:
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": image, "replicas": 1, "update": {"monitor": 0.5}, **extra})
    assert r.json()["status"] == "succeeded", r.text


def test_a_sweep_over_target_has_the_deployment_evaluated_at_once(quiet_ticks):
    api = Api(quiet_ticks.url, quiet_ticks.admin_token)
    name = unique("fastcpu")
    # burns from its start, within half a core; the low target holds on a loaded machine
    deploy(api, name, "harbormaster/busybox-burn", resources={"cpus": 0.5})
    r = api.post("/api/scaling/policies", json={
        "deployment": name, "min_replicas": 1, "max_replicas": 3,
        "metrics": [{"type": "cpu", "target": 10}], "scale_up_cooldown": 0})
    assert r.status_code == 201, r.text
    wait_until(lambda: replicas(api, name) > 1, 90, "scaled out by a sweep's trigger")
    made = decisions(api, name)
    assert made, "no decision recorded"
    assert all(d["inputs"]["trigger"].startswith("sweep: cpu") for d in made), made
    first_up = next(d for d in made if d["applied"])
    assert first_up["desired"] > first_up["current"] == 1
    assert "vs target 10%" in first_up["inputs"]["trigger"] and "cpu" in first_up["reason"]
    # the scale-up went the usual way: the autoscaler's event, then the planner's create

    def created_after_autoscale():
        events = api.get("/api/events", params={"deployment": name}).json()["items"]
        kinds = [e["kind"] for e in events]
        return "autoscale" in kinds and "instance_created" in kinds[kinds.index("autoscale"):]
    wait_until(created_after_autoscale, 60, "an instance created after the autoscale event")
    api.job(api.delete(f"/api/deployments/{name}"))


def test_a_metric_report_over_target_has_the_deployment_evaluated_at_once(quiet_ticks):
    api = Api(quiet_ticks.url, quiet_ticks.admin_token)
    name = unique("fastrps")
    deploy(api, name, "harbormaster/busybox-httpd")
    r = api.post("/api/scaling/policies", json={
        "deployment": name, "max_replicas": 5, "scale_up_cooldown": 0,
        "metrics": [{"type": "custom", "name": "requests_per_second", "target": 100}]})
    assert r.status_code == 201, r.text
    # within the band: no evaluation is asked for
    assert api.post(f"/api/deployments/{name}/metrics",
                    json={"name": "requests_per_second", "value": 105}).status_code == 200
    assert api.post(f"/api/deployments/{name}/metrics",
                    json={"name": "requests_per_second", "value": 350}).status_code == 200
    wait_until(lambda: replicas(api, name) == 4, 60, "scaled out by the report's trigger")
    made = decisions(api, name)
    assert len(made) == 1, made  # the report within the band asked for nothing
    assert made[0]["applied"] and "ceil(350/100) = 4" in made[0]["reason"]
    assert made[0]["inputs"]["trigger"].startswith("metric report: requests_per_second 350")
    api.job(api.delete(f"/api/deployments/{name}"))
