"""End to end through HTTP, the real processes and Docker: a container's whole life (on the
node "local", whose engine the tests read directly)."""
from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_create_reach_logs_exec_stats_stop_remove(api, platform):
    name = unique("life")
    r = api.post("/api/containers", json={
        "node": "local",
        "image": HTTPD, "name": name,
        "command": ["sh", "-c", "echo hello-from-logs; exec httpd -f -p 80 -h /www"],
        "env": {"MODE": "demo"}, "ports": {"80/tcp": None},
        "resources": {"cpus": "0.5", "memory": "64m", "pids_limit": 64},
        "labels": {"team": "web"}})
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"/api/jobs/{r.json()['id']}"
    job = api.job(r)
    assert job["status"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"]
    cid, port = job["result"]["container_id"], job["result"]["ports"]["80/tcp"]

    # in Docker: running, our labels, limits, hardened
    docker_c = platform.docker.containers.get(cid)
    assert docker_c.status == "running"
    assert docker_c.labels["harbormaster.cluster"] == platform.cluster_id
    assert docker_c.labels["harbormaster.kind"] == "standalone"
    assert docker_c.labels["managed-by"] == HTTPD
    host = docker_c.attrs["HostConfig"]
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 64 * 1024 * 1024
    assert host["CapDrop"] == ["ALL"] and "NET_BIND_SERVICE" in host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"] and not host["Privileged"]
    assert host["PortBindings"]["80/tcp"][0]["HostIp"] == "127.0.0.1"

    # through the API
    got = api.get(f"/api/containers/{name}").json()
    assert got["id"] == cid and got["state"] == "running" and got["ports"]["80/tcp"] == port
    assert api.get(f"/api/containers/{cid[:12]}").json()["name"] == name
    listed = api.get("/api/containers", params={"label": "team=web", "state": "running"}).json()
    assert name in [c["name"] for c in listed["items"]]

    # reachable on its published loopback port
    reply = wait_until(lambda: _get(f"http://127.0.0.1:{port}/health"), 20, "httpd answers")
    assert reply.status_code == 200 and reply.text.strip() == "ok"

    logs = api.get(f"/api/containers/{name}/logs", params={"tail": 50})
    assert logs.status_code == 200, logs.text
    assert "hello-from-logs" in logs.json()["logs"]

    ex = api.post(f"/api/containers/{name}/exec", json={"command": ["sh", "-c", "echo $MODE; exit 3"]})
    assert ex.status_code == 200, ex.text
    assert ex.json()["exit_code"] == 3 and ex.json()["output"].strip() == "demo"

    stats = api.get(f"/api/containers/{name}/stats")
    assert stats.status_code == 200, stats.text
    assert stats.json()["memory_limit_bytes"] == 64 * 1024 * 1024
    assert stats.json()["pids"] >= 1

    stop = api.job(api.post(f"/api/containers/{name}/stop", params={"timeout": 5}))
    assert stop["status"] == "succeeded", stop
    docker_c.reload()
    assert docker_c.status == "exited"
    assert api.get(f"/api/containers/{name}").json()["state"] == "stopped"

    removed = api.job(api.delete(f"/api/containers/{name}"))
    assert removed["status"] == "succeeded", removed
    assert not platform.docker.api.containers(all=True, filters={"id": cid})
    assert api.get(f"/api/containers/{name}").status_code == 404

    kinds = [e["kind"] for e in api.get("/api/events", params={"container": name}).json()["items"]]
    for kind in ("create", "start", "exec", "stop", "remove"):
        assert kind in kinds, kinds


def _get(url):
    try:
        return requests.get(url, timeout=2)
    except requests.RequestException:
        return None


def test_pause_unpause_restart_kill_and_live_resources(api, platform):
    name = unique("verbs")
    job = api.job(api.post("/api/containers", json={"image": HTTPD, "name": name, "node": "local",
                                                     "resources": {"memory": "32m"}}))
    assert job["status"] == "succeeded", job
    c = platform.docker.containers.get(job["result"]["container_id"])

    assert api.job(api.post(f"/api/containers/{name}/pause"))["status"] == "succeeded"
    c.reload()
    assert c.status == "paused" and api.get(f"/api/containers/{name}").json()["state"] == "paused"
    assert api.job(api.post(f"/api/containers/{name}/unpause"))["status"] == "succeeded"
    c.reload()
    assert c.status == "running"

    started = c.attrs["State"]["StartedAt"]
    assert api.job(api.put(f"/api/containers/{name}/restart"))["status"] == "succeeded"
    c.reload()
    assert c.status == "running" and c.attrs["State"]["StartedAt"] != started

    patched = api.job(api.patch(f"/api/containers/{name}/resources",
                                json={"memory": "48m", "cpus": 0.25}))
    assert patched["status"] == "succeeded", patched
    c.reload()
    assert c.attrs["HostConfig"]["Memory"] == 48 * 1024 * 1024
    assert api.get(f"/api/containers/{name}").json()["resources"]["memory"] == 48 * 1024 * 1024

    killed = api.job(api.post(f"/api/containers/{name}/kill", json={"signal": "SIGKILL"}))
    assert killed["status"] == "succeeded", killed
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
    state = wait_until(lambda: api.get(f"/api/containers/{name}").json()["exit_code"] == 137,
                       10, "exit code recorded")
    assert state

    # a running container needs force; force in the query
    assert api.job(api.put(f"/api/containers/{name}/start"))["status"] == "succeeded"
    refused = api.job(api.delete(f"/api/containers/{name}"), expect="failed")
    assert "running" in refused["error"]
    assert api.job(api.delete(f"/api/containers/{name}", params={"force": "true"}))["status"] \
        == "succeeded"
    assert not platform.containers(**{"harbormaster.name": name})


def test_events_record_outside_changes(api, platform):
    name = unique("outside")
    job = api.job(api.post("/api/containers", json={"image": HTTPD, "name": name,
                                                    "node": "local"}))
    cid = job["result"]["container_id"]
    platform.docker.containers.get(cid).kill()
    wait_until(lambda: api.get(f"/api/containers/{name}").json()["state"] == "stopped", 15,
               "agent saw the outside kill")
    # the agent records the state, then the event: wait for the event too
    die = wait_until(lambda: api.get("/api/events", params={
        "container": name, "kind": "die"}).json()["items"], 15, "the die event recorded")
    assert die[-1]["detail"]["exit_code"] == 137
    platform.docker.containers.get(cid).remove(force=True)
    wait_until(lambda: api.get(f"/api/containers/{name}").status_code == 404, 15,
               "agent saw the outside removal")
    kinds = [e["kind"] for e in api.get("/api/events", params={"container": name}).json()["items"]]
    assert "destroy" in kinds


def test_missing_image_fails_fast_with_a_clear_error(api):
    r = api.post("/api/containers", json={"node": "local",
                                          "image": "127.0.0.1:9/nope/missing:v9",
                                          "name": unique("missing")}, params={"wait": 60})
    job = r.json()
    assert job["status"] == "failed", job
    assert "pull 127.0.0.1:9/nope/missing:v9: " in job["error"], job["error"]
    assert job["attempts"] == 1  # permanent: not retried
