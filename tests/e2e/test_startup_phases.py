"""Startup phases end to end (issue 16, point 6): every instance of a 10-replica deployment
has its moments (planned, image ready, created, started within 0.5 s of Docker's
State.StartedAt, seen running, ready), monotonic; the histogram's count of the total phase
grows by the instances; an instance whose command sleeps before serving, with a health
check, raises slow_start."""
from __future__ import annotations

import uuid
from datetime import datetime

import pytest
import requests

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"
PHASES = ("image_ready", "created", "started", "running", "ready", "total")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def histogram_counts(platform) -> dict[tuple[str, str], float]:
    """(phase, pulled) -> the count of harbormaster_instance_startup_seconds."""
    text = requests.get(f"{platform.url}/metrics", timeout=30).text
    out = {}
    for line in text.splitlines():
        if line.startswith("harbormaster_instance_startup_seconds_count{"):
            labels, value = line[line.index("{") + 1:].split("}")
            parsed = dict(part.split("=") for part in labels.split(","))
            out[(parsed["phase"].strip('"'), parsed["pulled"].strip('"'))] = float(value)
    return out


def moment(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_every_instance_records_its_startup_and_the_histogram_counts_them(api, platform):
    before = histogram_counts(platform)
    name = unique("phases")
    r = api.post("/api/deployments", params={"wait": 120}, json={
        "name": name, "image": HTTPD, "replicas": 10, "update": {"monitor": 0.5}})
    assert r.json()["status"] == "succeeded", r.text
    instances = [i["name"] for i in api.get(f"/api/deployments/{name}").json()["instances"]]
    assert len(instances) == 10
    for instance in instances:
        got = api.get(f"/api/containers/{instance}").json()["startup"]
        assert got is not None, instance
        assert all(got[m] for m in ("planned", "image_ready", "created", "started",
                                    "running", "ready")), got
        assert all(got["seconds"][p] >= 0 for p in PHASES), got   # monotonic
        parts = sum(got["seconds"][p] for p in PHASES if p != "total")
        assert parts == pytest.approx(got["seconds"]["total"], abs=0.01)
        docker_started = platform.inspect(instance)["State"]["StartedAt"]
        assert abs(moment(got["started"]) - moment(docker_started[:26] + "+00:00")) <= 0.5
        assert got["pulled"] is False   # the test image is on every node
    print("one instance's phases:", got["seconds"])
    after = histogram_counts(platform)
    for phase in PHASES:
        grew = after.get((phase, "false"), 0) - before.get((phase, "false"), 0)
        assert grew == 10, (phase, before, after)
    api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_a_slow_start_raises_slow_start(api, platform):
    name = unique("slow")
    check = {"type": "command", "command": ["wget", "-q", "-O", "/dev/null",
                                            "http://127.0.0.1/health"],
             "interval": 1, "timeout": 1, "healthy_threshold": 1, "start_period": 15}
    r = api.post("/api/deployments", params={"wait": 120}, json={
        "name": name, "image": HTTPD, "replicas": 1, "health_check": check,
        "command": ["sh", "-c", "sleep 6; exec httpd -f -p 80 -h /www"],
        "update": {"monitor": 0.5}})
    assert r.json()["status"] == "succeeded", r.text
    slow = wait_until(lambda: api.get("/api/events", params={
        "deployment": name, "kind": "slow_start"}).json()["items"], 30, "a slow_start event")
    detail = slow[0]["detail"]
    print("slow start:", detail)
    assert slow[0]["container"] == f"{name}-0.1"
    assert detail["seconds"] > 6 and detail["limit"] == 5.0
    assert detail["phases"]["ready"] >= 5
    started = api.get(f"/api/containers/{name}-0.1").json()["startup"]
    assert started["seconds"]["total"] == pytest.approx(detail["seconds"], abs=0.01)
    api.delete(f"/api/deployments/{name}", params={"wait": 60})
