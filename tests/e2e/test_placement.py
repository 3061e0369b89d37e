"""Placement across two Docker engines (local and n2), read from both engines: spread,
binpack, constraints, pending slots, global mode, drain, rebalance, and a scale that
survives n2's worker being killed while it places instances there."""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"
FAST = {"monitor": 0.5, "max_surge": 1, "max_unavailable": 0}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def per_node(platform, deployment: str, running_only: bool = True) -> dict[str, int]:
    """node -> instances of the deployment in that node's engine (the truth)."""
    out = {}
    for node, client in platform.engines.items():
        listed = client.api.containers(all=not running_only, filters={"label": [
            f"harbormaster.cluster={platform.cluster_id}",
            f"harbormaster.deployment={deployment}"]})
        out[node] = len(listed)
    return out


def deploy(api, name: str, replicas: int, **extra) -> dict:
    r = api.post("/api/deployments", params={"wait": 90}, json={
        "name": name, "image": HTTPD, "replicas": replicas, "update": extra.pop("update", FAST),
        **extra})
    assert r.status_code in (200, 202), r.text
    return r.json()


def remove(api, platform, name: str) -> None:
    api.delete(f"/api/deployments/{name}", params={"wait": 60})
    wait_until(lambda: sum(per_node(platform, name, running_only=False).values()) == 0, 60,
               f"{name} gone from both engines")


def test_spread_is_even_and_counts_every_deployment(api, platform):
    first, other = unique("spread"), unique("others")
    assert deploy(api, first, 4)["status"] == "succeeded"
    assert per_node(platform, first) == {"local": 2, "n2": 2}
    remove(api, platform, first)
    # three instances of another deployment on local: Swarm's rule puts two of three on n2
    assert deploy(api, other, 3, placement={"constraints": ["node.name==local"]})[
        "status"] == "succeeded"
    assert per_node(platform, other) == {"local": 3, "n2": 0}
    assert deploy(api, first, 3)["status"] == "succeeded"
    assert per_node(platform, first) == {"local": 1, "n2": 2}
    slots = api.get(f"/api/deployments/{first}").json()["slots"]
    assert all(s["node"] and s["reason"] for s in slots), slots
    assert any("of " + first in s["reason"] for s in slots), slots
    remove(api, platform, first)
    remove(api, platform, other)


def test_binpack_fills_a_node_before_the_next(api, platform):
    name = unique("binpack")
    # local holds exactly four 0.25-CPU instances (capacity through the API)
    api.patch("/api/nodes/local", json={"cpus": "1"}).raise_for_status()
    api.patch("/api/nodes/n2", json={"cpus": "1"}).raise_for_status()
    try:
        used_local = api.get("/api/nodes/local").json()["reserved"]["cpus"]
        used_n2 = api.get("/api/nodes/n2").json()["reserved"]["cpus"]
        room = {"local": int((1 - used_local) / 0.25), "n2": int((1 - used_n2) / 0.25)}
        # binpack's choice: the most allocated (the least room), then the name
        fuller = min(room, key=lambda n: (room[n], n))
        count = room[fuller] + 1
        job = deploy(api, name, count, resources={"cpus": "0.25"},
                     placement={"strategy": "binpack"})
        assert job["status"] == "succeeded", job
        placed = per_node(platform, name)
        print(f"[binpack] room {room}, {count} instances: {placed}")
        assert placed[fuller] == room[fuller] and sum(placed.values()) == count
    finally:
        remove(api, platform, name)
        for node in ("local", "n2"):
            api.patch(f"/api/nodes/{node}", json={"reset_capacity": True}).raise_for_status()


