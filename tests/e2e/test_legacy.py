"""The seed service's contract at the root paths, walked route by route against the real
processes and Docker: once with a token, once in the open mode for old clients; then with
Docker cut off and with Postgres stopped."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests.conftest import Api
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def open_web(platform):
    """A second web process of the same platform with the seed's routes open to loopback."""
    with platform.extra_web("open", HARBORMASTER_LEGACY_OPEN="1",
                            HARBORMASTER_LEGACY_OPEN_NETWORKS="127.0.0.0/8") as url:
        yield Api(url)


def legacy_name(image: str) -> str:
    return "legacy-" + image.replace("/", "-").replace(":", "-").replace(".", "-")


def walk(client: Api, api: Api, platform, image: str):
    assert client.get("/health").json() == {"status": "OK"}
    detailed = client.get("/health/detailed")
    assert detailed.status_code == 200
    body = detailed.json()
    assert body["status"] in ("OK", "DEGRADED") and body["timestamp"]
    assert set(body["components"]) == {"docker", "postgresql", "container_manager",
                                       "system_resources"}
    assert body["components"]["container_manager"]["message"].startswith("Managing ")
    assert body["components"]["system_resources"]["cpu_usage"].endswith("%")
    system = client.get("/system/resources").json()
    assert system["system"]["cpu"]["total_cores"] >= 1
    assert {"managed_containers", "running_containers", "total_cpu_usage_percent",
            "total_memory_usage_mb", "average_cpu_per_container",
            "average_memory_per_container_mb"} <= set(system["docker"])

    assert client.post(f"/containers/{image}/start", json={"count": 0}).status_code == 422
    started = client.post(f"/containers/{image}/start", json={
        "count": 2, "resources": {"cpu_limit": "0.25", "memory_limit": "64m"}})
    assert started.status_code == 200, started.text
    ids = started.json()["started"]
    assert len(ids) == 2
    for cid in ids:
        attrs = platform.inspect(cid)
        assert attrs["HostConfig"]["NanoCpus"] == 250_000_000
        assert attrs["Config"]["Labels"]["managed-by"] == image
    listed = {c["id"]: c for c in client.get("/containers").json()["containers"]}
    assert client.get("/containers").json()["total"] == len(listed)
    for cid in ids:
        assert listed[cid]["status"] == "running" and listed[cid]["image"] == image
        assert listed[cid]["resources"] == {"cpu_limit": "0.25", "memory_limit": "64m"}
        assert listed[cid]["ports"]["80/tcp"] > 0
    images = {i["deployment"]: i for i in client.get("/images").json()["images"]}
    mine = images[legacy_name(image)]
    assert mine["image"] == image
    assert mine["current_running"] == 2 and mine["total_instances"] == 2
    instances = client.get(f"/containers/{image}/instances").json()["instances"]
    assert {i["id"] for i in instances} == set(ids)
    for inst in instances:
        assert inst["status"] == "running" and inst["endpoint"].startswith("http://localhost:")
        port = inst["endpoint"].rsplit(":", 1)[1]
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    health = wait_until(lambda: (lambda h: h if "errors" not in h else None)(
        client.get(f"/containers/instances/{ids[0]}/health").json()), 20, "instance sampled")
    assert health["status"] in ("healthy", "warning", "critical")
    assert isinstance(health["cpu_usage"], float) and isinstance(health["memory_usage"], float)
    missing = client.get("/containers/instances/nope-nope/health")
    assert missing.status_code == 404 and missing.json() == {"detail": "Instance 'nope-nope' not found"}

    updated = client.put(f"/containers/{image}/resources", json={"memory_limit": "96m"})
    assert updated.status_code == 200 and set(updated.json()["updated"]) == set(ids)
    assert platform.inspect(ids[0])["HostConfig"]["Memory"] == 96 * 1024 ** 2

    stopped = client.post(f"/containers/{image}/stop", json={"instanceId": ids[0]})
    assert stopped.status_code == 200 and stopped.json() == {"stopped": True}
    statuses = {i["id"]: i["status"] for i in client.get(f"/containers/{image}/instances").json()[
        "instances"]}
    assert statuses[ids[0]] == "stopped" and statuses[ids[1]] == "running"
    assert platform.inspect(ids[0])["State"]["Status"] == "exited"
    assert client.post(f"/containers/{image}/stop", json={"instanceId": "nope"}).status_code == 404

    deleted = client.delete(f"/containers/{image}", json={"instanceId": ids[1]})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] is True and deleted.json()["container_id"] == ids[1]
    assert not platform.listed(id=ids[1])
    # the other style: the id (or name) in the path, of the stopped instance
    by_path = client.delete(f"/containers/{ids[0]}")
    assert by_path.status_code == 200 and by_path.json()["name"]
    gone = client.delete("/containers/no-such-container")
    assert gone.status_code == 404 and "not found" in gone.json()["detail"]
    # the retired slots are not brought back
    dep = api.get(f"/api/deployments/{legacy_name(image)}").json()
    assert dep["replicas"] == 0

    endpoint_id = f"ep-{uuid.uuid4().hex[:6]}"
    reg = client.post("/registry/endpoints", json={"id": endpoint_id, "image_id": image,
                                                   "host": "127.0.0.1", "port": 8080,
                                                   "caps": {"cpu": 2, "mem": 512}})
    assert reg.status_code == 200, reg.text
    assert reg.json()["status"] == "UP" and reg.json()["last_heartbeat"]
    assert reg.json()["caps"] == {"cpu": 2, "mem": 512}
    ours = api.get(f"/api/services/{endpoint_id}").json()  # one registry, two surfaces
    assert ours["service"] == image and ours["metadata"]["caps"] == {"cpu": 2, "mem": 512}
    assert client.post("/registry/endpoints", json={"id": endpoint_id, "image_id": image,
                                                    "host": "127.0.0.1", "port": 0}).status_code == 422
    down = client.put(f"/registry/endpoints/{endpoint_id}/status", json={"status": "DOWN"})
    assert down.status_code == 200 and down.json()["status"] == "DOWN"
    up = client.put(f"/registry/endpoints/{endpoint_id}/status?status=UP")
    assert up.status_code == 200 and up.json()["status"] == "UP"
    assert client.put(f"/registry/endpoints/{endpoint_id}/status",
                      json={"status": "SIDEWAYS"}).status_code == 422
    assert client.put("/registry/endpoints/nope/status", json={"status": "UP"}).json() == {
        "detail": "Endpoint 'nope' not found"}
    assert client.delete(f"/registry/endpoints/{endpoint_id}").json() == {"ok": True}
    assert client.delete(f"/registry/endpoints/{endpoint_id}").status_code == 404

    # image names with registry ports reach the route (not pullable here: a 500 with detail)
    remote = client.post("/containers/registry.local:5000/team/app:v2/start", json={"count": 1})
    assert remote.status_code == 500 and "detail" in remote.json()
    report = client.get("/test/integration").json()
    assert report["overall_status"] == "PASSED", report
    assert set(report["tests"]) == {"docker_connection", "container_listing", "postgresql",
                                    "system_resources", "health_monitoring"}


