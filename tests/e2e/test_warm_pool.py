"""The warm pool end to end (issue 18, point 1), through the real processes and Docker: a
deployment's ``warm_pool: N`` keeps N members created, ready once and paused (role warm);
they are not in discovery or the replicas' counts; a scale-up takes them (unpaused, one health
check passed, then in discovery) and the pool is refilled after; a paused member is never
probed nor replaced for failing probes; a woken member whose check fails never enters
discovery; a scale-down pauses replicas back into the pool; ``replicas: 0`` with a pool
wakes. Each deployment is deleted at the end (the session's leftovers check follows)."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"
CHECK = {"type": "http", "path": "/health", "port": 80, "interval": 1, "timeout": 1,
         "healthy_threshold": 1, "unhealthy_threshold": 1}
# passes during the container's first 15 s of wall-clock time, then fails for ever: a
# paused member probed after that would turn unhealthy
BORN = ["sh", "-c", "date +%s > /tmp/born; exec httpd -f -p 80 -h /www"]
YOUNG = {"type": "command", "interval": 1, "timeout": 2, "healthy_threshold": 1,
         "unhealthy_threshold": 1,
         "command": ["sh", "-c", "test $(( $(date +%s) - $(cat /tmp/born) )) -lt 15"]}
YOUTH = 15


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def deploy(api, name: str, replicas: int, pool: int, check=CHECK, command=None) -> None:
    body = {"name": name, "image": HTTPD, "replicas": replicas, "warm_pool": pool,
            "ports": {"80/tcp": None}, "health_check": check,
            "update": {"monitor": 0.5, "drain_delay": 0},
            "restart": {"backoff_initial": 1, "backoff_max": 2},
            "service": {"name": name, "port": 80}}
    if command:
        body["command"] = command
    r = api.post("/api/deployments", params={"wait": 90}, json=body)
    assert r.status_code in (200, 202) and r.json()["status"] == "succeeded", r.text


def get(api, name: str) -> dict:
    r = api.get(f"/api/deployments/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def members(api, name: str, state: str = "paused") -> dict:
    """The pool's members in ``state``: name -> instance."""
    return {i["name"]: i for i in get(api, name)["instances"]
            if i["role"] == "warm" and i["state"] == state}


def full_pool(api, name: str, size: int) -> dict | None:
    dep = get(api, name)
    found = members(api, name)
    return found if len(found) == size and dep["status"]["warm"] == size else None


def endpoints(api, service: str) -> set:
    r = api.get(f"/api/services/{service}/endpoints")
    assert r.status_code == 200, r.text
    return {e["instance"] for e in r.json()["endpoints"]}


def events(api, name: str, kind: str) -> list:
    return api.get("/api/events", params={"deployment": name, "kind": kind,
                                          "limit": 1000}).json()["items"]


def scale(api, name: str, replicas: int, expect: str = "succeeded") -> dict:
    return api.job(api.post(f"/api/deployments/{name}/scale", params={"wait": 60},
                            json={"replicas": replicas}), wait=120, expect=expect)


def delete(api, name: str) -> None:
    api.job(api.delete(f"/api/deployments/{name}", params={"wait": 60}), wait=120)


class Watcher(threading.Thread):
    """Every endpoint set a service shows, through the blocking query (no change missed
    between two answers: each waits for the index to move past the last one)."""

    def __init__(self, api, service: str):
        super().__init__(daemon=True)
        self.api, self.service = api, service
        self.seen: set = set()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            index = 0
            while not self.stop.is_set():
                r = self.api.get(f"/api/services/{self.service}/endpoints",
                                 params={"index": index, "wait": "2s"})
                assert r.status_code == 200, r.text
                body = r.json()
                index = body["index"]
                self.seen |= {e["instance"] for e in body["endpoints"]}
        except BaseException as exc:   # a watcher that dies fails its test
            self.error = exc

    def finish(self) -> set:
        self.stop.set()
        self.join(30)
        assert not self.is_alive(), "the endpoint watcher did not stop"
        assert self.error is None, f"the endpoint watcher died: {self.error!r}"
        return self.seen


