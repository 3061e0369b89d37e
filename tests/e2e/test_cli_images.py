"""The image and registry commands as a user runs them (bin/harbormaster against the session's
two-node platform and the real registry on 127.0.0.1): image ls/tag/rm/prune with what
Docker holds, a removal refused naming the deployment, registry login (the password from
stdin only) / ls / rm, a pull over a throttled link whose progress bar moves with the job's
bytes, a push to the registry, and failed jobs as one line with exit code 1."""
from __future__ import annotations

import json
import os
import re
import subprocess

import docker
import pytest

from tests.e2e.test_cli import ROOT, cli, ok, unique
from tests.e2e.test_images_api import deploy_on_local, listed
from tests.support import layers
from tests.support.platform import free_port

pytestmark = pytest.mark.e2e
# rich's DownloadColumn: "3.1/25.2 MB"
TRANSFER = re.compile(r"(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) ([kMG]?B)\b")


def cli_with(platform, env: dict, *args):
    """bin/harbormaster with more environment (test_cli's ``cli`` with ``env`` on top)."""
    return subprocess.run([str(ROOT / "bin" / "harbormaster"), *args], env={
        **os.environ, "HARBORMASTER_URL": platform.url,
        "HARBORMASTER_TOKEN": platform.admin_token, **env},
        capture_output=True, text=True, timeout=240)


