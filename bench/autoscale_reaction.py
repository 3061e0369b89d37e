"""Autoscaling's reaction: from a load change to a new instance ready, in one run.

Two private platforms, one after the other: sampling and the periodic evaluation every 1 s,
then at the defaults (15 s and 15 s). On each, ROUNDS rounds of four kinds, each on a fresh
deployment (1 replica, an HTTP health check every 1 s on its published port 80), the two
below cold and the same two with ``warm_pool: 1`` (its member paused before t0: the
scale-up wakes it, issue 18's warm pool):

- cpu: harbormaster/busybox-burn (capped at half a core) idles (/tmp/idle, written through
  the engine) until the platform has sampled it idle; a policy targets 30 % CPU; the burn
  starts in the running instance (/tmp/idle removed through the engine): t0;
- custom: harbormaster/busybox-httpd, a policy targets 100 requests_per_second per
  instance; 350 is reported: t0 is the report's answer.

The figure is t0 until a second instance of the deployment is running and healthy (its
first health check passed), with the time of the decision that scaled it; medians printed
beside Kubernetes' documented defaults: the HPA syncs every 15 s
(--horizontal-pod-autoscaler-sync-period) on metrics resolved every 15 s (metrics-server's
--metric-resolution), so its decision alone comes 15-30 s after a CPU change, before the
pod is created and started. Targets with 1 s intervals: <= 5 s cold, <= 2 s from the pool.
Usage: python bench/autoscale_reaction.py [rounds]
"""
from __future__ import annotations

import statistics
import sys
import time
import uuid

import requests

from common import private_platform

PROFILES = {"1 s intervals": {"HARBORMASTER_SAMPLE_INTERVAL": "1",
                              "HARBORMASTER_AUTOSCALE_INTERVAL": "1"},
            "defaults (15 s, 15 s)": {"HARBORMASTER_SAMPLE_INTERVAL": "15",
                                      "HARBORMASTER_AUTOSCALE_INTERVAL": "15"}}
READY = ("SELECT count(*) FROM containers WHERE deployment = %s AND role = 'active' AND"
         " state = 'running' AND health = 'healthy'")
SAMPLED_IDLE = ("SELECT count(*) FROM health_snapshots WHERE deployment = %s AND running AND"
                " cpu_percent IS NOT NULL AND cpu_percent < 10 AND at > %s")
PAUSED_MEMBERS = ("SELECT count(*) FROM containers WHERE deployment = %s AND role = 'warm' AND"
                  " state = 'paused'")


