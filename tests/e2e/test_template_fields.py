"""Two template fields users expect, through the API, the CLI and Docker: working_dir (the
directory the command runs in) and stop_signal (what a stop sends first). On a deployment,
changing either is a new generation that rolls out."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"
ROOT = Path(__file__).resolve().parents[2]
# logs the signal it got, then exits (docker-init, PID 1, forwards signals to it)
TRAPS = ("for s in TERM INT USR1 HUP; do trap \"echo got $s; exit 0\" $s; done; "
         "echo ready; while :; do sleep 0.1; done")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def cli(platform, *args) -> str:
    env = {**os.environ, "HARBORMASTER_URL": platform.url,
           "HARBORMASTER_TOKEN": platform.admin_token}
    result = subprocess.run([str(ROOT / "bin" / "harbormaster"), *args], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def pwd(api, container: str) -> str:
    r = api.post(f"/api/containers/{container}/exec", json={"command": ["pwd"]})
    assert r.status_code == 200, r.text
    return r.json()["output"].strip()


def test_a_container_runs_in_its_working_dir_and_stops_with_its_signal(api, platform):
    name = unique("fields")
    cli(platform, "run", "--name", name, "-w", "/www", "--stop-signal", "SIGUSR1", HTTPD,
        "--", "sh", "-c", TRAPS)
    inspected = platform.inspect(name)
    assert inspected["Config"]["WorkingDir"] == "/www"
    assert inspected["Config"]["StopSignal"] == "SIGUSR1"
    assert pwd(api, name) == "/www"
    wait_until(lambda: "ready" in platform.container_logs(name), 20, "traps set")
    cli(platform, "stop", name)
    logs = platform.container_logs(name)
    assert "got USR1" in logs and "got TERM" not in logs, logs
    api.job(api.delete(f"/api/containers/{name}", params={"force": "true"}))


def test_changing_working_dir_or_stop_signal_rolls_a_deployment_out(api, platform):
    name = unique("fields-dep")
    api.job(api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": 1, "command": ["sh", "-c", TRAPS],
        "working_dir": "/www", "update": {"monitor": 0.5}}))
    dep = api.get(f"/api/deployments/{name}").json()
    assert dep["generation"] == 1 and dep["working_dir"] == "/www"
    assert pwd(api, dep["instances"][0]["name"]) == "/www"

    api.job(api.patch(f"/api/deployments/{name}", json={"working_dir": "/bin"},
                      params={"wait": 60}))
    dep = api.get(f"/api/deployments/{name}").json()
    assert dep["generation"] == 2 and dep["working_dir"] == "/bin"
    (instance,) = [i for i in dep["instances"] if i["state"] == "running"]
    assert instance["generation"] == 2 and pwd(api, instance["name"]) == "/bin"

    api.job(api.patch(f"/api/deployments/{name}", json={"stop_signal": "SIGHUP"},
                      params={"wait": 60}))
    dep = api.get(f"/api/deployments/{name}").json()
    assert dep["generation"] == 3 and dep["stop_signal"] == "SIGHUP"
    (instance,) = [i for i in dep["instances"] if i["state"] == "running"]
    assert platform.inspect(instance["id"])["Config"]["StopSignal"] \
        == "SIGHUP"
    history = api.get(f"/api/deployments/{name}/history").json()["items"]
    assert [h["cause"] for h in history] == ["update", "update", "create"]
    api.job(api.delete(f"/api/deployments/{name}", params={"wait": 60}))


def test_bad_values_are_refused(api):
    for body in ({"working_dir": "relative/dir"}, {"stop_signal": "SIG TERM"}):
        r = api.post("/api/containers", json={"image": HTTPD, **body})
        assert r.status_code == 422, r.text
        assert next(iter(body)) in r.json()["fields"].__repr__()
