"""The harbormaster CLI as a user runs it: a real process (bin/harbormaster) against the real
platform and Docker; every claim checked in Docker or through the API."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
HTTPD = "harbormaster/busybox-httpd"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cli(platform, *args, token: str | None = None, stdin: str | None = None):
    env = {**os.environ, "HARBORMASTER_URL": platform.url,
           "HARBORMASTER_TOKEN": token if token is not None else platform.admin_token}
    return subprocess.run([str(ROOT / "bin" / "harbormaster"), *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=240)


def ok(result) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def running(platform, **labels) -> list:
    return [c for c in platform.containers(**labels) if c.status == "running"]


def test_run_ps_exec_logs_stop_rm_a_container(platform, api):
    name = unique("cli")
    try:
        # -d as docker users type it (run returns once the container runs anyway)
        out = ok(cli(platform, "run", "-d", HTTPD, "--name", name, "-p", "80", "-e", "MODE=cli",
                     "-l", "team=cli", "--memory", "64m", "--", "sh", "-c",
                     "echo hello-cli; exec httpd -f -p 80 -h /www"))
        port = api.get(f"/api/containers/{name}").json()["ports"]["80/tcp"]
        assert f"127.0.0.1:{port}->80/tcp" in out, out
        [docker_c] = running(platform, **{"harbormaster.name": name})
        assert docker_c.labels["team"] == "cli"
        assert docker_c.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200

        listed = json.loads(ok(cli(platform, "--json", "ps")))
        assert [c["state"] for c in listed if c["name"] == name] == ["running"]
        # --json anywhere on the line, as after the subcommand
        listed = json.loads(ok(cli(platform, "ps", "--json")))
        assert [c["state"] for c in listed if c["name"] == name] == ["running"]
        assert name in ok(cli(platform, "ps"))

        result = cli(platform, "exec", name, "--", "sh", "-c", "echo $MODE; exit 3")
        assert result.returncode == 3 and result.stdout.strip() == "cli", result
        # options after the container are the command's, as with docker exec
        assert ok(cli(platform, "exec", name, "echo", "-h", "--json")) == "-h --json\n"
        interactive = cli(platform, "exec", "-it", name, "sh")
        assert interactive.returncode == 2 and "not offered yet" in interactive.stderr, \
            interactive
        assert "hello-cli" in ok(cli(platform, "logs", name, "--tail", "20"))
        shown = ok(cli(platform, "events", "--container", name))
        assert " create " in shown and " start " in shown and " exec " in shown, shown
        kinds = [json.loads(line)["kind"] for line in
                 ok(cli(platform, "--json", "events", "--container", name)).splitlines()]
        assert kinds[:2] == ["create", "start"], kinds
        kinds = [json.loads(line)["kind"] for line in
                 ok(cli(platform, "events", "--container", name, "--json")).splitlines()]
        assert kinds[:2] == ["create", "start"], kinds

        # --since as docker takes it: a duration back from now, or an RFC 3339 time
        shown = ok(cli(platform, "events", "--container", name, "--since", "5m"))
        assert " create " in shown and " start " in shown, shown
        later = datetime.now(timezone.utc) + timedelta(seconds=1)
        ok(cli(platform, "stop", name))
        docker_c.reload()
        assert docker_c.status == "exited"
        kinds = [json.loads(line)["kind"] for line in ok(cli(
            platform, "events", "--container", name, "--since",
            later.isoformat().replace("+00:00", "Z"), "--json")).splitlines()]
        assert "create" not in kinds and "start" not in kinds, kinds
        ok(cli(platform, "rm", name))
        assert not platform.containers(**{"harbormaster.name": name})
    finally:
        api.delete(f"/api/containers/{name}", params={"wait": 60, "force": "true"})


def test_a_job_is_found_by_a_prefix_of_its_id(platform, api):
    name = unique("cliref")
    try:
        job = json.loads(ok(cli(platform, "--json", "run", "--name", name, HTTPD)))
        for ref in (job["id"][:8], job["id"]):
            shown = json.loads(ok(cli(platform, "job", ref)))
            assert shown["id"] == job["id"] and shown["status"] == "succeeded", (ref, shown)
        unused = next(p for p in (uuid.uuid4().hex[:8] for _ in range(100))
                      if not job["id"].startswith(p))
        missing = cli(platform, "job", unused)
        assert missing.returncode == 1 and "not_found" in missing.stderr, missing
    finally:
        api.delete(f"/api/containers/{name}", params={"wait": 60, "force": "true"})


def test_deploy_apply_scale_update_history_rm(platform, api, tmp_path):
    name = unique("clidep")
    label = {"harbormaster.deployment": name}
    manifest = tmp_path / "web.yaml"
    manifest.write_text(f"name: {name}\nimage: {HTTPD}\nreplicas: 2\nmax_replicas: 5\n"
                        "ports: {80/tcp: null}\nupdate: {monitor: 0.5}\n"
                        f"service: {{name: {name}, port: 80}}\n")
    try:
        out = ok(cli(platform, "deploy", "apply", "-f", str(manifest)))
        assert f"deployment {name} created" in out, out
        wait_until(lambda: len(running(platform, **label)) == 2, 60, "2 instances running")
        # discovery: one host:port a line, each answering
        lines = wait_until(lambda: (lambda out: out if len(out) == 2 else None)(
            ok(cli(platform, "endpoints", name)).split()), 30, "2 healthy endpoints")
        for line in lines:
            assert requests.get(f"http://{line}/health", timeout=5).status_code == 200
        assert name in ok(cli(platform, "services"))

        ok(cli(platform, "deploy", "scale", name, "3"))
        wait_until(lambda: len(running(platform, **label)) == 3, 60, "3 instances running")
        listed = json.loads(ok(cli(platform, "deploy", "ls", "--json")))
        assert [d["replicas"] for d in listed if d["name"] == name] == [3]

        # the same manifest with another image: an update (a rollout to generation 2);
        # its replicas (2) are declared too, so the count follows the manifest
        manifest.write_text(manifest.read_text().replace(HTTPD, f"{HTTPD}:v2"))
        assert f"deployment {name} updated" in ok(cli(platform, "deploy", "apply", "-f",
                                                      str(manifest)))
        wait_until(lambda: sorted(c.image.tags[0] for c in running(platform, **label))
                   == [f"{HTTPD}:v2"] * 2, 90, "2 instances of v2")
        shown = json.loads(ok(cli(platform, "--json", "deploy", "get", name)))
        assert shown["generation"] == 2 and shown["image"] == f"{HTTPD}:v2"
        history = json.loads(ok(cli(platform, "--json", "deploy", "history", name)))
        assert sorted(r["generation"] for r in history) == [1, 2]

        # an image that exits at once: the rollout fails, the platform rolls back, and
        # the CLI (following the job to its end) prints the job's error with exit code 1
        broken = tmp_path / "broken.yaml"
        broken.write_text(manifest.read_text().replace(f"{HTTPD}:v2", "harbormaster/busybox-exit"))
        failed = cli(platform, "deploy", "apply", "-f", str(broken), "--timeout", "120")
        assert failed.returncode == 1, failed
        assert "rollout of generation 3 failed" in failed.stderr and "rolling back" in \
            failed.stderr, failed.stderr
        assert api.get(f"/api/deployments/{name}").json()["image"] == f"{HTTPD}:v2"

        ok(cli(platform, "deploy", "rm", name))
        assert not platform.containers(**label)
        assert api.get(f"/api/deployments/{name}").status_code == 404
    finally:
        api.delete(f"/api/deployments/{name}", params={"wait": 60})


CHECK = {"type": "http", "path": "/health", "port": 80, "interval": 1, "timeout": 1,
         "healthy_threshold": 1, "unhealthy_threshold": 2}


def answering(containers) -> list:
    """The containers whose published port 80 answers /health with 200 right now."""
    out = []
    for container in containers:
        container.reload()
        published = (container.attrs["NetworkSettings"]["Ports"] or {}).get("80/tcp") or []
        try:
            if published and requests.get(f"http://127.0.0.1:{published[0]['HostPort']}"
                                          "/health", timeout=5).status_code == 200:
                out.append(container)
        except requests.RequestException:
            pass
    return out


def test_deploy_scale_returns_once_every_instance_is_ready(platform, api):
    # no wait_until after the command: when it returns, Docker and the instances are there
    name = unique("cliwait")
    label = {"harbormaster.deployment": name}
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": 1, "ports": {"80/tcp": None},
        "health_check": CHECK, "update": {"monitor": 0.5}})
    assert r.json()["status"] == "succeeded", r.text
    try:
        out = ok(cli(platform, "deploy", "scale", name, "5"))
        assert len(answering(running(platform, **label))) == 5, out
        status = api.get(f"/api/deployments/{name}").json()["status"]
        assert status["ready"] == status["desired"] == 5, status
        assert "5/5 ready" in out, out
        ok(cli(platform, "deploy", "scale", name, "2"))
        assert len(running(platform, **label)) == 2
        # --no-wait names the job; `job <prefix> --wait` follows it to the same end
        out = ok(cli(platform, "deploy", "scale", name, "3", "--no-wait"))
        ref = re.search(r"job ([0-9a-f]{8}) queued", out).group(1)
        assert json.loads(ok(cli(platform, "job", ref, "--wait")))["status"] == "succeeded"
        assert len(answering(running(platform, **label))) == 3
        # --timeout stops following, not the job (0 s: the 202 answer's job is still queued)
        cut = cli(platform, "deploy", "restart", name, "--timeout", "0")
        assert cut.returncode == 1 and "it goes on" in cut.stderr, cut
        ref = re.search(r"harbormaster job ([0-9a-f]{8}) --wait", cut.stderr).group(1)
        assert json.loads(ok(cli(platform, "job", ref, "--wait")))["status"] == "succeeded"
    finally:
        api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_deploy_apply_of_a_missing_image_fails_with_the_jobs_error(platform, api, tmp_path):
    name = unique("clinoimg")
    # a registry on a loopback port nothing listens on: the pull fails without leaving the host
    image = f"127.0.0.1:9/hm-missing/m{uuid.uuid4().hex[:6]}:v9"
    manifest = tmp_path / "missing.yaml"
    manifest.write_text(f"name: {name}\nimage: {image}\nreplicas: 3\n")
    try:
        started = time.monotonic()
        failed = cli(platform, "deploy", "apply", "-f", str(manifest), "--timeout", "120")
        print(f"deploy apply of a missing image ended after {time.monotonic() - started:.1f}s:"
              f" {failed.stderr.strip()}")
        assert failed.returncode == 1, failed
        # the job's own error, not a timeout of the CLI's
        assert "0 of 3 created" in failed.stderr and image in failed.stderr, failed.stderr
        assert "not ready after" not in failed.stderr, failed.stderr
    finally:
        api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_errors_are_one_line_with_exit_code_1(platform):
    missing = cli(platform, "logs", unique("nosuch"))
    assert missing.returncode == 1 and missing.stderr.startswith("harbormaster: not_found"), \
        missing
    assert "Traceback" not in missing.stderr
    denied = cli(platform, "ps", token="not-a-token")
    assert denied.returncode == 1 and "unauthorized" in denied.stderr, denied
    refused = cli(platform, "run", HTTPD, "-p", "0.0.0.0:80:80")
    assert refused.returncode == 1 and "host address is set by the server" in refused.stderr
    unreachable = subprocess.run([str(ROOT / "bin" / "harbormaster"), "ps"], capture_output=True,
                                 text=True, timeout=60,
                                 env={**os.environ, "HARBORMASTER_URL": "http://127.0.0.1:9",
                                      "HARBORMASTER_TOKEN": "x"})
    assert unreachable.returncode == 1 and "cannot reach Harbormaster" in unreachable.stderr


def test_endpoints_without_an_answer_exit_1_saying_why(platform, api):
    nosuch = unique("nosuch")
    for args in (("endpoints", nosuch), ("endpoints", nosuch, "--all"),
                 ("endpoints", nosuch, "--json")):
        missing = cli(platform, *args)
        assert missing.returncode == 1 and missing.stdout == "", (args, missing)
        assert f"no endpoints registered for service {nosuch}" in missing.stderr, missing
    # registered but not healthy: a ttl check that is never renewed goes critical
    name = unique("clittl")
    endpoint = api.post("/api/services/register", json={
        "name": name, "address": "127.0.0.1", "port": 9, "check": {"type": "ttl", "ttl": 1}})
    assert endpoint.status_code == 201, endpoint.text
    try:
        unhealthy = wait_until(lambda: (lambda r: r if r.returncode == 1 else None)(
            cli(platform, "endpoints", name)), 60, "the ttl endpoint to go critical")
        assert f"service {name}: 1 endpoint registered, none healthy" in unhealthy.stderr, \
            unhealthy
        assert ok(cli(platform, "endpoints", name, "--all")).split() == ["127.0.0.1:9"]
    finally:
        api.delete(f"/api/services/{endpoint.json()['id']}")


def test_tokens_create_use_and_revoke(platform):
    name = unique("clitok")
    created = cli(platform, "tokens", "create", name, "--role", "viewer", "--expires-in", "1h")
    secret = ok(created).strip()
    assert "not shown again" in created.stderr
    ok(cli(platform, "ps", token=secret))
    forbidden = cli(platform, "run", HTTPD, token=secret)
    assert forbidden.returncode == 1 and "forbidden" in forbidden.stderr, forbidden
    [row] = [t for t in json.loads(ok(cli(platform, "--json", "tokens", "ls")))
             if t["name"] == name]
    assert row["role"] == "viewer" and secret not in json.dumps(row)
    ok(cli(platform, "tokens", "revoke", row["id"]))
    revoked = cli(platform, "ps", token=secret)
    assert revoked.returncode == 1 and "unauthorized" in revoked.stderr, revoked


def test_scaling_apply_decisions_and_rm(platform, api, tmp_path):
    name = unique("cliscale")
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": HTTPD, "replicas": 1, "update": {"monitor": 0.5}})
    assert r.json()["status"] == "succeeded", r.text
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"deployment: {name}\nmax_replicas: 5\nscale_up_cooldown: 0\n"
                      "scale_down_cooldown: 0\nstabilization_window: 0\nmetrics:\n"
                      "  - {type: custom, name: requests_per_second, target: 100}\n")
    try:
        out = ok(cli(platform, "scaling", "apply", "-f", str(policy)))
        assert f"policy for {name} created" in out and "requests_per_second 100" in out, out
        assert api.post(f"/api/deployments/{name}/metrics",
                        json={"name": "requests_per_second", "value": 350}).status_code == 200
        wait_until(lambda: api.get(f"/api/deployments/{name}").json()["replicas"] == 4, 30,
                   "scaled out to 4")
        made = json.loads(ok(cli(platform, "--json", "scaling", "decisions", "--deployment",
                                 name, "--since", "10m")))
        assert any(d["applied"] and "ceil(350/100) = 4" in d["reason"] for d in made), made
        assert "ceil(350/100) = 4" in ok(cli(platform, "scaling", "decisions", "--deployment",
                                             name))
        policy.write_text(policy.read_text().replace("target: 100", "target: 50"))
        assert f"policy for {name} replaced" in ok(cli(platform, "scaling", "apply", "-f",
                                                       str(policy)))
        [listed] = [p for p in json.loads(ok(cli(platform, "--json", "scaling", "ls")))
                    if p["deployment"] == name]
        assert listed["metrics"][0]["target"] == 50
        ok(cli(platform, "scaling", "rm", name))
        assert name not in [p["deployment"] for p in api.get("/api/scaling/policies").json()
                            ["items"]]
        again = cli(platform, "scaling", "rm", name)
        assert again.returncode == 1 and "has no scaling policy" in again.stderr
    finally:
        api.delete(f"/api/deployments/{name}", params={"wait": 60})
