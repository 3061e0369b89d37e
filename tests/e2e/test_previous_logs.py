"""Previous logs and bounded logs end to end (issue 16, points 3 and 4): an instance that
crashes (exit 3) is kept, stopped, for ``?previous=true`` on its slot's new instance, the
slot shows its last exit; a second crash keeps the new one and removes the first; a kept
container is no instance (the deployment's instances, the seed's lists, discovery); every
container's json-file log is bounded and rotates."""
from __future__ import annotations

import os
import uuid

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"
# runs until /tmp/crash exists, then says what it holds and exits 3
CRASHER = ["sh", "-c", "echo started; while [ ! -e /tmp/crash ]; do sleep 0.2; done;"
           " echo crashing $(cat /tmp/crash); exit 3"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def running_instance(api, name: str, incarnation: int) -> dict | None:
    got = api.get(f"/api/deployments/{name}").json()
    wanted = f"{name}-0.{incarnation}"
    return next((i for i in got["instances"] if i["name"] == wanted
                 and i["state"] == "running"), None)


def crash(api, instance: str, word: str) -> None:
    r = api.post(f"/api/containers/{instance}/exec",
                 json={"command": ["sh", "-c", f"echo {word} > /tmp/crash"]})
    assert r.status_code == 200, r.text


def previous(api, ref: str) -> str:
    r = api.get(f"/api/containers/{ref}/logs", params={"previous": "true", "wait": 30})
    assert r.status_code == 200, r.text
    return r.json()["logs"]


def test_a_crashed_instance_is_kept_for_previous_logs_until_the_next_crash(api, platform):
    name = unique("prev")
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": 1, "command": CRASHER,
        "restart": {"backoff_initial": 1, "backoff_max": 2},
        "update": {"monitor": 0.5}})
    assert r.json()["status"] == "succeeded", r.text
    assert api.get(f"/api/containers/{name}-0.1/logs", params={"previous": "true"}
                   ).status_code == 404   # no container of the slot died yet
    crash(api, f"{name}-0.1", "first")
    wait_until(lambda: running_instance(api, name, 2), 60, "the slot's next instance running")
    assert "crashing first" in previous(api, f"{name}-0.2")
    dep = api.get(f"/api/deployments/{name}").json()
    assert dep["slots"][0]["last_exit"]["container"] == f"{name}-0.1"
    assert dep["slots"][0]["last_exit"]["exit_code"] == 3
    assert dep["slots"][0]["last_exit"]["reason"] == "exited"
    # kept: stopped in Docker, role kept, and no instance anywhere
    kept = api.get(f"/api/containers/{name}-0.1").json()
    assert kept["role"] == "kept" and kept["state"] == "stopped", kept
    assert platform.inspect(f"{name}-0.1")["State"]["ExitCode"] == 3
    assert [i["name"] for i in dep["instances"]] == [f"{name}-0.2"]
    seed = api.get("/containers").json()["containers"]   # the seed's container list
    assert f"{name}-0.2" in [c["name"] for c in seed]
    assert f"{name}-0.1" not in [c["name"] for c in seed]
    summary = api.get("/api/summary").json()
    assert f"{name}-0.1" not in [i["name"] for i in summary["instances"]]
    # a second crash: the new one is kept, the first goes
    crash(api, f"{name}-0.2", "second")
    wait_until(lambda: running_instance(api, name, 3), 60, "the slot's third instance running")
    assert "crashing second" in previous(api, f"{name}-0.3")
    wait_until(lambda: not platform.containers(**{"harbormaster.name": f"{name}-0.1"}), 30,
               "the first kept container removed from Docker")
    dep = api.get(f"/api/deployments/{name}").json()
    assert dep["slots"][0]["last_exit"]["container"] == f"{name}-0.2"
    kinds = [e["kind"] for e in api.get("/api/events", params={"deployment": name,
                                                                 "limit": 1000}).json()["items"]]
    assert kinds.count("instance_kept") == 2 and "kept_removed" in kinds
    api.delete(f"/api/deployments/{name}", params={"wait": 60})
    wait_until(lambda: not platform.containers(**{"harbormaster.deployment": name}), 60,
               "the deployment's containers, kept ones too, removed with it")


def test_container_logs_are_bounded_and_rotate(api, platform):
    name = unique("chatty")
    line = "x" * 200
    api.job(api.post("/api/containers", json={
        "image": HTTPD, "name": name, "node": "local",
        "resources": {"cpus": 0.5},
        "command": ["sh", "-c", f"while :; do echo {line}; done"]}))
    info = platform.inspect(name)
    assert info["HostConfig"]["LogConfig"] == {
        "Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    path = info["LogPath"]
    wait_until(lambda: os.path.exists(path + ".1"), 120, "the log rotated once")
    wait_until(lambda: os.path.getsize(path) > 512 * 1024, 120, "the new log half full")
    sizes = {p: os.path.getsize(p) for p in (path, path + ".1") if os.path.exists(p)}
    print(f"log files: {sizes}")
    assert not os.path.exists(path + ".2")
    assert all(size <= 1024 * 1024 + 4096 for size in sizes.values()), sizes
    api.delete(f"/api/containers/{name}", params={"force": "true", "wait": 30})
