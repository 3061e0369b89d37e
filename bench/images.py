"""Create-to-running of one standalone container with its image cached vs pulled from a real
registry on 127.0.0.1, through our API and through docker-py, in one run.

A private platform (one node) and a registry of its own (tests.support.registry: Debian's
docker-registry with htpasswd auth) are started; an image with one random layer
(tests.support.layers, 24 MiB by default) is pushed there and the registry's credentials
are given to the platform (POST /api/registries). Each round measures, interleaved:
- ours, cached: POST /api/containers?wait= with the image on the engine, until the job
  reports the container running;
- docker-py, cached: create + start of the same container (init, the installation's
  network, hardened), the engine's own floor;
- ours, pulled: the image removed from the engine first; the create's job pulls it with the
  stored credentials (workers.images.ensure), then creates and starts;
- docker-py, pulled: the image removed first; pull (its stream read to the end) + create +
  start.
Prints the medians, pulled/cached and ours/docker-py, beside the seed's target (under 5 s
with a cached image). Everything is removed in the end, on Ctrl-C or SIGTERM too.
Usage: python bench/images.py [rounds] [layer MiB]
"""
from __future__ import annotations

import signal
import statistics
import sys
import time
import uuid
from datetime import datetime

import requests

from common import private_platform
from tests.support import layers
from tests.support.registry import Registry

TARGET_CACHED = 5.0     # the seed's create-to-running target with a cached image, seconds
RAW_LABEL = "harbormaster.bench-images"
SETTLE = 1.0            # seconds between measurements: the agent records what just changed


class NotReady(RuntimeError):
    """The platform cannot do what a measurement needs (a route or a pull missing)."""


def ours(plat, api: requests.Session, ref: str, pulls: bool = False) -> tuple[float, str]:
    """Seconds from POST /api/containers until its job says the container runs, and how
    long its job was queued + ran; then the container is removed (not timed). ``pulls``:
    the engine must have pulled ``ref`` then."""
    name = f"bench-img-{uuid.uuid4().hex[:8]}"
    since = int(time.time())
    started = time.monotonic()
    r = api.post(f"{plat.url}/api/containers", params={"wait": 240}, timeout=300,
                 json={"image": ref, "name": name})
    seconds = time.monotonic() - started
    job = r.json()
    if r.status_code not in (200, 202) or job.get("status") != "succeeded":
        raise NotReady(f"create from {ref}: HTTP {r.status_code} {job}")
    state = plat.docker.api.inspect_container(name)["State"]
    assert state["Running"], f"{name} not running after its job succeeded: {state}"
    if pulls:
        assert pulled(plat, ref, since), f"{name}'s job succeeded but the engine pulled no {ref}"
    gone = api.delete(f"{plat.url}/api/containers/{name}", params={"force": "true",
                                                                   "wait": 60}, timeout=90)
    assert gone.json().get("status") == "succeeded", gone.text
    return seconds, split(job)


def split(job: dict) -> str:
    """'queued+ran' seconds of a job, from its own times."""
    created, started, finished = (datetime.fromisoformat(job[k]) for k in
                                  ("created_at", "started_at", "finished_at"))
    return (f"{(started - created).total_seconds():.2f}"
            f"+{(finished - started).total_seconds():.2f}")


def pulled(plat, ref: str, since: int) -> bool:
    """The engine's events since ``since`` (whole seconds) show a pull of ``ref``."""
    events = plat.docker.api.events(since=since, until=int(time.time()) + 1, decode=True,
                                    filters={"type": "image", "event": "pull"})
    return any(event.get("id") == ref for event in events)


