"""Outages and crashes: Redis down (outbox), a worker killed mid-job, Docker cut off,
every platform process restarted. These run last."""
from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.disruptive]
HTTPD = "harbormaster/busybox-httpd"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_outbox_sends_the_job_once_redis_is_back(api, platform):
    # the worker's consumers log each failed reconnection at CRITICAL while Redis is away
    for program in ("worker", "executor"):
        platform.expect_log(program, r"Consumer encountered a connection error")
    platform.stop_redis()
    try:
        name = unique("outbox")
        r = api.post("/api/containers", json={"image": HTTPD, "name": name})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        time.sleep(2)  # a few relay passes while Redis is down: the job must stay queued
        assert api.get(f"/api/jobs/{job_id}").json()["status"] == "queued"
        # the rate limiter lost its Redis too: it falls back to memory, requests still pass
        assert api.get("/api/containers").status_code == 200
    finally:
        platform.start_redis()
    job = api.get(f"/api/jobs/{job_id}", params={"wait": 60}).json()
    assert job["status"] == "succeeded", job
    assert len(platform.containers(**{"harbormaster.name": name})) == 1


def test_worker_killed_during_create_job_ends_with_exactly_one_container(api, platform):
    name = unique("killed")
    # only this container's create call (other deployments may be creating meanwhile)
    platform.proxy.hold(f"/containers/create?name={name}".encode())
    try:
        r = api.post("/api/containers", json={"image": HTTPD, "name": name, "node": "local"})
        job_id = r.json()["id"]
        wait_until(platform.proxy.held.is_set, 30, "the executor's create call reached Docker")
        assert api.get(f"/api/jobs/{job_id}").json()["status"] == "running"
        # the node's Docker work runs in its executor: the whole group, dramatiq and children
        executor_pid = platform.program_pid("executor")
        platform.expect_restart("executor")
        os.killpg(executor_pid, signal.SIGKILL)
    finally:
        platform.proxy.release()
    wait_until(lambda: platform.program_pid("executor") not in (0, executor_pid), 30,
               "supervisord restarted the executor")
    job = api.get(f"/api/jobs/{job_id}", params={"wait": 60}).json()
    assert job["status"] == "succeeded", job
    assert job["attempts"] >= 2
    assert len(platform.containers(**{"harbormaster.name": name})) == 1
    assert platform.containers(**{"harbormaster.name": name})[0].status == "running"


def test_docker_cut_off_answers_503_naming_docker_and_recovers(api, platform):
    name = unique("cut")
    api.job(api.post("/api/containers", json={"image": HTTPD, "name": name, "node": "local"}))
    # actors fail on the cut engine (and are retried): the executor logs each failure
    platform.expect_log("executor", r"\[ERROR\] Failed to process message [\s\S]*"
                                    r"docker engine unreachable")
    platform.proxy.cut()
    try:
        # local's engine is cut (n2's still answers): work for local answers 503
        (r,) = wait_until(lambda: _503(api.post("/api/containers", json={
            "image": HTTPD, "node": "local"})), 20, "requests needing local's Docker answer 503")
        assert "docker" in r.json()["detail"].lower()
        assert r.json()["error"] == "dependency_unavailable"
        assert api.get(f"/api/containers/{name}/logs").status_code == 503
        # reads from Postgres keep working
        assert api.get(f"/api/containers/{name}").status_code == 200
        assert api.get("/api/containers").status_code == 200
        assert api.get("/api/events").status_code == 200
    finally:
        platform.proxy.restore()
    wait_until(lambda: api.post("/api/containers", json={
        "image": HTTPD, "name": unique("back"), "node": "local"}, params={"wait": 30})
        .status_code == 200, 60, "Docker work accepted again")
    logs = api.get(f"/api/containers/{name}/logs")
    assert logs.status_code == 200


def _503(response):
    # a tuple: a Response with an error status is falsy
    return (response,) if response.status_code == 503 else None


def test_restarting_every_platform_process_leaves_the_containers_untouched(api, platform):
    names = [unique("keep") for _ in range(2)]
    for name in names:
        assert api.job(api.post("/api/containers", json={"image": HTTPD, "name": name}))[
            "status"] == "succeeded"
    before = {n: platform.containers(**{"harbormaster.name": n})[0] for n in names}
    snapshot = {n: (c.id, c.attrs["State"]["StartedAt"], c.attrs["RestartCount"])
                for n, c in before.items()}
    platform.stop_processes()
    for name, container in before.items():
        container.reload()
        assert container.status == "running", name
    platform.start_processes()
    for name in names:
        container = platform.containers(**{"harbormaster.name": name})[0]
        assert (container.id, container.attrs["State"]["StartedAt"],
                container.attrs["RestartCount"]) == snapshot[name]
        got = api.get(f"/api/containers/{name}").json()
        assert got["id"] == snapshot[name][0] and got["state"] == "running"


