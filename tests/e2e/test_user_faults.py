"""What a user hit (issue 12's findings), each through the real processes and Docker.

Every test here failed before its fix; each names the finding it covers.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"
FAST = {"monitor": 0.5, "max_surge": 1, "max_unavailable": 0}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def ended(api, response: requests.Response, wait: float = 90) -> dict:
    """The job a 202 (or a 200 after ?wait=) names, once it has ended, whatever its outcome."""
    assert response.status_code in (200, 202), response.text
    job = response.json()
    deadline = time.monotonic() + wait
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job {job['id']} did not end: {job}"
        job = api.get(f"/api/jobs/{job['id']}", params={"wait": 10}).json()
    return job


def running_in_docker(platform, deployment: str) -> list:
    return [c for c in platform.listed(label=[
        f"harbormaster.cluster={platform.cluster_id}",
        f"harbormaster.deployment={deployment}"]) if c["State"] == "running"]


def delete_deployment(api, platform, name: str) -> None:
    r = api.delete(f"/api/deployments/{name}", params={"wait": 60})
    if r.status_code == 404:
        return
    assert ended(api, r)["status"] == "succeeded"
    wait_until(lambda: api.get(f"/api/deployments/{name}").status_code == 404
               and not platform.listed(label=[
                   f"harbormaster.cluster={platform.cluster_id}",
                   f"harbormaster.deployment={name}"]), 60, f"{name} gone")


# --- 1. deleting and re-creating by the same name -----------------------------------------

def test_a_deployment_deleted_and_created_again_by_name(api, platform):
    name = unique("again")
    body = {"name": name, "image": HTTPD, "replicas": 1, "update": FAST}
    for round_ in (1, 2):
        r = api.post("/api/deployments", json=body, params={"wait": 60})
        assert r.status_code in (200, 202), f"round {round_}: {r.status_code} {r.text}"
        assert ended(api, r)["status"] == "succeeded"
        wait_until(lambda: len(running_in_docker(platform, name)) == 1, 30, "one instance")
        history = api.get(f"/api/deployments/{name}/history").json()["items"]
        assert [h["generation"] for h in history] == [1], history
        delete_deployment(api, platform, name)


def test_a_container_removed_and_created_again_by_name(api, platform):
    name = unique("again-c")
    for round_ in (1, 2):
        r = api.post("/api/containers", json={"image": HTTPD, "name": name},
                     params={"wait": 60})
        assert r.status_code in (200, 202), f"round {round_}: {r.status_code} {r.text}"
        job = ended(api, r)
        assert job["status"] == "succeeded", job
        assert platform.inspect(name)["State"]["Status"] == "running"
        removed = ended(api, api.delete(f"/api/containers/{name}", params={"force": "true",
                                                                          "wait": 60}))
        assert removed["status"] == "succeeded", removed
        assert api.get(f"/api/containers/{name}").status_code == 404


def test_the_seed_routes_start_delete_and_start_again(api, platform):
    image = f"{HTTPD}:v2"
    for round_ in (1, 2):
        r = api.post(f"/containers/{image}/start", json={"count": 1})
        assert r.status_code == 200, f"round {round_}: {r.status_code} {r.text}"
        (started,) = r.json()["started"]
        assert platform.inspect(started)["State"]["Status"] == "running"
        r = api.delete(f"/containers/{started}")
        assert r.status_code == 200, f"round {round_}: {r.text}"
    delete_deployment(api, platform, "legacy-harbormaster-busybox-httpd-v2")
    # and once more after the whole deployment went
    r = api.post(f"/containers/{image}/start", json={"count": 1})
    assert r.status_code == 200, r.text
    delete_deployment(api, platform, "legacy-harbormaster-busybox-httpd-v2")


# --- 3. Idempotency-Key scoped to the request ----------------------------------------------

def test_idempotency_key_replays_the_first_answer_and_refuses_reuse(api, platform):
    name = unique("idem")
    ended(api, api.post("/api/deployments", json={"name": name, "image": HTTPD, "replicas": 1,
                                                  "update": FAST}, params={"wait": 60}))
    key = uuid.uuid4().hex
    patch = {"image": f"{HTTPD}:v2", "resources": {"cpus": "0.25", "memory": "48m"}}
    first = api.patch(f"/api/deployments/{name}", json=patch, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    replay = api.patch(f"/api/deployments/{name}", json=patch, headers={"Idempotency-Key": key})
    assert replay.status_code == first.status_code
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert ended(api, first)["status"] == "succeeded"

    def applied():
        live = running_in_docker(platform, name)
        if len(live) != 1 or live[0]["Labels"]["harbormaster.generation"] != "2":
            return False
        host = platform.inspect(live[0]["Id"])["HostConfig"]
        return host["NanoCpus"] == 250_000_000 and host["Memory"] == 48 * 1024 * 1024
    wait_until(applied, 60, "generation 2 runs with the patched resources (docker inspect)")

    other_body = api.patch(f"/api/deployments/{name}", json={"replicas": 2},
                           headers={"Idempotency-Key": key})
    assert other_body.status_code == 422, other_body.text
    assert "Idempotency-Key" in other_body.text
    other_route = api.post(f"/api/deployments/{name}/scale", json={"replicas": 2},
                           headers={"Idempotency-Key": key})
    assert other_route.status_code == 422, other_route.text
    delete_deployment(api, platform, name)


# --- 4. command checks honour their timeout --------------------------------------------------

def test_a_hanging_command_check_fails_at_its_timeout(api, platform):
    name = unique("hang")
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": 1, "update": FAST,
        "restart": {"backoff_initial": 60, "backoff_max": 60},
        "health_check": {"type": "command", "command": ["sleep", "60"], "interval": 1,
                         "timeout": 1, "unhealthy_threshold": 2}})
    assert r.status_code in (200, 202), r.text
    started = time.monotonic()
    events = wait_until(lambda: api.get("/api/events", params={
        "deployment": name, "kind": "health_status"}).json()["items"], 40,
        "a health verdict from the hanging check")
    print(f"first verdict after {time.monotonic() - started:.1f}s: {events[0]['detail']}")
    unhealthy = wait_until(lambda: [e for e in api.get("/api/events", params={
        "deployment": name, "kind": "health_status"}).json()["items"]
        if e["detail"]["health"] == "unhealthy"], 40, "unhealthy from timeouts")
    assert "timed out" in (unhealthy[0]["detail"].get("error") or ""), unhealthy[0]
    delete_deployment(api, platform, name)


# --- 5. one memory rule for every screen -------------------------------------------------------

def test_the_stats_route_and_the_health_snapshots_agree_on_memory(api, platform):
    name = unique("cache")
    r = api.post("/api/containers", params={"wait": 60}, json={
        "image": HTTPD, "name": name, "command": ["sh", "-c",
            "dd if=/dev/zero of=/big bs=1M count=48 2>/dev/null; cat /big >/dev/null; "
            "cat /big >/dev/null; exec sleep 3600"]})
    job = ended(api, r)
    assert job["status"] == "succeeded", job

    def snapshot():
        rows = platform.sql("SELECT memory_bytes FROM health_snapshots WHERE container = %s"
                            " AND running ORDER BY at DESC LIMIT 1", (name,))
        return rows and rows[0][0]
    wait_until(lambda: (snapshot() or 0) > 0, 30, "a health snapshot")
    stats = api.get(f"/api/containers/{name}/stats")
    assert stats.status_code == 200, stats.text
    from_stats, from_snapshot = stats.json()["memory_bytes"], snapshot()
    print(f"stats route {from_stats} B, snapshot {from_snapshot} B")
    assert abs(from_stats - from_snapshot) <= 8 * 1024 * 1024
    ended(api, api.delete(f"/api/containers/{name}", params={"force": "true"}))


# --- 6. the seed's instance health reads the stored classification ------------------------------

def test_the_seed_instance_health_reads_the_stored_classification(api, platform):
    name = unique("classified")
    job = ended(api, api.post("/api/containers", json={"image": HTTPD, "name": name},
                              params={"wait": 60}))
    assert job["status"] == "succeeded", job
    # the sweep's classification (made with the configured thresholds) is the one shown: a
    # stored verdict that the default thresholds would not give must come back as it is
    platform.sql("INSERT INTO health_snapshots (at, container, node, running, cpu_percent,"
                 " memory_percent, status, source) VALUES (now() + interval '1 hour', %s,"
                 " 'local', true, 5, 5, 'critical', 'cgroup')", (name,))
    r = api.get(f"/containers/instances/{job['result']['container_id']}/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "critical", r.json()
    platform.sql("DELETE FROM health_snapshots WHERE container = %s", (name,))
    ended(api, api.delete(f"/api/containers/{name}", params={"force": "true"}))


# --- 7. a permanent error fails the job -----------------------------------------------------------

def test_a_missing_image_fails_the_job_and_recovers_when_it_appears(api, platform):
    name = unique("noimg")
    # a registry on a loopback port nothing listens on: the pull fails without leaving the host
    repo = f"127.0.0.1:9/hm-missing/m{uuid.uuid4().hex[:6]}"
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": f"{repo}:v9", "replicas": 3, "update": FAST})
    assert r.status_code == 200, r.text          # the wait ended with the job
    job = r.json()
    assert job["status"] == "failed", job
    assert "0 of 3 created" in job["error"] and f"{repo}:v9" in job["error"], job["error"]
    dep = api.get(f"/api/deployments/{name}").json()
    assert dep["status"]["state"] == "degraded" and repo in dep["status"]["reason"], dep
    for client in platform.engines.values():  # the image appears on every node
        client.images.get(HTTPD).tag(repo, "v9")
    try:
        wait_until(lambda: len(running_in_docker(platform, name)) == 3, 60,
                   "3 instances once the image exists")
    finally:
        delete_deployment(api, platform, name)
        for client in platform.engines.values():
            client.images.remove(f"{repo}:v9")


# --- 8. replica bounds: unset means 0..the server's cap -------------------------------------------

def test_unset_bounds_allow_zero_and_more_than_ten_up_to_the_cap(api, platform):
    name = unique("bounds")
    job = ended(api, api.post("/api/deployments", json={
        "name": name, "image": HTTPD, "replicas": 1, "update": FAST}, params={"wait": 60}))
    assert job["status"] == "succeeded", job
    dep = api.get(f"/api/deployments/{name}").json()
    assert dep["min_replicas"] is None and dep["max_replicas"] is None, dep
    zero = api.post(f"/api/deployments/{name}/scale", json={"replicas": 0}, params={"wait": 60})
    assert zero.status_code in (200, 202), zero.text
    assert ended(api, zero)["status"] == "succeeded"
    assert not running_in_docker(platform, name)
    twelve = api.post(f"/api/deployments/{name}/scale", json={"replicas": 12})
    assert twelve.status_code == 202, twelve.text
    assert ended(api, twelve)["status"] == "succeeded"
    too_many = api.post(f"/api/deployments/{name}/scale", json={"replicas": 1001})
    assert too_many.status_code == 422 and "1000" in too_many.text, too_many.text
    # bounds a user sets stay enforced
    bounded = api.patch(f"/api/deployments/{name}", json={"replicas": 2, "min_replicas": 1,
                                                          "max_replicas": 3})
    assert ended(api, bounded)["status"] == "succeeded"
    refused = api.post(f"/api/deployments/{name}/scale", json={"replicas": 4})
    assert refused.status_code == 422 and "1..3" in refused.text, refused.text
    delete_deployment(api, platform, name)


# --- 10. the exit image honours EXIT_CODE -------------------------------------------------------

def test_the_exit_image_exits_with_the_code_asked_for(api, platform):
    name = unique("exit")
    job = ended(api, api.post("/api/containers", json={
        "image": "harbormaster/busybox-exit", "name": name, "env": {"EXIT_CODE": "3"}},
        params={"wait": 60}))
    assert job["status"] == "succeeded", job

    def exited():
        state = platform.inspect(name)["State"]
        return state if state["Status"] == "exited" else None
    state = wait_until(exited, 30, "the container exited")
    assert state["ExitCode"] == 3, state
    assert "exiting with 3" in platform.container_logs(name)
    ended(api, api.delete(f"/api/containers/{name}", params={"force": "true"}))


# --- 11. a fixed host port binds once per node -------------------------------------------------

def test_a_fixed_host_port_needing_more_nodes_than_exist_is_refused(api):
    """(issue 14 turned issue 12's one-per-engine 422 into one per node: the session has two
    nodes, so three replicas of a fixed port need one node more than there is)"""
    r = api.post("/api/deployments", json={"name": unique("fixed"), "image": HTTPD,
                                           "replicas": 3, "ports": {"80/tcp": 18080}})
    assert r.status_code == 422, r.text
    assert "needs 3 nodes with port 18080/tcp free" in r.json()["detail"], r.json()


# --- 12. instances report their limits and count in what is reserved ---------------------------

def test_instances_report_their_limits_and_count_as_reserved(api, platform):
    name = unique("limits")
    before = api.get("/api/containers/usage/summary").json()
    job = ended(api, api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": 2, "update": FAST,
        "resources": {"cpus": "0.25", "memory": "32m"}}))
    assert job["status"] == "succeeded", job
    instances = api.get(f"/api/deployments/{name}").json()["instances"]
    assert len(instances) == 2
    for inst in instances:
        assert inst["resources"]["cpus"] == 0.25, inst
        assert inst["resources"]["memory"] == 32 * 1024 * 1024, inst
    after = api.get("/api/containers/usage/summary").json()
    assert round(after["reserved_cpus"] - before["reserved_cpus"], 3) == 0.5, (before, after)
    assert after["reserved_memory_bytes"] - before["reserved_memory_bytes"] == 64 * 1024 * 1024
    delete_deployment(api, platform, name)


# --- a JSON body without Content-Type ---------------------------------------------------------

def test_a_json_body_without_content_type_is_understood_or_explained(api, platform):
    name = unique("noct")
    r = api.post("/api/containers", data=json.dumps({"image": HTTPD, "name": name}),
                 params={"wait": 60})
    assert r.status_code in (200, 202), r.text
    assert ended(api, r)["status"] == "succeeded"
    ended(api, api.delete(f"/api/containers/{name}", params={"force": "true"}))
    garbled = api.post("/api/containers", data="image=busybox")
    assert garbled.status_code in (400, 415), garbled.text
    assert "Content-Type: application/json" in garbled.json()["detail"]
