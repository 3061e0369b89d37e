"""Health end to end: CPU classification and alerts that re-arm, HTTP health checks that
replace an instance after exactly the configured failures, component health, metrics and
the Prometheus exposition."""
from __future__ import annotations

import uuid
from datetime import datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.dockerwatch import DockerWatch
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def kind_events(api, container: str, kind: str) -> list[dict]:
    return api.get("/api/events", params={"container": container, "kind": kind,
                                          "limit": 1000}).json()["items"]


def test_cpu_burn_is_classified_and_the_alert_rearms(api):
    name = unique("burn")
    job = api.job(api.post("/api/containers", json={
        "image": "harbormaster/busybox-burn", "name": name, "resources": {"cpus": 0.5}}))
    assert job["status"] == "succeeded", job
    latest = wait_until(lambda: (lambda h: h["latest"] if h["latest"] and h["latest"]["status"]
                                 in ("warning", "critical") else None)(
        api.get(f"/api/containers/{name}/health").json()), 30, "burn classified")
    assert latest["cpu_percent"] >= 75 and latest["cpu_limit"] == 0.5
    wait_until(lambda: len(kind_events(api, name, "high_cpu")) == 1, 20, "first high_cpu")
    # stays high for several sweeps: still one event (hysteresis)
    wait_until(lambda: len(api.get(f"/api/containers/{name}/health").json()["history"]) >= 6,
               20, "more sweeps")
    assert len(kind_events(api, name, "high_cpu")) == 1
    api.post(f"/api/containers/{name}/exec", json={"command": ["touch", "/tmp/idle"]})
    wait_until(lambda: kind_events(api, name, "high_cpu_resolved"), 30, "alert re-armed")
    assert api.get(f"/api/containers/{name}/health").json()["latest"]["status"] == "healthy"
    api.post(f"/api/containers/{name}/exec", json={"command": ["rm", "/tmp/idle"]})
    wait_until(lambda: len(kind_events(api, name, "high_cpu")) == 2, 30, "second high_cpu")
    api.job(api.delete(f"/api/containers/{name}", params={"force": "true"}))


def first_touched(watch: DockerWatch, container_id: str) -> dict | None:
    """The first event of the container that stops, kills or removes it."""
    return next((e for e in list(watch.events) if e["id"] == container_id and
                 e["Action"].split(":")[0] in ("kill", "die", "stop", "destroy")), None)


