"""Convergence and recovery, against docker-py and Docker Swarm, in one run.

Prints:
- seconds from POST .../scale 0 -> N until Docker reports N running: Harbormaster, docker-py
  directly at the worker's concurrency, and Swarm (`service create --replicas N`);
- seconds from `docker kill` of one instance until its replacement runs: Harbormaster, Swarm
  with its default restart delay (5 s) and Swarm with a restart delay of 0 s;
- the warm run (bench/warm_pool.py): 0 -> N ready endpoints in discovery with
  ``warm_pool: N`` beside the same cold, against Swarm's converge; the unpause cost per
  instance, the pool's refill time and the memory it holds.
Swarm is initialised on 127.0.0.1 for the run and left again after it.
Convergence runs `repeats` times each (medians printed; single runs vary by +-15 % here).
Usage: python bench/converge.py [N] [kill rounds] [reconcile concurrency] [repeats]
"""
from __future__ import annotations

import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import docker
import requests
from docker.types import RestartPolicy, ServiceMode

from common import private_platform
from warm_pool import report as warm_report, warm_runs

IMAGE = "harbormaster/busybox-httpd"


def wait_running(client, label: str, count: int, timeout: float = 120,
                 exclude: set | None = None) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        # the low-level list: no inspect per container, so no race with removals
        running = [c for c in client.api.containers(filters={"label": label,
                                                             "status": "running"})
                   if not exclude or c["Id"] not in exclude]
        if len(running) >= count:
            return time.monotonic() - started
        time.sleep(0.02)
    raise TimeoutError(f"{count} running with {label} not reached in {timeout}s")


def ours_converge(plat, n: int, api, repeats: int) -> tuple[list[float], str]:
    """Scale 0 -> n, `repeats` times (back to 0 and every container gone in between)."""
    name = f"conv-{uuid.uuid4().hex[:6]}"
    label = f"harbormaster.deployment={name}"
    r = api.post(f"{plat.url}/api/deployments", json={
        "name": name, "image": IMAGE, "replicas": 0, "min_replicas": 0, "max_replicas": n,
        "update": {"monitor": 0.5}}, params={"wait": 60})
    assert r.json()["status"] == "succeeded", r.text
    times = []
    for round_ in range(repeats):
        if round_:
            api.post(f"{plat.url}/api/deployments/{name}/scale", json={"replicas": 0},
                     params={"wait": 120})
            wait_gone(plat.docker, label)
            time.sleep(2)  # let the engine and the agent settle
        started = time.monotonic()
        api.post(f"{plat.url}/api/deployments/{name}/scale", json={"replicas": n})
        wait_running(plat.docker, label, n)
        times.append(time.monotonic() - started)
    return times, name


def ours_recovery(plat, name: str, rounds: int) -> list[float]:
    label = f"harbormaster.deployment={name}"
    times = []
    for _ in range(rounds):
        steady = plat.docker.api.containers(filters={"label": label, "status": "running"})
        total = len(steady)
        victim = steady[len(steady) // 2]["Id"]
        started = time.monotonic()
        plat.docker.api.kill(victim)
        wait_running(plat.docker, label, total, exclude={victim})
        times.append(time.monotonic() - started)
        time.sleep(1.5)  # let the dead one be cleaned before the next round
    return times


def docker_py_converge(client, n: int, threads: int, network: str) -> float:
    """The same containers as ours (init, the installation's network, hardened), created
    and started straight with docker-py."""
    label = f"bench-raw={uuid.uuid4().hex[:6]}"
    key, value = label.split("=")
    started = time.monotonic()

    def one(i):
        c = client.containers.create(IMAGE, labels={key: value}, init=True, detach=True,
                                     network=network, cap_drop=["ALL"],
                                     security_opt=["no-new-privileges:true"])
        c.start()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(n)))
    wait_running(client, label, n)
    total = time.monotonic() - started
    for c in client.api.containers(all=True, filters={"label": label}):
        client.api.remove_container(c["Id"], force=True)
    return total