def test_scale_to_zero_with_a_pool_wakes_the_members_and_refills_the_pool(api, platform):
    name = unique("warm")
    deploy(api, name, replicas=0, pool=3)
    pool = wait_until(lambda: full_pool(api, name, 3), 120, "3 members paused")
    for member in pool.values():
        assert platform.inspect(member["name"])["State"]["Paused"] is True
    dep = get(api, name)
    assert dep["warm_pool"] == 3 and dep["replicas"] == 0
    # members are no replicas: not running, ready or in discovery
    assert dep["status"]["running"] == 0 and dep["status"]["ready"] == 0
    assert endpoints(api, name) == set()
    assert all(e["instance"] not in pool for e in api.get("/api/services").json()["items"])
    ids = {m["name"]: m["id"] for m in pool.values()}
    watcher = Watcher(api, name)
    watcher.start()
    scale(api, name, 2)
    woken = {f"{name}-0.1", f"{name}-1.1"}
    wait_until(lambda: endpoints(api, name) == woken, 30, "the woken members in discovery")
    assert watcher.finish() <= woken
    dep = get(api, name)
    active = {i["name"]: i for i in dep["instances"] if i["role"] == "active"}
    assert set(active) == woken
    for inst in active.values():   # the same containers, unpaused: nothing was created
        assert inst["id"] == ids[inst["name"]] and inst["health"] == "healthy"
        assert platform.inspect(inst["name"])["State"]["Paused"] is False
    taken = {e["container"]: e["detail"] for e in events(api, name, "warm_woken")}
    assert set(taken) == woken and all(d["unpause_ms"] >= 0 for d in taken.values())
    assert [e for e in events(api, name, "instance_created")
            if e["detail"].get("role") == "active"] == []
    # the pool is refilled in the background: slot 2's member stays, slots 3 and 4 are new
    refilled = wait_until(lambda: full_pool(api, name, 3), 120, "the pool refilled")
    assert set(refilled) == {f"{name}-2.1", f"{name}-3.1", f"{name}-4.1"}
    assert refilled[f"{name}-2.1"]["id"] == ids[f"{name}-2.1"]
    assert endpoints(api, name) == woken
    assert get(api, name)["status"]["running"] == 2
    delete(api, name)
    assert not platform.containers(**{"harbormaster.deployment": name})


def test_a_paused_member_is_never_probed_nor_replaced(api, platform):
    """Its check fails YOUTH seconds after it started: the replica's, probed, turns
    unhealthy and is replaced; the paused member, never probed, stays as it was."""
    name = unique("frozen")
    deploy(api, name, replicas=1, pool=1, check=YOUNG, command=BORN)
    pool = wait_until(lambda: full_pool(api, name, 1), 120, "the member paused")
    (member,) = pool.values()
    started = platform.inspect(member["name"])["State"]["StartedAt"]
    wait_until(lambda: [e for e in events(api, name, "health_status")
                        if e["container"] == f"{name}-0.1"
                        and e["detail"]["health"] == "unhealthy"], 90,
               "the replica's check failing (the probes run)")
    born = time.time() - YOUTH   # the member started earlier than this, so its check fails
    wait_until(lambda: time.time() > born + YOUTH + 5 * YOUNG["interval"], 30,
               "five probe intervals past the member's youth")
    after = platform.inspect(member["name"])
    assert after["Id"] == member["id"] and after["State"]["Paused"] is True
    assert after["State"]["StartedAt"] == started
    now = {i["name"]: i for i in get(api, name)["instances"]}[member["name"]]
    assert now["role"] == "warm" and now["state"] == "paused" and now["health"] == "healthy"
    probed = [e for e in events(api, name, "health_status") if e["container"] == member["name"]
              and e["detail"]["health"] != "healthy"]
    assert probed == []
    gone = [e for e in events(api, name, "instance_removed") + events(api, name, "backoff")
            if e["container"] == member["name"]]
    assert gone == []
    # not sampled as load (the replica beside it is, each second), billed as paused
    snapshots = "SELECT count(*) FROM health_snapshots WHERE docker_id = %s"
    assert platform.sql(snapshots, (member["id"],))[0][0] == 0
    replica = platform.inspect(f"{name}-0.1")["Id"]
    assert platform.sql(snapshots, (replica,))[0][0] > 0
    assert platform.sql("SELECT count(*) FROM usage_spans WHERE docker_id = %s AND kind ="
                        " 'pause' AND ended_at IS NULL", (member["id"],))[0][0] == 1
    wait_until(lambda: platform.sql("SELECT sum(paused_us) FROM usage_rows WHERE docker_id = %s",
                                    (member["id"],))[0][0], 60, "the rollup's paused time")
    delete(api, name)


def test_a_woken_member_enters_discovery_only_once_its_check_passes(api, platform):
    """A member woken after its check began failing stays out of discovery, and its slot is
    filled cold by an instance whose check passes."""
    name = unique("stale")
    deploy(api, name, replicas=0, pool=1, check=YOUNG, command=BORN)
    (member,) = wait_until(lambda: full_pool(api, name, 1), 120, "the member paused").values()
    born = time.time()
    wait_until(lambda: time.time() > born + YOUTH + 1, YOUTH + 30,
               "the member past the age its check passes at")
    watcher = Watcher(api, name)
    watcher.start()
    api.post(f"/api/deployments/{name}/scale", json={"replicas": 1})   # followed below
    cold = wait_until(lambda: endpoints(api, name) - {member["name"]}, 120,
                      "the slot filled cold and in discovery")
    assert member["name"] not in watcher.finish()
    assert cold != {member["name"]} and len(cold) == 1
    assert [e for e in events(api, name, "warm_woken")] == []
    failed = [e for e in events(api, name, "warm_wake_failed")]
    assert [e["container"] for e in failed] == [member["name"]], failed
    assert "failed its health check" in failed[0]["detail"]["reason"]
    wait_until(lambda: not platform.containers(**{"harbormaster.name": member["name"]}), 60,
               "the member that failed its check removed")
    delete(api, name)


