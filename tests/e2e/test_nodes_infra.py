"""The session's two nodes: the second engine answers, both nodes registered by their own
agents with what their engines say, one live agent per node name, `make node`'s refusals, a
container placed on n2 running on the second engine, reachable on loopback; and (last) the
helpers that kill n2 or only its engine and bring it back."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from ops import images
from tests.support.leftovers import pid_alive
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
HTTPD = "harbormaster/busybox-httpd"


def test_the_second_engine_answers_with_its_own_roots_and_the_test_images(platform):
    engines = platform.engines
    assert set(engines) == {"local", "n2"}
    assert engines["n2"].ping()
    first, second = engines["local"].info(), engines["n2"].info()
    assert second["ID"] != first["ID"]
    assert second["DockerRootDir"] == str(platform.n2.engine.data_root)
    assert str(platform.n2.engine.socket) != "/var/run/docker.sock"
    for ref in images.IMAGES:
        assert engines["n2"].images.get(ref).id == engines["local"].images.get(ref).id, ref


def node_row(platform, name: str) -> dict:
    rows = platform.sql("SELECT docker_ok, extract(epoch FROM now() - heartbeat_at), cpus,"
                        " memory_bytes, docker_version, labels, address, agent_pid"
                        " FROM nodes WHERE name = %s", (name,))
    assert rows, f"node {name} is not registered"
    keys = ("docker_ok", "age", "cpus", "memory", "version", "labels", "address", "agent_pid")
    return dict(zip(keys, rows[0]))


def test_both_nodes_registered_by_their_agents_with_what_docker_info_says(platform):
    agents = {"local": platform.program_pid("agent"), "n2": platform.n2_pid("agent")}
    for name, client in platform.engines.items():
        info = client.info()
        # a beat every second in the test profile: fresh means well under the stale limit
        row = wait_until(lambda: (r := node_row(platform, name))["age"] < 3 and r, 10,
                         f"{name}'s heartbeat fresh")
        print(f"[nodes] {name}: {row}")
        assert row["docker_ok"] is True
        assert (row["cpus"], row["memory"], row["version"]) == (
            info["NCPU"], info["MemTotal"], info["ServerVersion"])
        assert row["agent_pid"] == agents[name]
        assert row["address"] == "127.0.0.1"
    assert node_row(platform, "n2")["labels"] == {"zone": "b"}
    assert node_row(platform, "local")["labels"] == {}


def test_a_second_agent_claiming_n2_exits_saying_another_agent_claims_it(platform):
    env = platform.n2.process_env("agent")
    assert env["HARBORMASTER_NODE"] == "n2" and env["DOCKER_HOST"] == platform.n2.proxy.url
    log = platform.data / "logs" / "agent-claim.log"  # read as the agent's by the fault check
    platform.expect_log("agent", r"another live agent claims node 'n2'")
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workers.agent"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    print(f"[claim] exit {code}: {output.strip()}")
    assert code != 0
    assert "another live agent claims node 'n2'" in output
    # the node is still the first agent's
    row = wait_until(lambda: (r := node_row(platform, "n2"))["age"] < 3 and r, 10, "n2 beats")
    assert row["agent_pid"] == platform.n2_pid("agent")


def run_node_command(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops", "node"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_make_node_refuses_no_name_a_running_node_and_a_live_agents_name(platform):
    base = {k: v for k, v in platform.n2.command_env.items() if k != "HARBORMASTER_NODE"}
    unnamed = run_node_command(base)
    assert unnamed.returncode != 0 and "HARBORMASTER_NODE is not set" in unnamed.stderr

    again = run_node_command({**base, "HARBORMASTER_NODE": "n2"})
    assert again.returncode != 0, again.stdout
    assert "node n2 already runs here" in again.stderr, again.stderr

    # 'local' is the node the platform itself runs: its agent holds the name's claim
    local = run_node_command({**base, "HARBORMASTER_NODE": "local",
                              "DOCKER_HOST": platform.proxy.url})
    print(f"[make node] {local.stderr.strip()}")
    assert local.returncode != 0, local.stdout
    assert "node 'local' has a live agent already" in local.stderr
    assert "would refuse to start" in local.stderr
    assert not (platform.data / "nodes" / "local" / "supervisord.pid").exists()


def test_a_container_created_for_n2_runs_on_the_second_engine_and_answers(api, platform):
    name = f"on-n2-{uuid.uuid4().hex[:8]}"
    job = api.job(api.post("/api/containers", json={
        "image": HTTPD, "name": name, "node": "n2", "ports": {"80/tcp": None}}))
    try:
        cid, port = job["result"]["container_id"], job["result"]["ports"]["80/tcp"]
        inspected = platform.engines["n2"].api.inspect_container(cid)
        assert inspected["State"]["Running"] and inspected["Name"] == f"/{name}"
        assert inspected["Config"]["Labels"]["harbormaster.node"] == "n2"
        assert not platform.engines["local"].api.containers(all=True, filters={"name": name})
        assert [c.node for c in platform.containers(**{"harbormaster.name": name})] == ["n2"]
        reply = wait_until(lambda: _get(f"http://127.0.0.1:{port}/version"), 20,
                           "the container on n2 answers on its published port")
        assert reply.status_code == 200 and reply.text.strip() == "v1"
    finally:
        api.job(api.delete(f"/api/containers/{name}", params={"force": "true"}))
    assert not platform.engines["n2"].api.containers(all=True, filters={"name": name})


def _get(url: str):
    try:
        return requests.get(url, timeout=2)
    except requests.RequestException:
        return None


@pytest.mark.disruptive
def test_n2_engine_killed_its_agent_reports_docker_down_then_back(platform):
    agent = platform.n2_pid("agent")
    # n2's job actors fail while its engine is away (and are retried): its executor logs each
    platform.expect_log("executor", r"\[ERROR\] Failed to process message [\s\S]*"
                                    r"docker engine unreachable")
    platform.n2.kill_engine()
    try:
        assert not platform.n2.engine.answers()
        wait_until(lambda: node_row(platform, "n2")["docker_ok"] is False, 30,
                   "n2's agent reports Docker down")
        assert platform.n2_pid("agent") == agent  # the agent lives on
        assert {c.node for c in platform.containers()} <= {"local"}
    finally:
        platform.n2.revive()
    row = wait_until(lambda: (r := node_row(platform, "n2"))["docker_ok"] and r["age"] < 3
                     and r, 30, "n2's agent reports Docker up")
    assert row["agent_pid"] == agent and platform.engines["n2"].ping()
    # the second engine started again left the first engine's bridge alone (dockerd 20.10
    # deletes the interface named docker0 in that case unless live-restore is on)
    first = platform.engines["local"].networks.get("bridge").attrs["Options"]
    bridge = first.get("com.docker.network.bridge.name", "docker0")
    assert Path(f"/sys/class/net/{bridge}").exists(), f"{bridge} is gone"


@pytest.mark.disruptive
def test_n2_lost_with_its_containers_then_back(api, platform):
    """The host-loss helpers: kill() leaves nothing of n2 running, revive() brings a new
    worker and agent on the same engine data."""
    name = f"lost-{uuid.uuid4().hex[:8]}"
    job = api.job(api.post("/api/containers", json={"image": HTTPD, "name": name, "node": "n2"}))
    cid = job["result"]["container_id"]
    container_pid = platform.engines["n2"].api.inspect_container(cid)["State"]["Pid"]
    old = {program: platform.n2_pid(program) for program in ("worker", "agent")}
    platform.n2.kill()
    try:
        alive = [p for p in [container_pid, *old.values(), platform.n2.engine.pid()]
                 if pid_alive(p)]
        assert not alive, f"still running after the kill: {alive}"
        wait_until(lambda: node_row(platform, "n2")["age"] > 3, 30, "n2's heartbeat stops")
    finally:
        platform.n2.revive()
    new = {program: platform.n2_pid(program) for program in ("worker", "agent")}
    assert not set(new.values()) & set(old.values())
    assert node_row(platform, "n2")["agent_pid"] == new["agent"]
    # the engine came back on its own data: it still knows the container (exited)
    state = platform.engines["n2"].api.inspect_container(cid)["State"]
    assert state["Pid"] != container_pid
    api.job(api.delete(f"/api/containers/{name}", params={"force": "true"}), wait=120)
    assert not platform.engines["n2"].api.containers(all=True, filters={"name": name})
