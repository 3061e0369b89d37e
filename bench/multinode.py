"""Two nodes against one, and node loss, in one run on a private platform with node n2 (a
second Docker engine on this machine, as the e2e session has it).

Prints:
- seconds from POST .../scale 0 -> N until N run, counted on both engines: a deployment
  spread over local and n2 beside one pinned to local (`node.name==local`); rounds
  interleave the two so a busy machine slows both alike; medians and the ratio;
- docker-py creating and starting the same N containers straight, split over the two
  engines (a pool per engine as wide as an executor's) and on local alone: the engines'
  own floor;
- seconds from killing n2's whole host (engine, containers, node processes) until every
  replica runs on local, and until n2 was declared down, beside the documented detection
  of Docker Swarm (5 s heartbeat x 3 = 15 s, before any restart) and Kubernetes (50 s node
  grace period + 300 s default toleration before eviction). Then n2 comes back.
Everything is removed in the end, on Ctrl-C or SIGTERM too.
Usage: python bench/multinode.py [N] [repeats] [NODE_DOWN_AFTER seconds] [loss replicas]
"""
from __future__ import annotations

import signal
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from common import TestPlatform

IMAGE = "harbormaster/busybox-httpd"
SWARM_DETECTION = 5 * 3        # dispatcher heartbeat period x grace multiplier
K8S_EVICTION = 50 + 300        # node-monitor-grace-period + not-ready/unreachable toleration
# the worker's and executor's actors fail while n2's engine is away (retried or replanned);
# the e2e node-loss test declares the same
ENGINE_AWAY = (r"\[ERROR\] Failed to process message [\s\S]*(docker engine unreachable|"
               r"Connection aborted|Connection refused|No such file)")


def running(plat, label: str, nodes) -> dict[str, int]:
    """node -> running containers carrying ``label`` and this cluster's (the engines' word)."""
    labels = [f"harbormaster.cluster={plat.cluster_id}", label]
    return {node: len(plat.engines[node].api.containers(
        filters={"label": labels, "status": "running"})) for node in nodes}


def counted(plat, label: str, count: int):
    """node -> running, once ``count`` run over both engines; else None."""
    counts = running(plat, label, plat.engines)
    return counts if sum(counts.values()) >= count else None


def wait_for(condition, timeout: float, what: str, interval: float = 0.02):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not reached in {timeout:.0f}s")


def deploy(plat, api, name: str, replicas: int, most: int, wait: float, **extra) -> None:
    r = api.post(f"{plat.url}/api/deployments", params={"wait": wait}, timeout=wait + 30,
                 json={"name": name, "image": IMAGE, "replicas": replicas, "min_replicas": 0,
                       "max_replicas": most, "update": {"monitor": 0.5}, **extra})
    assert r.json()["status"] == "succeeded", r.text


def converge_once(plat, api, name: str, n: int) -> tuple[float, dict]:
    """Scale 0 -> n; the seconds until n run over both engines, and where they run."""
    label = f"harbormaster.deployment={name}"
    started = time.monotonic()
    r = api.post(f"{plat.url}/api/deployments/{name}/scale", json={"replicas": n}, timeout=30)
    assert r.status_code in (200, 202), r.text
    split = wait_for(lambda: counted(plat, label, n), 300, f"{n} of {name} running")
    seconds = time.monotonic() - started
    return seconds, split


def back_to_zero(plat, api, name: str) -> None:
    r = api.post(f"{plat.url}/api/deployments/{name}/scale", json={"replicas": 0},
                 params={"wait": 120}, timeout=150)
    assert r.json()["status"] == "succeeded", r.text
    label = f"harbormaster.deployment={name}"
    wait_for(lambda: not any(running(plat, label, plat.engines).values()), 120,
             f"none of {name} running", 0.2)
    # retired instances go with the cleanup (a few seconds); measure on an engine at rest
    try:
        wait_for(lambda: not plat.listed(label=label), 60, f"{name}'s containers gone", 0.2)
    except TimeoutError:
        pass  # exited containers left over do not count as running: go on
    time.sleep(2)