def test_worker_killed_during_a_scale_to_10_still_ends_with_10(api, platform):
    name = unique("kscale")
    r = api.post("/api/deployments", json={"name": name, "image": HTTPD, "replicas": 1,
                                           "update": {"monitor": 0.5},
                                           "placement": {"constraints": ["node.name==local"]}},
                 params={"wait": 60})
    assert r.json()["status"] == "succeeded", r.text
    # hold slot 5's create call in the socket proxy: the scale is surely still running when
    # the worker dies (a 10-container scale can finish in two seconds)
    platform.proxy.hold(f"/containers/create?name={name}-5.1".encode())
    try:
        r = api.post(f"/api/deployments/{name}/scale", json={"replicas": 10})
        job_id = r.json()["id"]
        wait_until(platform.proxy.held.is_set, 30, "the scale's create of slot 5 reached Docker")
        assert api.get(f"/api/jobs/{job_id}").json()["status"] == "running"
        # both halves of the node's worker: the planner (default queue) and the executor
        # (its Docker work), each a process group
        for program in ("worker", "executor"):
            platform.expect_restart(program)
            os.killpg(platform.program_pid(program), signal.SIGKILL)
    finally:
        platform.proxy.release()
    wait_until(lambda: len([c for c in platform.containers(**{"harbormaster.deployment": name})
                            if c.status == "running"]) == 10, 90, "10 running after the kill")
    job = api.get(f"/api/jobs/{job_id}", params={"wait": 60}).json()
    assert job["status"] == "succeeded", job
    slots = sorted(int(c.labels["harbormaster.slot"])
                   for c in platform.containers(**{"harbormaster.deployment": name}))
    assert slots == list(range(10))
    api.delete(f"/api/deployments/{name}", params={"wait": 60})


def leader_lock_holders(platform) -> list[int]:
    """PIDs of the scheduler processes holding the leader lock (from application_name)."""
    rows = platform.sql("SELECT a.application_name FROM pg_locks l"
                        " JOIN pg_stat_activity a USING (pid)"
                        " WHERE l.locktype = 'advisory' AND l.objid = 7340002 AND l.granted")
    return [int(name.rsplit(":", 1)[1]) for (name,) in rows]


def scheduler_connected(platform, pid: int) -> bool:
    return bool(platform.sql("SELECT 1 FROM pg_stat_activity WHERE application_name = %s",
                             (f"harbormaster-scheduler:{pid}",)))


def scheduler_log_says(path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def test_a_standby_scheduler_takes_over_when_the_leader_stops(platform):
    """The leader is stopped through supervisord (so it cannot come back first): the standby
    must take the lock. Started again, the old leader becomes the standby."""
    import subprocess
    import sys
    # under logs/: the fault check reads it as a scheduler's log
    log_path = platform.data / "logs" / "scheduler-standby.log"
    with open(log_path, "w") as log:
        standby = subprocess.Popen([sys.executable, "-m", "scheduler"], env=platform.env,
                                   cwd=str(platform.data.parent), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        leader_pid = platform.program_pid("scheduler")
        wait_until(lambda: scheduler_log_says(log_path, f"scheduler {standby.pid} is a standby"),
                   30, "the second scheduler is a standby")
        assert leader_lock_holders(platform) == [leader_pid]
        platform.stop_program("scheduler")  # stopped, not restarted: only the standby is left
        wait_until(lambda: leader_lock_holders(platform) == [standby.pid], 30,
                   "the standby took the leader lock")
        wait_until(lambda: scheduler_log_says(log_path, f"scheduler {standby.pid} is the leader"),
                   10, "the standby says it leads")
        platform.start_program("scheduler")
        restarted = platform.program_pid("scheduler")
        wait_until(lambda: scheduler_log_says(platform.data / "logs" / "scheduler.log",
                                              f"scheduler {restarted} is a standby"), 30,
                   "the restarted old leader is the standby")
        assert scheduler_connected(platform, restarted)
        assert leader_lock_holders(platform) == [standby.pid]
        assert standby.poll() is None, log_path.read_text()
    finally:
        os.killpg(standby.pid, signal.SIGTERM)
        standby.wait(timeout=30)
        if platform.rpc_state("scheduler") != "RUNNING":
            platform.start_program("scheduler")
    wait_until(lambda: leader_lock_holders(platform) == [platform.program_pid("scheduler")], 30,
               "the platform's scheduler leads again once the standby is gone")
