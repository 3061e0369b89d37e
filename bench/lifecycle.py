"""Create-to-running for N containers: through our API vs docker-py directly.

Both sides run in one process, one after the other, against the same engine: ours posts N
creates at once and times each until its job reports the container running; docker-py
creates and starts N containers with a pool as wide as the worker's threads. Prints
p50/p95 of each and the ratio. Usage: python bench/lifecycle.py [N]
"""
from __future__ import annotations

import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from common import describe, percentile, private_platform

IMAGE = "harbormaster/busybox-httpd"


def ours(plat, n: int) -> tuple[list[float], float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {plat.admin_token}"

    wall = time.monotonic()

    def one(i: int) -> float:
        r = session.post(f"{plat.url}/api/containers", params={"wait": 120},
                         json={"image": IMAGE, "name": f"bench-api-{uuid.uuid4().hex[:8]}"},
                         timeout=180)
        job = r.json()
        assert job["status"] == "succeeded", job
        return time.monotonic() - wall

    with ThreadPoolExecutor(max_workers=n) as pool:
        times = list(pool.map(one, range(n)))
    return times, time.monotonic() - wall


def docker_py(plat, n: int, threads: int) -> tuple[list[float], float]:
    client = plat.docker
    label = {"harbormaster.bench": plat.cluster_id}

    wall = time.monotonic()

    network = f"harbormaster-{plat.cluster_id[:12]}"

    def one(i: int) -> float:
        # the same container as ours: init, the installation's network, hardened
        c = client.containers.create(IMAGE, name=f"bench-raw-{uuid.uuid4().hex[:8]}",
                                     labels=label, init=True, detach=True, network=network,
                                     cap_drop=["ALL"], security_opt=["no-new-privileges:true"])
        c.start()
        # like the API side: from the moment all N were asked for until this one runs
        return time.monotonic() - wall

    with ThreadPoolExecutor(max_workers=threads) as pool:
        durations = list(pool.map(one, range(n)))
    finished = time.monotonic() - wall
    for c in client.containers.list(all=True, filters={"label": "harbormaster.bench"}):
        c.remove(force=True)
    return durations, finished


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    plat = private_platform()
    try:
        threads = int(plat.env.get("HARBORMASTER_WORKER_THREADS", "8"))
        ours(plat, 2)  # warm-up: connections, image cache
        api_times, api_wall = ours(plat, n)
        raw_times, raw_wall = docker_py(plat, n, threads)
        print(f"create-to-running, {n} containers, worker threads {threads}")
        print(f"  harbormaster API : {describe(api_times)}  wall {api_wall:.2f}s")
        print(f"  docker-py direct : {describe(raw_times)}  wall {raw_wall:.2f}s")
        print(f"  ratio p50 {percentile(api_times, 50) / percentile(raw_times, 50):.2f}x  "
              f"p95 {percentile(api_times, 95) / percentile(raw_times, 95):.2f}x  "
              f"wall {api_wall / raw_wall:.2f}x")
    finally:
        plat.teardown()


if __name__ == "__main__":
    main()