def converge_rounds(plat, api, n: int, repeats: int) -> dict:
    """Two deployments at 0: one spread over both nodes, one pinned to local; each round
    scales one, then the other, to n and back to 0."""
    tag = uuid.uuid4().hex[:6]
    spread, pinned = f"mn-two-{tag}", f"mn-one-{tag}"
    deploy(plat, api, spread, 0, n, 60)
    deploy(plat, api, pinned, 0, n, 60, placement={"constraints": ["node.name==local"]})
    out = {"two": [], "one": [], "two_split": [], "one_split": []}
    for _ in range(repeats):
        for key, name in (("two", spread), ("one", pinned)):
            seconds, split = converge_once(plat, api, name, n)
            out[key].append(seconds)
            out[f"{key}_split"].append(split)
            back_to_zero(plat, api, name)
    for name in (spread, pinned):
        api.delete(f"{plat.url}/api/deployments/{name}", params={"wait": 120}, timeout=150)
    return out


def docker_py_converge(plat, n: int, nodes: list[str], threads: int) -> float:
    """The same containers as ours (init, the installation's network, hardened), created
    and started straight, n split evenly over ``nodes``, a pool of ``threads`` per engine."""
    label = f"bench-raw={uuid.uuid4().hex[:6]}"
    key, value = label.split("=")
    network = f"harbormaster-{plat.cluster_id[:12]}"
    shares = {node: n // len(nodes) + (1 if i < n % len(nodes) else 0)
              for i, node in enumerate(nodes)}

    def one(node: str) -> None:
        client = plat.engines[node]
        c = client.containers.create(IMAGE, labels={key: value}, init=True, detach=True,
                                     network=network, cap_drop=["ALL"],
                                     security_opt=["no-new-privileges:true"])
        c.start()

    def engine_share(node: str) -> None:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, [node] * shares[node]))

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(nodes)) as engines:
            list(engines.map(engine_share, nodes))
        wait_for(lambda: sum(len(plat.engines[node].api.containers(
            filters={"label": label, "status": "running"})) for node in nodes) >= n,
            300, f"{n} raw containers running")
        return time.monotonic() - started
    finally:
        for node in nodes:
            api = plat.engines[node].api
            for c in api.containers(all=True, filters={"label": label}):
                api.remove_container(c["Id"], force=True)


def node_loss(plat, api, replicas: int) -> dict:
    """A deployment spread over both nodes; n2's host killed; the seconds until n2 is
    declared down and until every replica runs on local; then n2 back."""
    for program in ("worker", "executor"):
        plat.expect_log(program, ENGINE_AWAY)
    name = f"mn-loss-{uuid.uuid4().hex[:6]}"
    label = f"harbormaster.deployment={name}"
    deploy(plat, api, name, replicas, replicas, 120)
    before = wait_for(lambda: counted(plat, label, replicas), 60,
                      f"{replicas} of {name} running")
    down_at = None
    lost = time.monotonic()
    plat.n2.kill()  # its node processes, its engine and its containers
    killed = time.monotonic() - lost
    while True:
        if down_at is None and api.get(f"{plat.url}/api/nodes/n2", timeout=10).json()[
                "status"] == "down":
            down_at = time.monotonic() - lost
        if running(plat, label, ["local"])["local"] >= replicas:
            replaced = time.monotonic() - lost
            break
        if time.monotonic() - lost > 300:
            raise TimeoutError(f"{replicas} of {name} not running on local in 300s")
        time.sleep(0.05)
    back = time.monotonic()
    plat.n2.revive()  # returns when n2 is ready again (its stale instances removed)
    revived = time.monotonic() - back
    after = running(plat, label, plat.engines)
    api.delete(f"{plat.url}/api/deployments/{name}", params={"wait": 120}, timeout=150)
    return {"before": before, "killed": killed, "down": down_at, "replaced": replaced,
            "revived": revived, "after": after}


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # so the finally below tears down


