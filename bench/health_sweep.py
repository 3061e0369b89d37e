"""One health sweep over the same N running instances, three ways, in one run:

- ours: workers.sweep.sweep (cgroup files and /proc, then one batched insert), timed in
  this process against the private platform's database;
- `docker stats --no-stream` over the same containers;
- docker-py `stats(stream=False)` with a thread pool.
Targets: ours under 0.5 s for 100 instances and under a twentieth of `docker stats`.
Usage: python bench/health_sweep.py [N] [rounds]
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from common import private_platform

import config  # noqa: E402 - the checkout's root is on sys.path once common is imported
from db import pool as db_pool  # noqa: E402
from workers import docker_ops, sweep  # noqa: E402

IMAGE = "harbormaster/busybox-httpd"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    # a long sampling interval: the platform's own sweeps stay out of the way
    plat = private_platform(HARBORMASTER_SAMPLE_INTERVAL="3600")
    try:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {plat.admin_token}"
        r = api.post(f"{plat.url}/api/deployments", json={
            "name": "sweep", "image": IMAGE, "replicas": n, "max_replicas": n,
            "update": {"monitor": 0}}, timeout=60)
        assert r.status_code == 202, r.text
        # on a loaded machine the job may pass its deadline (its ?wait= is capped too) while
        # the planner goes on: what counts is N instances recorded running
        deadline = time.monotonic() + 600
        while plat.sql("SELECT count(*) FROM containers WHERE deployment = 'sweep' AND"
                       " state = 'running' AND pid IS NOT NULL")[0][0] < n:
            assert time.monotonic() < deadline, "instances not running in 600 s"
            time.sleep(1)
        label = "harbormaster.deployment=sweep"
        # running ones only: a loaded engine may have had an instance replaced (the dead one
        # is kept for its logs)
        ids = [c["Id"] for c in plat.docker.api.containers(filters={"label": [
            label, f"harbormaster.cluster={plat.cluster_id}"], "status": "running"})]
        assert len(ids) >= n, len(ids)

        cfg = config.from_env(plat.env)
        db_pool.configure(cfg)
        docker_ops.configure(None, cfg.publish_host)
        sweep.sweep("local", cfg)  # the first sweep has no previous snapshot: warm-up
        ours = []
        for _ in range(rounds):
            started = time.perf_counter()
            result = sweep.sweep("local", cfg)
            ours.append(time.perf_counter() - started)
            assert result["instances"] >= n and result["snapshots"] >= n, result
        # printed now: on a loaded engine the comparisons below can fail (an instance replaced
        # between the listing and `docker stats`)
        print(f"harbormaster sweep over {n}: median {statistics.median(ours):.3f} s "
              f"({', '.join(f'{t:.3f}' for t in ours)})", flush=True)

        cli = []
        docker_bin = shutil.which("docker")
        for _ in range(rounds):
            started = time.perf_counter()
            subprocess.run([docker_bin, "stats", "--no-stream", *ids], check=True,
                           stdout=subprocess.DEVNULL)
            cli.append(time.perf_counter() - started)

        pooled = []
        with ThreadPoolExecutor(max_workers=16) as pool:
            for _ in range(rounds):
                started = time.perf_counter()
                list(pool.map(lambda cid: plat.docker.api.stats(cid, stream=False), ids))
                pooled.append(time.perf_counter() - started)
    finally:
        plat.teardown()
    med = statistics.median
    print(f"one sweep over {n} running instances (median of {rounds}, seconds)")
    print(f"  harbormaster sweep (sample + store)   {med(ours):7.3f}   (target < 0.5)")
    print(f"  docker stats --no-stream              {med(cli):7.3f}   ours is "
          f"{med(cli) / med(ours):.0f}x faster (target > 20x)")
    print(f"  docker-py stats(stream=False) x16     {med(pooled):7.3f}   ours is "
          f"{med(pooled) / med(ours):.0f}x faster")


if __name__ == "__main__":
    main()