def test_a_constraint_places_on_n2_and_one_that_fits_nowhere_waits(api, platform):
    name, big = unique("zone"), unique("big")
    assert deploy(api, name, 3, placement={"constraints": ["node.labels.zone==b"]})[
        "status"] == "succeeded"
    assert per_node(platform, name) == {"local": 0, "n2": 3}
    # more memory than n2 has: pending with the reason per node, placed once it fits
    api.patch("/api/nodes/n2", json={"memory": "40m"}).raise_for_status()
    try:
        r = api.post("/api/deployments", params={"wait": 60}, json={
            "name": big, "image": HTTPD, "replicas": 1, "update": FAST,
            "resources": {"memory": "64m"}, "placement": {"constraints": ["node.name==n2"]}})
        job = r.json()
        assert job["status"] == "failed" and "insufficient memory on n2" in job["error"], job
        dep = api.get(f"/api/deployments/{big}").json()
        assert dep["status"]["state"] == "pending", dep["status"]
        assert "local" in dep["status"]["reason"] and "node.name==n2" in dep["status"]["reason"]
        pending = [e for e in api.get("/api/events", params={"deployment": big,
                                                             "kind": "pending"}).json()["items"]]
        assert pending and "insufficient memory on n2" in pending[0]["detail"]["reason"]
        api.patch("/api/nodes/n2", json={"memory": "8g"}).raise_for_status()
        wait_until(lambda: per_node(platform, big)["n2"] == 1, 60, "placed once n2 fits")
    finally:
        api.patch("/api/nodes/n2", json={"reset_capacity": True}).raise_for_status()
        remove(api, platform, name)
        remove(api, platform, big)


def volume_on(platform, node: str, volume: str) -> bool:
    return any(v.name == volume for v in platform.engines[node].volumes.list())


def test_a_deployment_with_a_named_volume_stays_where_the_volume_is(api, platform):
    name, free = unique("vol"), unique("volfree")
    volume = f"{platform.cluster_id[:8]}-{name}"
    mounts = [{"type": "volume", "source": volume, "target": "/data"}]
    try:
        # its first life on n2 creates the volume there (only there)
        assert deploy(api, name, 1, mounts=mounts,
                      placement={"constraints": ["node.name==n2"]})["status"] == "succeeded"
        assert volume_on(platform, "n2", volume) and not volume_on(platform, "local", volume)
        remove(api, platform, name)
        wait_until(lambda: volume in api.get("/api/nodes/n2").json()["volumes"], 30,
                   "n2's agent reports the volume")
        # created again by the same name, without a constraint: both instances where the
        # data is (spread alone puts one on each node)
        assert deploy(api, name, 2, mounts=mounts)["status"] == "succeeded"
        assert per_node(platform, name) == {"local": 0, "n2": 2}
        reasons = [s["reason"] for s in api.get(f"/api/deployments/{name}").json()["slots"]]
        assert all(r and r.startswith("n2:") for r in reasons), reasons
        assert not volume_on(platform, "local", volume)
        r = api.post(f"/api/deployments/{name}/rebalance")
        assert r.status_code == 409 and "follow_volumes" in r.json()["detail"], r.text
        # one that says otherwise spreads, each node with a volume of its own
        assert deploy(api, free, 2, mounts=mounts, placement={"follow_volumes": False})[
            "status"] == "succeeded"
        assert per_node(platform, free) == {"local": 1, "n2": 1}
        assert volume_on(platform, "local", volume)
    finally:
        remove(api, platform, name)
        remove(api, platform, free)
        for client in platform.engines.values():
            for found in client.volumes.list(filters={"name": volume}):
                found.remove(force=True)


def test_bad_constraints_are_refused(api):
    for bad in ("node.zone==b", "node.labels.zone=b", "node.labels.==b", "node.name~=x",
                "node.labels.zone==", "engine.labels.a==b"):
        r = api.post("/api/deployments", json={"name": unique("bad"), "image": HTTPD,
                                               "placement": {"constraints": [bad]}})
        assert r.status_code == 422, (bad, r.text)
        assert "constraints" in r.text
    # a container for a node that does not exist: the request's fault, not Docker's
    r = api.post("/api/containers", json={"image": HTTPD, "name": unique("bad"), "node": "n9"})
    assert r.status_code == 422 and r.json()["fields"] == {"node": "no node named 'n9'"}


def test_global_runs_one_per_node_and_follows_a_node_joining(api, platform):
    name = unique("global")
    api.post("/api/nodes/n2/pause").raise_for_status()  # n2 takes nothing new: not joined
    try:
        job = deploy(api, name, 1, mode="global")
        assert job["status"] == "succeeded", job
        assert per_node(platform, name) == {"local": 1, "n2": 0}
    finally:
        api.post("/api/nodes/n2/activate").raise_for_status()
    wait_until(lambda: per_node(platform, name) == {"local": 1, "n2": 1}, 60,
               "the global deployment follows n2 joining")
    assert api.get(f"/api/deployments/{name}").json()["replicas"] == 2
    remove(api, platform, name)