def report(n: int, repeats: int, conv: dict, raw: dict, loss: dict, env: dict) -> None:
    med = statistics.median
    two, one = med(conv["two"]), med(conv["one"])

    def runs(times):
        return "[" + ", ".join(f"{t:.2f}" for t in times) + "]"

    def splits(entries):
        return " ".join("/".join(str(s[k]) for k in ("local", "n2")) for s in entries)
    print(f"converge 0 -> {n} running, counted on both engines (seconds, median of {repeats};"
          f" executor pool {env['HARBORMASTER_RECONCILE_CONCURRENCY']} per node)")
    print(f"  harbormaster, two engines   {two:6.2f}   {runs(conv['two'])}  local/n2 "
          f"{splits(conv['two_split'])}")
    print(f"  harbormaster, one engine    {one:6.2f}   {runs(conv['one'])}  local/n2 "
          f"{splits(conv['one_split'])}")
    print(f"  two/one                     {two / one:6.2f}x")
    print(f"  docker-py, two engines      {med(raw['two']):6.2f}   {runs(raw['two'])}  "
          f"ours/docker-py {two / med(raw['two']):.2f}x")
    print(f"  docker-py, one engine       {med(raw['one']):6.2f}   {runs(raw['one'])}  "
          f"ours/docker-py {one / med(raw['one']):.2f}x")
    print(f"  docker-py two/one           {med(raw['two']) / med(raw['one']):6.2f}x  "
          "(the engines' own gain)")
    total = sum(loss["before"].values())
    print(f"node loss: n2's host killed (engine, containers, node processes) with {total} "
          f"replicas, local/n2 {loss['before']['local']}/{loss['before']['n2']}")
    print(f"  NODE_DOWN_AFTER {env['HARBORMASTER_NODE_DOWN_AFTER']} s, heartbeat every "
          f"{env['HARBORMASTER_HEARTBEAT_INTERVAL']} s (seconds from the kill; the kill "
          f"itself took {loss['killed']:.1f})")
    print(f"  n2 declared down            {loss['down']:6.1f}")
    print(f"  {f'all {total} running on local':<26}  {loss['replaced']:6.1f}   "
          f"(replacement after detection {loss['replaced'] - loss['down']:.1f})")
    print(f"  swarm, documented           {SWARM_DETECTION:6.1f}   detection only (5 s x 3), "
          f"before any restart; ours all running / swarm detection "
          f"{loss['replaced'] / SWARM_DETECTION:.2f}x")
    print(f"  kubernetes, documented      {K8S_EVICTION:6.1f}   50 s grace + 300 s toleration, "
          f"before eviction; ours/kubernetes {loss['replaced'] / K8S_EVICTION:.3f}x")
    print(f"  n2 back to ready            {loss['revived']:6.1f}   (engine and node processes "
          f"restarted, stale instances removed); then local/n2 "
          f"{loss['after']['local']}/{loss['after']['n2']}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    down_after = sys.argv[3] if len(sys.argv) > 3 else "15"  # the shipped default
    loss_replicas = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # the test profile reserves 0.01 CPU and 8 MiB per instance without limits and keeps
    # no memory back: N instances fit on one node of this machine
    plat = TestPlatform(second_node=True, extra_env={
        "HARBORMASTER_NODE_DOWN_AFTER": down_after,
        "HARBORMASTER_RECONCILE_CONCURRENCY": "8"})
    try:
        plat.start()  # inside the try: a start that fails half-way is torn down too
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {plat.admin_token}"
        conv = converge_rounds(plat, api, n, repeats)
        threads = int(plat.env["HARBORMASTER_RECONCILE_CONCURRENCY"])
        raw = {"two": [], "one": []}
        for _ in range(repeats):
            raw["two"].append(docker_py_converge(plat, n, ["local", "n2"], threads))
            time.sleep(2)
            raw["one"].append(docker_py_converge(plat, n, ["local"], threads))
            time.sleep(2)
        loss = node_loss(plat, api, loss_replicas)
        report(n, repeats, conv, raw, loss, plat.env)
    finally:
        # a second Ctrl-C must not cut the teardown short (it has deadlines of its own)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("tearing the private platform down ...", flush=True)
        plat.teardown()


if __name__ == "__main__":
    main()