def docker_py(plat, registry: Registry, ref: str, pull: bool) -> float:
    """Seconds for [pull +] create + start of the same container as ours, straight."""
    client = plat.docker
    network = f"harbormaster-{plat.cluster_id[:12]}"
    started = time.monotonic()
    if pull:
        repository, tag = ref.rsplit(":", 1)
        errors = [m for m in client.api.pull(repository, tag=tag, stream=True, decode=True,
                                             auth_config=registry.auth_config())
                  if "error" in m]
        assert not errors, errors
    container = client.containers.create(
        ref, name=f"bench-img-raw-{uuid.uuid4().hex[:8]}", labels={RAW_LABEL: "1"},
        init=True, detach=True, network=network, cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"])
    container.start()
    seconds = time.monotonic() - started
    container.remove(force=True)
    return seconds


def uncache(plat, image: layers.LayeredImage) -> None:
    assert layers.remove([plat.docker], [image.ident]) == []
    assert layers.remaining([plat.docker], [image.ident]) == []


def give_credentials(plat, api: requests.Session, registry: Registry) -> None:
    r = api.post(f"{plat.url}/api/registries", json=registry.credentials(), timeout=30)
    if r.status_code not in (200, 201):
        raise NotReady(f"POST /api/registries: HTTP {r.status_code} {r.text[:300]}")


def rounds(plat, api, registry: Registry, image: layers.LayeredImage, count: int) -> dict:
    """``count`` rounds of the four measurements; ours first in even rounds, docker-py first
    in odd ones, so neither always runs on an engine just disturbed by the other."""
    out = {key: [] for key in ("ours_cached", "raw_cached", "ours_pulled", "raw_pulled",
                               "jobs_cached", "jobs_pulled")}
    steps = {"ours_cached": lambda: ours(plat, api, image.ref),
             "raw_cached": lambda: docker_py(plat, registry, image.ref, pull=False),
             "ours_pulled": lambda: ours(plat, api, image.ref, pulls=True),
             "raw_pulled": lambda: docker_py(plat, registry, image.ref, pull=True)}
    for number in range(count):
        order = ["ours_cached", "raw_cached", "ours_pulled", "raw_pulled"]
        if number % 2:
            order = ["raw_cached", "ours_cached", "raw_pulled", "ours_pulled"]
        for key in order:
            if key.endswith("_pulled"):
                uncache(plat, image)
            time.sleep(SETTLE)
            seconds = steps[key]()
            if key.startswith("ours"):
                seconds, job = seconds
                out[key.replace("ours", "jobs")].append(job)
            out[key].append(seconds)
    return out


def report(figures: dict, image: layers.LayeredImage, pulled_bytes: int, count: int) -> None:
    med = {key: statistics.median(values) for key, values in figures.items()
           if not key.startswith("jobs")}

    def runs(key: str) -> str:
        return "[" + ", ".join(f"{t:.2f}" for t in figures[key]) + "]"
    print(f"create-to-running of one standalone container, seconds, median of {count} "
          f"interleaved rounds;\nimage {image.ref}: one layer with {image.random_bytes / 2**20:.0f}"
          f" MiB of random bytes ({pulled_bytes / 1e6:.1f} MB on the engine), from a registry"
          " on 127.0.0.1 with htpasswd auth")
    print(f"  {'':24} {'cached':>8} {'pulled':>8} {'pulled/cached':>14}")
    for who, label in (("ours", "harbormaster API"), ("raw", "docker-py (the floor)")):
        cached, pulled = med[f"{who}_cached"], med[f"{who}_pulled"]
        print(f"  {label:24} {cached:8.2f} {pulled:8.2f} {pulled / cached:13.2f}x   "
              f"cached {runs(f'{who}_cached')} pulled {runs(f'{who}_pulled')}")
    print(f"  {'ours/docker-py':24} {med['ours_cached'] / med['raw_cached']:7.2f}x "
          f"{med['ours_pulled'] / med['raw_pulled']:7.2f}x")
    for case in ("cached", "pulled"):
        print(f"  our create jobs, {case}, queued+ran: {' '.join(figures[f'jobs_{case}'])}")
    verdict = "met" if med["ours_cached"] < TARGET_CACHED else "NOT met"
    print(f"  the seed's target: under {TARGET_CACHED:.0f} s with a cached image -> ours "
          f"{med['ours_cached']:.2f} s ({verdict})")


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # so the finally below tears down


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    registry, plat, image = Registry(), None, None
    try:
        registry.start()
        plat = private_platform()
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {plat.admin_token}"
        image = layers.build(plat.docker, registry.host, f"bench-{uuid.uuid4().hex[:6]}",
                             random_bytes=mib * layers.MIB)
        registry.push(plat.docker, image.ref)
        pulled_bytes = plat.docker.api.inspect_image(image.id)["Size"]
        give_credentials(plat, api, registry)
        ours(plat, api, image.ref)  # warm-up: connections, the installation's network
        figures = rounds(plat, api, registry, image, count)
        report(figures, image, pulled_bytes, count)
        return 0
    except NotReady as exc:
        print(f"cannot measure: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("tearing down (containers, images, the platform, the registry) ...", flush=True)
        teardown(plat, registry, image)


def teardown(plat, registry: Registry, image: layers.LayeredImage | None) -> None:
    """Every step is tried even if one before it failed."""
    steps = []
    if plat is not None:
        steps.append(lambda: [plat.docker.api.remove_container(c["Id"], force=True)
                              for c in plat.docker.api.containers(
                                  all=True, filters={"label": RAW_LABEL})])
        steps.append(plat.teardown)
        if image is not None:
            steps.append(lambda: layers.remove([plat.docker], [image.ident]))
    steps.append(registry.stop)
    for step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the later steps must still run
            print(f"teardown: {type(exc).__name__}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