def wait(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        time.sleep(interval)


def deploy(plat, api, name: str, image: str, **extra) -> None:
    r = api.post(f"{plat.url}/api/deployments", params={"wait": 60}, timeout=90, json={
        "name": name, "image": image, "replicas": 1, "max_replicas": 3,
        "ports": {"80/tcp": None}, "update": {"monitor": 0},
        "health_check": {"type": "http", "port": 80, "path": "/", "interval": 1}, **extra})
    assert r.json()["status"] == "succeeded", r.text
    wait(lambda: plat.sql(READY, (name,))[0][0] >= 1, 60, "the first instance healthy")
    if extra.get("warm_pool"):
        wait(lambda: plat.sql(PAUSED_MEMBERS, (name,))[0][0] >= extra["warm_pool"], 90,
             "the pool's members paused")


def instance_id(plat, name: str) -> str:
    return plat.sql("SELECT docker_id FROM containers WHERE deployment = %s AND role ="
                    " 'active' AND state = 'running'", (name,))[0][0]


def in_container(plat, docker_id: str, *command: str) -> None:
    """Through the engine directly: no job, no platform in the way of t0."""
    exec_id = plat.docker.api.exec_create(docker_id, list(command))["Id"]
    plat.docker.api.exec_start(exec_id)


def first_scale_up(plat, name: str, t0_wall: float) -> float | None:
    rows = plat.sql("SELECT extract(epoch FROM at) FROM scaling_decisions WHERE deployment ="
                    " %s AND applied AND desired > current ORDER BY at LIMIT 1", (name,))
    return float(rows[0][0]) - t0_wall if rows else None


def cpu_round(plat, api, interval: float, pool: int) -> tuple[float, float | None]:
    name = f"react-cpu-{uuid.uuid4().hex[:6]}"
    deploy(plat, api, name, "harbormaster/busybox-burn", resources={"cpus": 0.5},
           warm_pool=pool)
    docker_id = instance_id(plat, name)
    in_container(plat, docker_id, "touch", "/tmp/idle")
    since = plat.sql("SELECT now()")[0][0]
    # idle as the platform sees it, over the whole window the autoscaler averages (two
    # intervals): three idle samples after the burn stopped. The policy comes after, or its
    # first evaluation would average the burn before t0 and scale out early
    wait(lambda: plat.sql(SAMPLED_IDLE, (name, since))[0][0] >= 3, 6 * interval + 30,
         "idle samples", interval=0.2)
    r = api.post(f"{plat.url}/api/scaling/policies", json={
        "deployment": name, "min_replicas": 1, "max_replicas": 3, "scale_up_cooldown": 0,
        "metrics": [{"type": "cpu", "target": 30}]})
    assert r.status_code == 201, r.text
    in_container(plat, docker_id, "rm", "-f", "/tmp/idle")
    t0, t0_wall = time.monotonic(), time.time()
    wait(lambda: plat.sql(READY, (name,))[0][0] >= 2, 4 * interval + 60, "a second instance")
    took = time.monotonic() - t0
    decided = first_scale_up(plat, name, t0_wall)
    api.delete(f"{plat.url}/api/deployments/{name}", params={"wait": 60}, timeout=90)
    if decided is not None and decided < 0:
        raise RuntimeError(f"{name} was scaled out {-decided:.2f} s before its burn started")
    return took, decided


def custom_round(plat, api, interval: float, pool: int) -> tuple[float, float | None]:
    name = f"react-rps-{uuid.uuid4().hex[:6]}"
    deploy(plat, api, name, "harbormaster/busybox-httpd", warm_pool=pool)
    r = api.post(f"{plat.url}/api/scaling/policies", json={
        "deployment": name, "max_replicas": 3, "scale_up_cooldown": 0,
        "metrics": [{"type": "custom", "name": "requests_per_second", "target": 100}]})
    assert r.status_code == 201, r.text
    r = api.post(f"{plat.url}/api/deployments/{name}/metrics",
                 json={"name": "requests_per_second", "value": 350})
    t0, t0_wall = time.monotonic(), time.time()
    assert r.status_code == 200, r.text
    wait(lambda: plat.sql(READY, (name,))[0][0] >= 2, 4 * interval + 60, "a second instance")
    took = time.monotonic() - t0
    decided = first_scale_up(plat, name, t0_wall)
    api.delete(f"{plat.url}/api/deployments/{name}", params={"wait": 60}, timeout=90)
    return took, decided


KINDS = (("cpu", cpu_round, 0), ("custom", custom_round, 0),
         ("cpu+pool", cpu_round, 1), ("custom+pool", custom_round, 1))


def profile_run(label: str, env: dict, rounds: int) -> dict[str, list]:
    plat = private_platform(**env)
    interval = float(env["HARBORMASTER_SAMPLE_INTERVAL"])
    found = {kind: [] for kind, _, _ in KINDS}
    try:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {plat.admin_token}"
        for n in range(rounds):
            for kind, one, pool in KINDS:
                took, decided = one(plat, api, interval, pool)
                found[kind].append((took, decided))
                print(f"  {label:<22} {kind:<11} round {n + 1}: ready after {took:5.2f} s"
                      f" (decided after {decided if decided is None else round(decided, 2)}"
                      " s)", flush=True)
    finally:
        plat.teardown()
    return found


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = {label: profile_run(label, env, rounds) for label, env in PROFILES.items()}
    med = statistics.median
    print(f"\nload change -> a new instance ready (median of {rounds}, seconds; the decision"
          " in brackets)")
    for label, found in results.items():
        for kind, _, _ in KINDS:
            took = [t for t, _ in found[kind]]
            decided = [d for _, d in found[kind] if d is not None]
            print(f"  {label:<22} {kind:<12} {med(took):6.2f}   "
                  f"({med(decided) if decided else float('nan'):.2f})")
    print("  kubernetes HPA defaults: decision 15-30 s after a CPU change (15 s sync period"
          " + 15 s metrics resolution), then the pod's creation and start")
    print("  targets with 1 s intervals: <= 5 s cold, <= 2 s from the pool")


if __name__ == "__main__":
    main()