def swarm_runs(client, n: int, rounds: int, repeats: int) -> dict:
    out = {"converge": []}
    client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    try:
        for round_ in range(repeats):
            if round_:
                service.remove()
                wait_gone(client, label)
                time.sleep(2)
            name = f"bench-{uuid.uuid4().hex[:6]}"
            label = f"com.docker.swarm.service.name={name}"
            started = time.monotonic()
            service = client.services.create(IMAGE, name=name,
                                             mode=ServiceMode("replicated", replicas=n))
            wait_running(client, label, n, timeout=300)
            out["converge"].append(time.monotonic() - started)
        out["recovery_default"] = kill_rounds(client, label, n, rounds)
        service.remove()
        wait_gone(client, label)
        name0 = f"bench0-{uuid.uuid4().hex[:6]}"
        label0 = f"com.docker.swarm.service.name={name0}"
        service0 = client.services.create(IMAGE, name=name0, mode=ServiceMode("replicated",
                                                                             replicas=n),
                                          restart_policy=RestartPolicy(condition="any", delay=0))
        wait_running(client, label0, n, timeout=300)
        out["recovery_no_delay"] = kill_rounds(client, label0, n, rounds)
        service0.remove()
        wait_gone(client, label0)
    finally:
        client.swarm.leave(force=True)
    return out


def kill_rounds(client, label: str, n: int, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        victim = client.api.containers(filters={"label": label, "status": "running"})[0]["Id"]
        started = time.monotonic()
        client.api.kill(victim)
        wait_running(client, label, n, exclude={victim}, timeout=120)
        times.append(time.monotonic() - started)
        time.sleep(1.5)
    return times


def wait_gone(client, label: str) -> None:
    deadline = time.monotonic() + 60
    while client.api.containers(all=True, filters={"label": label}) and \
            time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    plat = private_platform(HARBORMASTER_RECONCILE_CONCURRENCY=str(concurrency))
    try:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {plat.admin_token}"
        threads = concurrency  # the reconciler's create/start pool
        ours_times, name = ours_converge(plat, n, api, repeats)
        ours_rec = ours_recovery(plat, name, rounds)
        api.delete(f"{plat.url}/api/deployments/{name}", params={"wait": 120})
        warm = warm_runs(plat, api, n, repeats)
        network = f"harbormaster-{plat.cluster_id[:12]}"
        raw_times = []
        for _ in range(repeats):
            raw_times.append(docker_py_converge(plat.docker, n, threads, network))
            time.sleep(2)
        swarm = swarm_runs(docker.from_env(), n, rounds, repeats)
    finally:
        plat.teardown()
    med = statistics.median
    ours_time, raw_time, swarm_time = med(ours_times), med(raw_times), med(swarm["converge"])

    def runs(times):
        return "[" + ", ".join(f"{t:.2f}" for t in times) + "]"
    print(f"converge 0 -> {n} running (seconds, median of {repeats})")
    print(f"  harbormaster       {ours_time:6.2f}   {runs(ours_times)}")
    print(f"  docker-py x{threads:<2}      {raw_time:6.2f}   {runs(raw_times)}  ours/docker-py "
          f"{ours_time / raw_time:.2f}x  (target <= 1.3x)")
    print(f"  swarm              {swarm_time:6.2f}   {runs(swarm['converge'])}  ours/swarm "
          f"{ours_time / swarm_time:.2f}x  (target < 0.5x)")
    print(f"  docker-py/swarm    {raw_time / swarm_time:.2f}x  (the engine's own floor for these"
          " containers)")
    print(f"recovery after docker kill (median of {rounds}, seconds)")
    print(f"  harbormaster       {med(ours_rec):6.2f}   {['%.2f' % t for t in ours_rec]}")
    print(f"  swarm no delay     {med(swarm['recovery_no_delay']):6.2f}   ours/swarm0 "
          f"{med(ours_rec) / med(swarm['recovery_no_delay']):.2f}x  (target <= 1.5x)")
    print(f"  swarm default      {med(swarm['recovery_default']):6.2f}   ours/swarm "
          f"{med(ours_rec) / med(swarm['recovery_default']):.2f}x  (target < 0.25x)")
    warm_report(warm, n, swarm["converge"], repeats)


if __name__ == "__main__":
    main()