def test_a_scale_down_pauses_replicas_back_into_the_pool(api, platform):
    name = unique("shrink")
    deploy(api, name, replicas=3, pool=1)
    wait_until(lambda: full_pool(api, name, 1), 120, "the pool filled")
    wait_until(lambda: len(endpoints(api, name)) == 3, 30, "3 replicas in discovery")
    before = {i["name"]: i["id"] for i in get(api, name)["instances"] if i["role"] == "active"}
    scale(api, name, 1)
    # slot 1's replica is the pool now (paused, the same container); slot 2's is removed and
    # so is the member beyond the pool (slot 3)
    pool = wait_until(lambda: full_pool(api, name, 1), 60, "slot 1 paused into the pool")
    assert set(pool) == {f"{name}-1.1"} and pool[f"{name}-1.1"]["id"] == before[f"{name}-1.1"]
    assert platform.inspect(f"{name}-1.1")["State"]["Paused"] is True
    assert endpoints(api, name) == {f"{name}-0.1"}
    wait_until(lambda: not platform.containers(**{"harbormaster.name": f"{name}-2.1"}), 60,
               "slot 2 removed")
    wait_until(lambda: not platform.containers(**{"harbormaster.name": f"{name}-3.1"}), 60,
               "the member beyond the pool removed")
    assert get(api, name)["status"]["running"] == 1
    assert [e["container"] for e in events(api, name, "warm_returned")] == [f"{name}-1.1"]
    # and back up: the same container serves again
    scale(api, name, 2)
    wait_until(lambda: endpoints(api, name) == {f"{name}-0.1", f"{name}-1.1"}, 30,
               "slot 1 woken")
    assert platform.inspect(f"{name}-1.1")["Id"] == before[f"{name}-1.1"]
    delete(api, name)


def test_the_pool_size_is_a_validated_setting_that_never_rolls_out(api, platform):
    name = unique("setting")
    r = api.post("/api/deployments", json={"name": name, "image": HTTPD, "replicas": 1,
                                           "max_replicas": 2, "warm_pool": 3})
    assert r.status_code == 422 and "warm_pool" in r.text, r.text
    r = api.post("/api/deployments", json={"name": name, "image": HTTPD, "warm_pool": -1})
    assert r.status_code == 422 and "warm_pool" in r.text, r.text
    deploy(api, name, replicas=1, pool=0)
    generation = get(api, name)["generation"]
    api.job(api.patch(f"/api/deployments/{name}", params={"wait": 60}, json={"warm_pool": 2}),
            wait=120)
    dep = get(api, name)
    assert dep["warm_pool"] == 2 and dep["generation"] == generation
    wait_until(lambda: full_pool(api, name, 2), 120, "the pool filled after the PATCH")
    r = api.patch(f"/api/deployments/{name}", json={"max_replicas": 1})
    assert r.status_code == 422 and "warm_pool" in r.text, r.text
    api.job(api.patch(f"/api/deployments/{name}", params={"wait": 60}, json={"warm_pool": 0}),
            wait=120)
    wait_until(lambda: not [i for i in get(api, name)["instances"] if i["role"] == "warm"], 60,
               "the pool emptied")
    delete(api, name)


def test_members_hold_their_memory_on_their_node(api, platform):
    """Placement counts a paused member's memory as a replica's: the reserved memory falls by
    exactly the members' limits when the pool is emptied."""
    name = unique("held")
    r = api.post("/api/deployments", params={"wait": 90}, json={
        "name": name, "image": HTTPD, "replicas": 0, "warm_pool": 2,
        "resources": {"memory": "64m"}, "update": {"monitor": 0.5}})
    assert r.status_code in (200, 202) and r.json()["status"] == "succeeded", r.text
    wait_until(lambda: full_pool(api, name, 2), 120, "2 members paused")

    def reserved() -> int:
        return api.get("/api/system/resources").json()["reserved_memory"]
    held = reserved()
    api.job(api.patch(f"/api/deployments/{name}", params={"wait": 60}, json={"warm_pool": 0}),
            wait=120)
    wait_until(lambda: not platform.containers(**{"harbormaster.deployment": name}), 60,
               "the members removed")
    wait_until(lambda: held - reserved() == 2 * 64 * 2 ** 20, 30,
               "the members' memory no longer reserved")
    delete(api, name)


def test_a_member_that_dies_is_replaced_with_the_backoff(api, platform):
    name = unique("dies")
    deploy(api, name, replicas=0, pool=1)
    (member,) = wait_until(lambda: full_pool(api, name, 1), 120, "the member paused").values()
    engine = platform.engines[platform.inspect(member["name"])["node"]]
    engine.api.kill(member["id"])   # from outside, while paused
    wait_until(lambda: [e for e in events(api, name, "backoff")
                        if e["container"] == member["name"]], 60, "its failure counted")
    (again,) = wait_until(lambda: full_pool(api, name, 1), 120, "a new member paused").values()
    assert again["name"] == f"{name}-0.2" and again["id"] != member["id"]
    delete(api, name)
