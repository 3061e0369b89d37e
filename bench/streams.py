"""Live streams (issue 16): how soon a followed log line arrives, and what 50 open
followers cost the ordinary requests, in one run on a private platform.

A private platform (one node, two web processes, 25 streams each: 50 in all) is started.
1. Line delay: a container prints a numbered line every 0.2 s; one client follows its log
   through web, Redis and the node's agent (``GET /api/containers/<ref>/logs?follow=true&
   timestamps=true``); each line's delay is its arrival minus Docker's timestamp of it.
   Prints the median and p99 (the target: within 1 s).
2. GET /api/health latency: ``requests`` sequential requests without followers and as many
   with 50 followers open (10 on each of 5 containers that print a line a second; a
   follower refused at a full process tries again and lands on the other), in interleaved
   rounds (other platforms share this machine: its load drifts), and in each round the
   51st follower, past every process's cap, which must get 503. The followers read in a
   process of their own (``--followers``), so their threads do not slow the measuring
   client. Prints p50/p99 of both and their ratio (the target: p99 within 20 %).
Everything is removed in the end, on Ctrl-C or SIGTERM too.
Usage: python bench/streams.py [lines] [requests]
"""
from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

import requests

from common import percentile, private_platform
from core.streams import stamp_seconds
from tests.support.sse import SseReader, data

HTTPD = "harbormaster/busybox-httpd"
WEB_WORKERS, CAP = 2, 25
FOLLOWERS, SOURCES = 50, 5


def run(plat, api: requests.Session, name: str, command: list) -> None:
    r = api.post(f"{plat.url}/api/containers", params={"wait": 60}, timeout=90,
                 json={"image": HTTPD, "name": name, "command": command})
    assert r.json().get("status") == "succeeded", r.text


def line_delays(plat, api, lines: int) -> list[float]:
    name = f"bench-tick-{uuid.uuid4().hex[:6]}"
    run(plat, api, name, ["sh", "-c", "i=0; while :; do i=$((i+1)); echo line $i;"
                                      " sleep 0.2; done"])
    reader = SseReader(f"{plat.url}/api/containers/{name}/logs", plat.admin_token,
                       params={"follow": "true", "timestamps": "true", "tail": "0"})
    assert reader.status == 200, reader.response.text
    delays = []
    try:
        while len(delays) < lines:
            arrival, event = reader.next(30)
            if event is not None and event.event == "stdout":
                delays.append(arrival - stamp_seconds(data(event)["time"]))
    finally:
        reader.close()
    return delays