def test_failing_http_check_replaces_the_instance_after_the_threshold(api, platform):
    name = unique("probe")
    check = {"type": "http", "path": "/health", "port": 80, "interval": 1, "timeout": 1,
             "healthy_threshold": 1, "unhealthy_threshold": 3}
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": 1, "ports": {"80/tcp": None},
        "health_check": check, "update": {"monitor": 0.5}})
    assert r.json()["status"] == "succeeded", r.text
    instance = f"{name}-0.1"
    wait_until(lambda: api.get(f"/api/containers/{instance}").json()["health"] == "healthy",
               30, "instance healthy")
    first_id = api.get(f"/api/containers/{instance}").json()["id"]
    with DockerWatch(f"harbormaster.deployment={name}", platform.engines) as watch:
        broke = api.post(f"/api/containers/{instance}/exec",
                         json={"command": ["rm", "/www/health"]})
        assert broke.status_code == 200
        broke_at = datetime.now().astimezone()
        event = wait_until(lambda: [e for e in kind_events(api, instance, "health_status")
                                    if e["detail"]["health"] == "unhealthy"], 30,
                           "unhealthy")[0]
        # the platform then stops the failing container: wait until Docker says so
        wait_until(lambda: first_touched(watch, first_id), 30, "the failing container stopped")
    assert event["detail"]["consecutive_failures"] == 3
    assert "404" in event["detail"]["error"]
    unhealthy_at = datetime.fromisoformat(event["at"])
    elapsed = (unhealthy_at - broke_at).total_seconds()
    assert elapsed >= 1.5, elapsed  # three probes a second apart: not before the third
    # the same container until the third failure: Docker saw nothing done to it before
    touched = first_touched(watch, first_id)
    print(f"[health] unhealthy {elapsed:.2f}s after the break; first touched: "
          f"{touched['Action']} {touched['timeNano'] / 1e9 - unhealthy_at.timestamp():+.2f}s")
    assert touched["timeNano"] / 1e9 >= unhealthy_at.timestamp(), (touched, event)
    successor = f"{name}-0.2"  # the slot's next incarnation
    replaced = wait_until(lambda: (lambda c: c if c.get("health") == "healthy" else None)(
        api.get(f"/api/containers/{successor}").json()), 30, "replacement healthy")
    assert replaced["state"] == "running"
    # the deployment's counts follow at its next reconcile pass
    wait_until(lambda: (lambda s: s["ready"] == 1 and s["healthy"] == 1)(
        api.get(f"/api/deployments/{name}").json()["status"]), 15, "counts updated")
    api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_component_health_and_metrics_api(api):
    report = api.get("/api/health").json()
    for component in ("postgres", "redis", "workers", "scheduler", "agent:local", "docker:local"):
        assert report["components"][component]["status"] == "ok", report
    assert report["status"] == "ok"
    name = unique("metric")
    api.job(api.post("/api/containers", json={"image": HTTPD, "name": name}))
    try:
        wait_until(lambda: len(api.get(f"/api/containers/{name}/health").json()["history"])
                   >= 3, 20, "three snapshots")
        series = api.get(f"/api/metrics/{name}", params={"since": "1h", "step": "60s"}).json()
        # the three snapshots may straddle a minute boundary: count them over every bucket
        assert sum(bucket["samples"] for bucket in series["items"]) >= 3, series
        summary = api.get("/api/metrics").json()
        assert summary["host"]["local"]["memory_bytes"] > 0
        assert summary["instances"]["running"] >= 1
        latest = {i["container"]: i for i in api.get("/api/health/containers").json()["items"]}
        assert latest[name]["status"] == "healthy" and latest[name]["source"] == "cgroup"
        assert latest[name]["net_rx"] is not None and latest[name]["pids"] >= 1
        assert api.get(f"/api/metrics/{name}", params={"step": "fast"}).status_code == 422
    finally:
        api.delete(f"/api/containers/{name}", params={"force": "true", "wait": 60})


def test_prometheus_exposition_holds_the_platform_series(api, platform, anonymous):
    name = unique("prom")
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": 2, "update": {"monitor": 0.5}})
    assert r.json()["status"] == "succeeded"
    wait_until(lambda: platform.sql("SELECT count(*) FROM health_snapshots WHERE deployment = %s"
                                    " AND cpu_percent IS NOT NULL", (name,))[0][0] >= 2, 20,
               "instances sampled")
    text = anonymous.get("/metrics").text  # loopback: no token needed
    families = {f.name: f for f in text_string_to_metric_families(text)}
    jobs = {(s.labels["kind"], s.labels["status"]): s.value
            for s in families["harbormaster_jobs"].samples}
    expected = platform.sql("SELECT count(*) FROM jobs WHERE kind = 'create_deployment'"
                            " AND status = 'succeeded'")[0][0]
    assert jobs[("create_deployment", "succeeded")] == expected >= 1
    up = [s for s in families["harbormaster_instance_up"].samples
          if s.labels["deployment"] == name]
    assert len(up) == 2 and all(s.value == 1 for s in up)
    cpu = [s for s in families["harbormaster_instance_cpu_percent"].samples
           if s.labels["deployment"] == name]
    assert len(cpu) == 2
    actions = {s.labels["action"]: s.value
               for s in families["harbormaster_reconcile_actions"].samples
               if s.labels["deployment"] == name}
    assert actions["created"] == 2
    latency = families["harbormaster_http_request_duration_seconds"]
    assert any(s.labels.get("route") == "/api/deployments" for s in latency.samples)
    durations = families["harbormaster_job_duration_seconds"]
    assert any(s.labels["kind"] == "create_deployment" for s in durations.samples)
    assert requests.get(f"{platform.url}/metrics", timeout=10).status_code == 200