def test_seed_routes_with_a_token(api, anonymous, platform):
    assert anonymous.get("/containers").status_code == 401  # closed by default
    walk(api, api, platform, "harbormaster/busybox-httpd")


def test_seed_routes_in_the_open_mode(open_web, api, platform):
    walk(open_web, api, platform, "harbormaster/busybox-httpd:v2")
    assert open_web.get("/api/jobs").status_code == 401  # only the seed's routes open


@pytest.mark.disruptive
def test_outages_show_in_the_seed_health_routes(open_web, api, platform):
    # actors fail on the cut engine and on the stopped database (and are retried); the
    # scheduler exits when it loses its leader connection, and supervisord restarts it
    for program in ("worker", "executor"):
        platform.expect_log(program, r"\[ERROR\] Failed to process message [\s\S]*"
                                     r"(docker engine unreachable|postgres unavailable)")
    platform.expect_log("scheduler", r"lost the leader connection")
    platform.expect_restart("scheduler")
    platform.proxy.cut()
    try:
        wait_until(lambda: open_web.get("/test/integration").json()["tests"][
            "docker_connection"]["status"] == "FAIL", 20, "docker reported FAIL")
        report = open_web.get("/test/integration").json()
        assert report["overall_status"] == "FAILED"
        detailed = open_web.get("/health/detailed").json()
        assert detailed["status"] in ("DEGRADED", "ERROR")
        assert detailed["components"]["docker"]["status"] == "unhealthy"
    finally:
        platform.proxy.restore()
    wait_until(lambda: open_web.get("/test/integration").json()["overall_status"] == "PASSED",
               30, "docker back")
    platform.stop_postgres()
    try:
        report = open_web.get("/test/integration")
        assert report.status_code == 200
        assert report.json()["tests"]["postgresql"]["status"] == "FAIL"
        assert report.json()["overall_status"] == "FAILED"
        detailed = open_web.get("/health/detailed").json()
        assert detailed["status"] == "ERROR"
        assert detailed["components"]["postgresql"]["status"] == "unhealthy"
        assert api.get("/api/containers").status_code == 503  # naming postgres
    finally:
        platform.start_postgres()
    wait_until(lambda: open_web.get("/test/integration").json()["tests"]["postgresql"][
        "status"] == "PASS", 60, "postgres back")
    wait_until(lambda: api.get("/api/containers").status_code == 200, 60, "api back")
    # the heartbeats Postgres refused got the nodes declared down: the next tests need them
    # ready again (placement spreads over ready nodes only)
    wait_until(lambda: all(n["status"] == "ready" for n in api.get("/api/nodes").json()["items"]),
               120, "every node ready again")