def failed_line(result, *said: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    line = result.stderr.strip()
    assert line.startswith("harbormaster: ") and len(line.splitlines()) == 1, line
    assert all(s in line for s in said), (said, line)
    return line


@pytest.fixture
def local_image(platform):
    image = layers.build(platform.docker, f"127.0.0.1:{free_port()}", random_bytes=4096)
    yield image
    errors = layers.remove(platform.engines.values(), [image.ident])
    assert not errors, errors


@pytest.fixture
def logged_out(api):
    """Registries a test logs in to, forgotten after it."""
    names: list[str] = []
    yield names
    for name in names:
        api.delete(f"/api/registries/{name}")


def test_image_ls_tag_and_rm_as_docker_users_type_them(platform, api, local_image):
    ref, short = local_image.ref, local_image.id[7:19]
    repository, tag = ref.rsplit(":", 1)
    listed(api, ref, "local")
    shown = json.loads(ok(cli(platform, "image", "ls", "--node", "local", "--json")))
    assert {i["node"] for i in shown} == {"local"}
    assert [i["tags"] for i in shown if i["id"] == local_image.id] == [[ref]], shown
    [row] = [line.split() for line in ok(cli(platform, "image", "ls")).splitlines()
             if short in line]
    assert row[:4] == ["local", repository, tag, short], row

    alias = f"{repository}:alias"
    out = ok(cli(platform, "image", "tag", ref, alias, "--node", "local"))
    assert out.strip() == f"tagged {ref} as {alias} on local", out
    assert platform.docker.images.get(alias).id == local_image.id
    assert ok(cli(platform, "image", "rm", alias)).strip() == f"{alias} removed from local"
    with pytest.raises(docker.errors.ImageNotFound):
        platform.docker.images.get(alias)

    name = unique("cliimg")
    try:
        deploy_on_local(api, name, ref)
        failed_line(cli(platform, "image", "rm", ref), "conflict", name)
        failed_line(cli(platform, "image", "rm", "-f", ref), "conflict", "running", name)
        # removing is the admin's; reading is everyone's
        viewer = api.post("/api/tokens", json={"name": unique("v"), "role": "viewer"}).json()
        failed_line(cli(platform, "image", "rm", ref, token=viewer["token"]), "forbidden")
        assert short in ok(cli(platform, "image", "ls", token=viewer["token"]))
    finally:
        api.delete(f"/api/deployments/{name}", params={"wait": 60})
    assert ok(cli(platform, "image", "rm", ref)).strip() == f"{ref} removed from local"
    with pytest.raises(docker.errors.ImageNotFound):
        platform.docker.images.get(local_image.id)
    failed_line(cli(platform, "image", "rm", ref), "not_found", ref)
    failed_line(cli(platform, "image", "tag", "Bad/Ref", "x"), "validation_failed", "source")


def test_registry_login_takes_the_password_from_stdin_only(platform, api, logged_out):
    password = f"pw-{unique('secret')}"
    server = f"{unique('reg')}.local:5000"
    logged_out.append(server)
    out = ok(cli(platform, "registry", "login", server, "-u", "team", "--password-stdin",
                 stdin=password + "\n"))
    assert out.strip() == f"credentials for {server} stored (user team)", out
    assert platform.sql("SELECT password FROM registry_credentials WHERE registry = %s",
                        (server,)) == [(password,)]  # the trailing newline is not kept
    # never an argument: a password on the line is a usage error
    for extra in ([password], ["-p", password], [f"--password={password}"]):
        refused = cli(platform, "registry", "login", server, "-u", "team", *extra)
        assert refused.returncode == 2 and "--password-stdin" in refused.stderr, refused
        assert password not in refused.stderr + refused.stdout, refused
    [row] = [line.split() for line in ok(cli(platform, "registry", "ls")).splitlines()
             if line.startswith(server)]
    assert row[:3] == [server, "team", "admin"], row
    shown = json.loads(ok(cli(platform, "registry", "ls", "--json")))
    assert [r["username"] for r in shown if r["registry"] == server] == ["team"]
    assert password not in json.dumps(shown)
    operator = api.post("/api/tokens", json={"name": unique("op"), "role": "operator"}).json()
    failed_line(cli(platform, "registry", "ls", token=operator["token"]), "forbidden")
    failed_line(cli(platform, "registry", "login", "myregistry", "-u", "u", "--password-stdin",
                    stdin="x"), "validation_failed", "registry")
    failed_line(cli(platform, "registry", "login", server, "-u", "u", "--password-stdin",
                    stdin="\n"), "no password")
    assert ok(cli(platform, "registry", "rm", server)).strip() == \
        f"credentials for {server} removed"
    failed_line(cli(platform, "registry", "rm", server), "not_found", server)


def test_a_failed_pull_exits_1_with_each_nodes_reason(platform):
    ref = f"127.0.0.1:{free_port()}/hm-test/absent:v1"  # nothing listens there
    line = failed_line(cli(platform, "image", "pull", ref, "--node", "n2"), "pull on n2 failed")
    assert ref in line, line
    line = failed_line(cli(platform, "image", "pull", ref), "pull on local failed",
                       "pull on n2 failed")
    failed_line(cli(platform, "image", "pull", ref, "--node", "nosuch"), "not_found", "nosuch")
    queued = ok(cli(platform, "image", "pull", ref, "--node", "n2", "--no-wait"))
    assert queued.startswith("pull on n2: job "), queued


def test_pull_shows_a_moving_progress_bar_and_push_reaches_the_registry(
        platform, api, registry, throttle, make_image, logged_out):
    image = make_image(random_bytes=24 * layers.MIB)
    through = image.at(throttle.host)
    for host in (throttle.host, registry.host):
        logged_out.append(host)
        ok(cli(platform, "registry", "login", host, "-u", registry.username,
               "--password-stdin", stdin=registry.password))
    # a terminal as far as rich can tell: the bar is drawn on stderr as it moves
    tty = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "160"}
    pulled = cli_with(platform, tty, "image", "pull", through, "--node", "n2")
    throttle.check()
    out = ok(pulled)
    assert out.strip().startswith(f"{through} pulled on n2: "), out
    assert platform.engines["n2"].images.get(through).id == image.id
    figures = [(float(done), float(total), unit)
               for done, total, unit in TRANSFER.findall(pulled.stderr)]
    between = {figure for figure in figures if 0 < figure[0] < figure[1]}
    print(f"[progress] the bar drew {len(between)} distinct figures between 0 and the total: "
          f"{sorted(between)[:8]}")
    assert len(between) >= 3, (figures, pulled.stderr[-2000:])
    assert registry.password not in pulled.stderr + pulled.stdout

    # push: a new name in the registry, from n2, where the pull left it
    target = registry.ref(f"hm-test/cli-{unique('push')}", "v1")
    ok(cli(platform, "image", "tag", through, target, "--node", "n2"))
    pushed = ok(cli(platform, "image", "push", target, "--node", "n2"))
    repository = target.split("/", 1)[1].rsplit(":", 1)[0]
    digest = registry.manifest_digest(repository, "v1")
    assert digest and pushed.strip().startswith(f"{target} pushed on n2: {digest}"), pushed

    # a wrong password: the job fails with the registry's reason, exit 1
    ok(cli(platform, "registry", "login", registry.host, "-u", registry.username,
           "--password-stdin", stdin="not-the-password"))
    other = registry.ref(f"hm-test/cli-{unique('denied')}", "v1")
    ok(cli(platform, "image", "tag", through, other, "--node", "n2"))
    failed_line(cli(platform, "image", "push", other, "--node", "n2"), "push on n2 failed",
                "unauthorized")


def test_prune_removes_what_this_installation_pulled_and_nothing_uses(
        platform, api, registry, make_image, logged_out):
    image = make_image(random_bytes=layers.MIB)
    logged_out.append(registry.host)
    ok(cli(platform, "registry", "login", registry.host, "-u", registry.username,
           "--password-stdin", stdin=registry.password))
    ok(cli(platform, "image", "pull", image.ref, "--node", "n2"))
    assert platform.engines["n2"].images.get(image.ref).id == image.id
    operator = api.post("/api/tokens", json={"name": unique("op"), "role": "operator"}).json()
    failed_line(cli(platform, "image", "prune", "--node", "n2", token=operator["token"]),
                "forbidden")
    out = ok(cli(platform, "image", "prune", "--node", "n2"))
    assert out.startswith("n2: removed "), out
    with pytest.raises(docker.errors.ImageNotFound):
        platform.engines["n2"].images.get(image.ref)
    # the platform's own images stay
    assert platform.engines["n2"].images.get("harbormaster/busybox-httpd")
