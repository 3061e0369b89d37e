"""The warm run of bench/converge.py (issue 18, point 1): scale 0 -> N with ``warm_pool: N``,
converged = N ready endpoints in discovery, beside the same deployment scaled 0 -> N cold
(no pool) to the same N endpoints.

Also measured: the unpause cost per instance (the executor's ``warm_woken`` events: unpause
alone, and unpause to its health check passed), the pool's refill time (from the scale-up
until N members are paused again) and the memory the pool holds (each paused member's
cgroup, read as the sweep reads it: workers.sampler).
"""
from __future__ import annotations

import statistics
import time
import uuid

from workers.sampler import read_container

IMAGE = "harbormaster/busybox-httpd"
CHECK = {"type": "http", "path": "/health", "port": 80, "interval": 1, "timeout": 1,
         "healthy_threshold": 1, "unhealthy_threshold": 2}


def call(api, method: str, url: str, **kw) -> dict:
    r = api.request(method, url, timeout=300, **kw)
    assert r.status_code in (200, 201, 202), r.text
    return r.json()


def wait(condition, timeout: float, what: str, every: float = 0.01) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(every)
    return time.monotonic() - started


class Warm:
    """One deployment with a service, measured through the API like a client would."""

    def __init__(self, plat, api, n: int):
        self.plat, self.api, self.n = plat, api, n
        self.name = f"warm-{uuid.uuid4().hex[:6]}"
        self.url = f"{plat.url}/api/deployments/{self.name}"

    def create(self, pool: int) -> None:
        job = call(self.api, "POST", f"{self.plat.url}/api/deployments", params={"wait": 120},
                   json={"name": self.name, "image": IMAGE, "replicas": 0,
                         "max_replicas": self.n, "warm_pool": pool,
                         "ports": {"80/tcp": None}, "health_check": CHECK,
                         "update": {"monitor": 0.5, "drain_delay": 0},
                         "service": {"name": self.name, "port": 80}})
        assert job["status"] == "succeeded", job

    def endpoints(self) -> int:
        r = self.api.get(f"{self.plat.url}/api/services/{self.name}/endpoints", timeout=60)
        return len(r.json()["endpoints"])

    def members(self) -> list[dict]:
        dep = call(self.api, "GET", self.url)
        return [i for i in dep["instances"] if i["role"] == "warm" and i["state"] == "paused"]

    def pool_full(self) -> bool:
        return len(self.members()) == self.n

    def scale(self, replicas: int, wait: bool = False) -> None:
        call(self.api, "POST", f"{self.url}/scale", json={"replicas": replicas},
             params={"wait": 120} if wait else None)

    def to_endpoints(self) -> float:
        """POST scale 0 -> N until discovery lists N ready endpoints."""
        started = time.monotonic()
        self.scale(self.n)
        wait(lambda: self.endpoints() >= self.n, 300, f"{self.n} endpoints")
        return time.monotonic() - started

    def pool_memory(self) -> int:
        total = 0
        for member in self.members():
            pid = self.plat.docker.api.inspect_container(member["id"])["State"]["Pid"]
            total += read_container(pid, member["id"]).memory_bytes or 0
        return total

    def woken(self) -> list[dict]:
        r = call(self.api, "GET", f"{self.plat.url}/api/events",
                 params={"deployment": self.name, "kind": "warm_woken", "limit": 1000})
        return [e["detail"] for e in r["items"]]

    def delete(self) -> None:
        call(self.api, "DELETE", self.url, params={"wait": 120})


def warm_runs(plat, api, n: int, repeats: int) -> dict:
    """Cold (no pool) then warm, 0 -> n endpoints each, ``repeats`` times."""
    out = {"cold": [], "warm": [], "refill": [], "fill": None, "memory": [], "unpause": [],
           "ready": []}
    dep = Warm(plat, api, n)
    dep.create(pool=0)
    for round_ in range(repeats):
        if round_:
            dep.scale(0, wait=True)
            wait(lambda: dep.endpoints() == 0, 120, "no endpoints", every=0.2)
        out["cold"].append(dep.to_endpoints())
    dep.scale(0, wait=True)
    # every cold instance gone first: a pool set while they go would take them (to_pool)
    wait(lambda: not call(api, "GET", dep.url)["instances"], 300, "no instances", every=0.2)
    call(api, "PATCH", dep.url, json={"warm_pool": n}, params={"wait": 120})
    out["fill"] = wait(dep.pool_full, 600, f"{n} members paused", every=0.2)
    for round_ in range(repeats):
        if round_:   # back to 0: the replicas pause into the pool, the refilled ones go
            dep.scale(0, wait=True)
            wait(lambda: dep.pool_full() and dep.endpoints() == 0, 300, "the pool again",
                 every=0.2)
        time.sleep(2)   # the engine and the agent settle after the pool's creates
        out["memory"].append(dep.pool_memory())
        out["warm"].append(dep.to_endpoints())
        out["refill"].append(wait(dep.pool_full, 600, "the pool refilled", every=0.1)
                             + out["warm"][-1])
    details = dep.woken()   # every round's members, as the executor measured them
    out["unpause"] = [d["unpause_ms"] for d in details]
    out["ready"] = [d["ready_ms"] for d in details]
    dep.delete()
    return out


def report(out: dict, n: int, swarm_converge: list[float], repeats: int) -> None:
    med = statistics.median
    swarm = med(swarm_converge)
    cold, warm = med(out["cold"]), med(out["warm"])

    def runs(times):
        return "[" + ", ".join(f"{t:.2f}" for t in times) + "]"
    print(f"warm pool: 0 -> {n} ready endpoints in discovery (seconds, median of {repeats})")
    print(f"  cold (no pool)     {cold:6.2f}   {runs(out['cold'])}  cold/swarm "
          f"{cold / swarm:.2f}x")
    print(f"  warm_pool: {n:<3}     {warm:6.2f}   {runs(out['warm'])}  warm/swarm "
          f"{warm / swarm:.3f}x  (target <= 0.1x)  warm/cold {warm / cold:.3f}x")
    print(f"  swarm (running)    {swarm:6.2f}")
    print(f"  unpause per instance  median {med(out['unpause']):.1f} ms  max "
          f"{max(out['unpause']):.1f} ms; unpause + one health check: median "
          f"{med(out['ready']):.1f} ms  max {max(out['ready']):.1f} ms  (n={len(out['unpause'])})")
    print(f"  pool refill (scale-up -> {n} paused again)  median {med(out['refill']):.2f} s  "
          f"{runs(out['refill'])}; first fill {out['fill']:.2f} s")
    mib = [m / 2 ** 20 for m in out["memory"]]
    print(f"  memory the pool holds (cgroups of {n} paused members)  median {med(mib):.1f} MiB"
          f"  ({med(mib) / n:.2f} MiB each)")