def health_latencies(plat, api, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        r = api.get(f"{plat.url}/api/health", timeout=30)
        out.append(time.perf_counter() - started)
        assert r.status_code == 200, r.text
    return out


def open_followers(url: str, token: str, sources: list[str]) -> tuple[list[SseReader], int]:
    """FOLLOWERS followers spread over ``sources``; (the readers, 503s met on the way)."""
    readers, refused = [], 0
    for i in range(FOLLOWERS):
        for _ in range(60):
            reader = SseReader(f"{url}/api/containers/{sources[i % len(sources)]}/logs",
                               token, params={"follow": "true", "tail": "0"})
            if reader.status == 200:
                readers.append(reader)
                break
            assert reader.status == 503, reader.response.text
            refused += 1
            time.sleep(0.2)   # a full process; the next connection may land on the other
        else:
            raise RuntimeError(f"follower {i} refused 60 times")
    return readers, refused


def keep_reading(readers: list[SseReader], stop: threading.Event) -> None:
    """Drain every follower's queue (they receive a line a second each)."""
    while not stop.is_set():
        for reader in readers:
            while not reader.events.empty():
                reader.next(1)
        stop.wait(0.5)


def report(delays: list[float], alone: list[float], loaded: list[float], refused: int,
           past_cap: list[int]) -> None:
    print(f"followed log line delay (arrival - Docker's timestamp), {len(delays)} lines:")
    print(f"  median {statistics.median(delays) * 1000:.1f} ms, p99 "
          f"{percentile(delays, 99) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms "
          f"(target: within 1 s)")
    print(f"GET /api/health, {len(alone)} sequential requests each way, "
          f"{len(past_cap)} interleaved rounds:")
    for label, values in (("without followers", alone), (f"with {FOLLOWERS} followers", loaded)):
        print(f"  {label:22} p50 {percentile(values, 50) * 1000:6.1f} ms   p99 "
              f"{percentile(values, 99) * 1000:6.1f} ms")
    ratio = percentile(loaded, 99) / percentile(alone, 99)
    verdict = "met" if ratio <= 1.2 else "NOT met"
    print(f"  p99 with / without: {ratio:.2f} (target: within 20 % -> {verdict})")
    print(f"  {refused} 503s met while opening {FOLLOWERS} followers {len(past_cap)} times over "
          f"{WEB_WORKERS} processes of {CAP} streams; the {FOLLOWERS + 1}st follower: HTTP "
          f"{', '.join(map(str, past_cap))}")


def followers_process(url: str, token: str, sources: list[str]) -> None:
    """``--followers``: open them, say "ready <503s>", read until stdin closes, leave."""
    readers, refused = open_followers(url, token, sources)
    stop = threading.Event()
    drain = threading.Thread(target=keep_reading, args=(readers, stop), daemon=True)
    drain.start()
    print(f"ready {refused}", flush=True)
    sys.stdin.read()
    stop.set()
    drain.join(timeout=10)
    for reader in readers:
        reader.close()


def with_followers(plat, api, sources: list[str], count: int) -> tuple[list, int, int]:
    """Health latencies with FOLLOWERS open; the 503s met opening them; the status of one
    more follower."""
    child = subprocess.Popen([sys.executable, __file__, "--followers", plat.url,
                              plat.admin_token, *sources], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        ready = child.stdout.readline().split()
        assert ready and ready[0] == "ready", f"the followers' process: {ready}"
        time.sleep(3)   # every follower's agent stream open and flowing
        loaded = health_latencies(plat, api, count)
        extra = requests.get(f"{plat.url}/api/containers/{sources[0]}/logs", timeout=30,
                             params={"follow": "true"}, stream=True,
                             headers={"Authorization": f"Bearer {plat.admin_token}"})
        past_cap = extra.status_code
        extra.close()
    finally:
        child.stdin.close()
        child.wait(timeout=120)
    time.sleep(3)   # the agent closes their Docker streams
    return loaded, int(ready[1]), past_cap


def measure(plat, lines: int, count: int, rounds: int = 4) -> None:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {plat.admin_token}"
    delays = line_delays(plat, api, lines)
    sources = [f"bench-src-{i}-{uuid.uuid4().hex[:4]}" for i in range(SOURCES)]
    for name in sources:
        run(plat, api, name, ["sh", "-c", "while :; do echo tick; sleep 1; done"])
    health_latencies(plat, api, 20)   # warm-up
    alone, loaded, refused, past_cap = [], [], 0, []
    for _ in range(rounds):
        alone += health_latencies(plat, api, count // rounds)
        got, met, status = with_followers(plat, api, sources, count // rounds)
        loaded += got
        refused += met
        past_cap.append(status)
    report(delays, alone, loaded, refused, past_cap)


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")   # so the finally below tears down


def main() -> int:
    if sys.argv[1:2] == ["--followers"]:
        followers_process(sys.argv[2], sys.argv[3], sys.argv[4:])
        return 0
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    plat = None
    try:
        plat = private_platform(HARBORMASTER_WEB_WORKERS=str(WEB_WORKERS),
                                HARBORMASTER_STREAM_CAP=str(CAP))
        measure(plat, lines, count)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("tearing down (containers, the platform) ...", flush=True)
        if plat is not None:
            plat.teardown()


if __name__ == "__main__":
    sys.exit(main())