def test_drain_moves_everything_off_start_first_and_rebalance_spreads_again(api, platform):
    name = unique("drain")
    assert deploy(api, name, 4, update={"monitor": 0.5, "max_surge": 1,
                                        "max_unavailable": 0})["status"] == "succeeded"
    assert per_node(platform, name) == {"local": 2, "n2": 2}
    low, failed, stop = [], [], threading.Event()

    def sample():
        try:
            while not stop.is_set():
                low.append(api.get(f"/api/deployments/{name}").json()["status"]["ready"])
                time.sleep(0.1)
        except Exception as exc:  # noqa: BLE001 - a dead sampler must fail the test
            failed.append(exc)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = api.post("/api/nodes/local/drain", params={"wait": 60})
        job = api.job(r, wait=120)
        assert job["result"]["drained"] is True, job
    finally:
        stop.set()
        sampler.join(10)
        assert not sampler.is_alive()
    assert not failed, f"the sampler died: {failed[0]!r}"
    print(f"[drain] ready sampled {len(low)} times, lowest {min(low)}")
    assert min(low) >= 4  # max_unavailable 0: never below the replicas while draining
    assert per_node(platform, name) == {"local": 0, "n2": 4}
    exited = platform.engines["local"].api.containers(all=True, filters={"label": [
        f"harbormaster.deployment={name}"]})
    assert not [c for c in exited if c["State"] == "running"]
    api.post("/api/nodes/local/activate").raise_for_status()
    api.job(api.post(f"/api/deployments/{name}/rebalance", params={"wait": 60}), wait=120)
    assert per_node(platform, name) == {"local": 2, "n2": 2}
    remove(api, platform, name)


def test_a_drain_past_its_deadline_stops_what_could_not_move_and_ends_when_it_exited(
        api, platform):
    name = unique("stuck")
    # bound to n2: draining n2 leaves its slot nowhere to go, so its instance stays
    assert deploy(api, name, 1, placement={"constraints": ["node.name==n2"]})[
        "status"] == "succeeded"
    instance = api.get(f"/api/deployments/{name}").json()["instances"][0]["name"]
    try:
        job = api.job(api.post("/api/nodes/n2/drain", params={"deadline": 2, "wait": 60}),
                      wait=120)
        assert job["status"] == "succeeded", job
        # other tests' instances on n2 may not have moved within 2 s either: ours is there
        assert instance in job["result"]["stopped_past_deadline"], job
        # the job ended once the instance had exited: nothing of it runs on n2 any more
        assert per_node(platform, name) == {"local": 0, "n2": 0}
        dep = api.get(f"/api/deployments/{name}").json()
        assert dep["status"]["state"] == "pending" and "drained: n2" in dep["status"]["reason"]
        n2 = api.get("/api/nodes/n2").json()
        assert n2["availability"] == "drain" and instance not in [
            c["name"] for c in n2["containers"] if c["state"] == "running"]
        api.post("/api/nodes/n2/activate").raise_for_status()
        # active again: the slot is placed back on n2
        wait_until(lambda: per_node(platform, name)["n2"] == 1, 60, f"{name} back on n2")
    finally:
        api.post("/api/nodes/n2/activate").raise_for_status()
        remove(api, platform, name)


@pytest.mark.disruptive
def test_n2_worker_killed_while_a_scale_places_there_ends_exact(api, platform):
    name = unique("n2kill")
    assert deploy(api, name, 1)["status"] == "succeeded"
    platform.expect_restart("executor")
    platform.expect_log("executor", r"SIGKILL|Failed to process message|node_actions")
    r = api.post(f"/api/deployments/{name}/scale", json={"replicas": 10})
    job_id = r.json()["id"]
    # kill n2's worker once a node job of this scale is running there
    wait_until(lambda: [j for j in api.get("/api/jobs", params={
        "kind": "node_actions", "status": "running"}).json()["items"]
        if j["target"] == "nodes/n2"], 30, "a node job running on n2")
    os.killpg(platform.n2_pid("executor"), signal.SIGKILL)  # n2's Docker work
    job = api.job(api.get(f"/api/jobs/{job_id}"), wait=120)
    assert job["status"] == "succeeded", job
    counts = per_node(platform, name)
    assert sum(counts.values()) == 10, counts
    names = [c["Names"][0] for client in platform.engines.values()
             for c in client.api.containers(filters={"label": f"harbormaster.deployment={name}"})]
    slots = [n.rsplit("-", 1)[1].split(".")[0] for n in names]
    assert sorted(slots) == sorted(set(slots)), names  # one per slot: no duplicates
    remove(api, platform, name)
