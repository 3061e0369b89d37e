"""Service registry and discovery end to end: dependencies by name, the map, endpoints that
follow health (with a blocking query), TTL registrations that expire."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"
CHECK = {"type": "http", "path": "/health", "port": 80, "interval": 1, "timeout": 1,
         "healthy_threshold": 1, "unhealthy_threshold": 2}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def deploy(api, name, service, replicas=2, depends_on=()):
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": replicas, "ports": {"80/tcp": None},
        "health_check": CHECK, "update": {"monitor": 0.5},
        "service": {"name": service, "version": "1.2.0", "port": 80,
                    "depends_on": list(depends_on), "metadata": {"team": "t"}}})
    assert r.json()["status"] == "succeeded", r.text


def healthy_endpoints(api, service):
    return api.get(f"/api/services/{service}/endpoints", params={"healthy": "true"}).json()


def test_dependencies_by_name_map_and_endpoints_that_follow_health(api, platform):
    backend, frontend = unique("be"), unique("fe")
    deploy(api, backend, backend, replicas=2)
    deploy(api, frontend, frontend, replicas=1, depends_on=[backend])
    wait_until(lambda: len(healthy_endpoints(api, backend)["endpoints"]) == 2, 30,
               "backend endpoints healthy")
    found = healthy_endpoints(api, backend)
    ep = found["endpoints"][0]
    assert ep["address"] == "127.0.0.1" and ep["internal"] == f"{backend}:80"
    assert ep["version"] == "1.2.0" and ep["metadata"] == {"team": "t"}
    # a container of the first reaches the second by its service name
    fe_instance = f"{frontend}-0.1"
    wait_until(lambda: api.get(f"/api/containers/{fe_instance}").json()["state"] == "running",
               20, "frontend running")
    out = api.post(f"/api/containers/{fe_instance}/exec",
                   json={"command": ["wget", "-qO-", f"http://{backend}:80/version"]}).json()
    assert out["exit_code"] == 0 and out["output"].strip() == "v1", out
    # the map shows both and the edge
    wait_until(lambda: len(healthy_endpoints(api, frontend)["endpoints"]) == 1, 30,
               "frontend endpoint healthy")
    graph = api.get("/api/services/map").json()
    ids = {n["id"]: n for n in graph["nodes"]}
    assert ids[backend]["instances"] == 2 and ids[backend]["health"] == "passing"
    assert ids[frontend]["deployment"] == frontend
    assert {"from": frontend, "to": backend, "health": "passing"} in graph["edges"]

    # a blocked discovery query returns when one instance turns unhealthy
    index = found["index"]
    answer = {}

    def block():
        try:
            answer["response"] = api.get(f"/api/services/{backend}/endpoints", params={
                "index": index, "wait": "30s", "healthy": "true"})
            answer["at"] = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - a dead waiter must fail the test
            answer["error"] = exc

    waiter = threading.Thread(target=block, daemon=True)
    waiter.start()
    time.sleep(0.5)
    assert "response" not in answer  # it blocks while nothing changes
    victim = f"{backend}-1.1"
    broke_at = time.monotonic()
    api.post(f"/api/containers/{victim}/exec", json={"command": ["rm", "/www/health"]})
    waiter.join(timeout=40)
    assert not waiter.is_alive() and "error" not in answer, answer
    # the query returned before its 30 s wait was over: the change woke it (how fast is
    # bench/health_sweep's to measure, not a test's)
    took = answer["at"] - broke_at
    print(f"[discovery] endpoint left after {took:.2f}s")
    body = answer["response"].json()
    assert body["index"] > index
    assert victim not in [e["instance"] for e in body["endpoints"]]


def test_ttl_registration_expires_and_is_removed(api):
    name = unique("ext")
    r = api.post("/api/services/register", json={
        "name": name, "version": "2.1.0", "address": "127.0.0.1", "port": 9100,
        "metadata": {"team": "billing"}, "check": {"type": "ttl", "ttl": 2,
                                                   "deregister_after": 2}})
    assert r.status_code == 201, r.text
    endpoint = r.json()
    assert endpoint["status"] == "UP" and endpoint["source"] == "external"
    assert api.get(f"/api/services/{endpoint['id']}").json()["service"] == name
    assert api.put(f"/api/services/{endpoint['id']}/heartbeat").status_code == 200
    wait_until(lambda: api.get(f"/api/services/{endpoint['id']}").json()["status"] == "DOWN",
               15, "TTL missed: DOWN")
    assert healthy_endpoints(api, name)["endpoints"] == []
    wait_until(lambda: api.get(f"/api/services/{endpoint['id']}").status_code == 404, 15,
               "deregistered after its delay")


def test_registration_validation_and_deregistration(api, viewer):
    r = api.post("/api/services/register", json={
        "name": unique("bad"), "address": "10.1.2.3", "port": 80, "check": {"type": "http"}})
    assert r.status_code == 422  # our probes target loopback only
    assert viewer.post("/api/services/register", json={
        "name": unique("v"), "address": "127.0.0.1", "port": 80}).status_code == 403
    r = api.post("/api/services/register", json={"name": unique("ok"), "address": "127.0.0.1",
                                                 "port": 81})
    endpoint_id = r.json()["id"]
    listed = api.get("/api/services", params={"name": r.json()["service"]}).json()["items"]
    assert [e["id"] for e in listed] == [endpoint_id]
    assert api.delete(f"/api/services/{endpoint_id}").status_code == 200
    assert api.delete(f"/api/services/{endpoint_id}").status_code == 404
