"""A deployment's merged logs end to end (issue 16, point 2), and the CLI's streams (point
7): every instance on both nodes in one stream, each line with its instance; a replacement
(an instance killed on local, then on n2) is followed from its first line; a scale-out's
new instance too; `logs -f`, `logs --previous` and `deploy logs -f` on the command line.
"""
from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.sse import SseReader, data
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
HTTPD = "harbormaster/busybox-httpd"
TICKING = ["sh", "-c", "echo booted; while :; do echo tick; sleep 0.5; done"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def deploy(api, name: str, replicas: int, command: list) -> None:
    r = api.post("/api/deployments", params={"wait": 90}, json={
        "name": name, "image": HTTPD, "replicas": replicas, "command": command,
        "placement": {"max_per_node": 2},   # spread puts the first two on both nodes
        "restart": {"backoff_initial": 1, "backoff_max": 2}, "update": {"monitor": 0.5}})
    assert r.json()["status"] == "succeeded", r.text


def booted(instance: str):
    return lambda e: e.event == "stdout" and data(e) == {
        "line": "booted", "instance": instance, "node": data(e)["node"]}


def test_merged_logs_follow_replacements_on_both_nodes(api, platform):
    name = unique("merged")
    deploy(api, name, 2, TICKING)
    nodes = {i["name"]: i["node"] for i in api.get(f"/api/deployments/{name}").json()[
        "instances"]}
    assert sorted(nodes.values()) == ["local", "n2"], nodes
    reader = SseReader(f"{platform.url}/api/deployments/{name}/logs", platform.admin_token,
                       params={"follow": "true"})
    assert reader.status == 200, reader.response.text
    try:
        waiting = set(nodes)      # every instance there, each line with its prefix

        def all_booted(event) -> bool:
            if event.event == "stdout" and data(event)["line"] == "booted":
                waiting.discard(data(event)["instance"])
            return not waiting
        reader.until(all_booted, 60, "every instance's first line")
        for node in ("local", "n2"):
            victim = next(n for n, where in nodes.items() if where == node)
            platform.engines[node].containers.get(victim).kill()
            successor = victim.rsplit(".", 1)[0] + ".2"
            got = reader.until(booted(successor), 90, f"the replacement {successor}'s first line")
            lines = [data(e) for _, e in got if e.event == "stdout"]
            assert lines[-1]["node"] == node
            events = [data(e) for _, e in got if e.event == "instance"]
            assert {"instance": victim, "node": node, "state": "ended",
                    "reason": "the container exited with code 137", "exit_code": 137} in events
            assert {"instance": successor, "node": node, "state": "following"} in events
        # a scale-out's instance is followed as well
        api.post(f"/api/deployments/{name}/scale", json={"replicas": 3}, params={"wait": 60})
        reader.until(booted(f"{name}-2.1"), 90, "the scale-out's instance's first line")
    finally:
        reader.close()
    wait_until(lambda: platform.proxy.open_requests(b"follow=1") == 0
               and platform.n2.proxy.open_requests(b"follow=1") == 0, 30,
               "every Docker log stream of the merged follow closed on both nodes")
    # without follow: the lines there now, merged, then the stream ends
    plain = api.get(f"/api/deployments/{name}/logs", headers={"Accept": "text/plain"},
                    params={"tail": "1"})
    assert plain.status_code == 200, plain.text
    prefixes = {line.split(" | ")[0] for line in plain.text.splitlines()}
    assert prefixes == {f"{name}-0.2", f"{name}-1.2", f"{name}-2.1"}, plain.text
    api.delete(f"/api/deployments/{name}", params={"wait": 60})


def cli_env(platform) -> dict:
    return {**os.environ, "HARBORMASTER_URL": platform.url,
            "HARBORMASTER_TOKEN": platform.admin_token}


def test_cli_follows_logs_reads_previous_and_merges_a_deployment(api, platform):
    name = unique("clilogs")
    deploy(api, name, 1, ["sh", "-c", "echo booted; echo to-stderr >&2;"
                                      " while [ ! -e /tmp/crash ]; do echo tick; sleep 0.5; done;"
                                      " echo crashing; exit 3"])
    follower = subprocess.Popen([str(ROOT / "bin" / "harbormaster"), "logs", "-f",
                                 f"{name}-0.1"], env=cli_env(platform),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    merged = subprocess.Popen([str(ROOT / "bin" / "harbormaster"), "deploy", "logs", "-f",
                               name], env=cli_env(platform), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert follower.stdout.readline() == "booted\n"
        assert merged.stdout.readline() == f"{name}-0.1 | booted\n"
        assert api.post(f"/api/containers/{name}-0.1/exec",
                        json={"command": ["touch", "/tmp/crash"]}).status_code == 200
        out, err = follower.communicate(timeout=60)   # ends with the container
        assert out.rstrip().endswith("crashing") and "tick" in out
        assert "to-stderr" in err and "exited with code 3" in err
        assert follower.returncode == 0
        line = ""
        while "booted" not in line or f"{name}-0.2" not in line:
            line = merged.stdout.readline()
            assert line, "the merged follow ended"
    finally:
        for proc in (follower, merged):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
    previous = subprocess.run([str(ROOT / "bin" / "harbormaster"), "logs", "--previous",
                               f"{name}-0.2"], env=cli_env(platform), capture_output=True,
                              text=True, timeout=120)
    assert previous.returncode == 0, previous.stderr
    assert "crashing" in previous.stdout and "booted" in previous.stdout
    wait_until(lambda: platform.proxy.open_requests(b"follow=1") == 0
               and platform.n2.proxy.open_requests(b"follow=1") == 0, 30,
               "the CLI's follows closed once it was stopped")
    api.delete(f"/api/deployments/{name}", params={"wait": 60})


def until_kind(follower: subprocess.Popen, kind: str, name: str) -> str:
    """The first line `events -f` prints for an event of ``kind``."""
    line = ""
    while f" {kind} " not in f" {line} ":
        line = follower.stdout.readline()
        assert line, f"events -f ended: {follower.stderr.read()}"
    assert name in line
    return line


def test_cli_events_follow_reads_the_stream(api, platform):
    """`events -f` prints what happens as it happens (the event stream, not a poll)."""
    name = unique("clievents")
    follower = subprocess.Popen([str(ROOT / "bin" / "harbormaster"), "events", "-f",
                                 "--container", name], env=cli_env(platform),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        # the create may come before or after the CLI's stream opens: it resumes after the
        # newest cursor its page read (GET /api/events's newest), so it misses nothing
        api.job(api.post("/api/containers", json={"image": HTTPD, "name": name,
                                                  "node": "local"}))
        until_kind(follower, "start", name)
        # the page with the start was read: what happens now comes through the stream
        api.job(api.post(f"/api/containers/{name}/stop", params={"timeout": 1}))
        until_kind(follower, "die", name)
    finally:
        os.killpg(follower.pid, signal.SIGTERM)
        follower.wait(timeout=30)
    api.delete(f"/api/containers/{name}", params={"force": "true", "wait": 30})
