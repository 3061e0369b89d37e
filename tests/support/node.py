"""The test session's second node: a second Docker engine on this machine, a proxy in front
of it (tests cut it as they cut the first), and its worker and agent started by the very
command `make node` runs (`python -m ops node`, which becomes the node's supervisord).

Its processes log under <data>/nodes/<name>/logs; the worker's and agent's logs are linked
into the platform's logs as worker-<name>.log and agent-<name>.log, so the end-of-session
fault check reads them as the worker's and agent's.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import xmlrpc.client
from pathlib import Path

import docker

from ops import images, supervise
from tests.support.dockerproxy import DockerProxy
from tests.support.engine import SecondEngine
from tests.support.leftovers import pid_alive
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("worker", "executor", "agent")


class SecondNode:
    def __init__(self, data: Path, name: str = "n2", labels: str = "zone=b"):
        self.data, self.name, self.labels = data, name, labels
        self.engine = SecondEngine(data)
        self.proxy = DockerProxy(str(data / f"docker-{name}.sock"), str(self.engine.socket))
        self.home = data / "nodes" / name
        self.command_env: dict = {}
        self.supervisord: subprocess.Popen | None = None
        self.engine_killed = False   # a test killed the engine and has not brought it back
        self.sql = None              # the platform's: reads the node's heartbeat

    # --- start ----------------------------------------------------------------------
    def start(self, platform_env: dict, first_engine: docker.DockerClient, sql) -> None:
        """The engine (with the test images), its proxy, the node's processes; returns when
        the node's heartbeat is fresh."""
        self.sql = sql
        self.engine.start()
        self.engine.load_images(first_engine, images.IMAGES)
        self.proxy.start()
        self.command_env = {
            **platform_env, "HARBORMASTER_NODE": self.name, "DOCKER_HOST": self.proxy.url,
            "HARBORMASTER_NODE_LABELS": self.labels, "HARBORMASTER_NODE_ADDRESS": "127.0.0.1"}
        self.start_processes()

    def start_processes(self) -> None:
        """`python -m ops node` in the background, as `make node` runs it in the foreground."""
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "node.log", "ab") as out:
            self.supervisord = subprocess.Popen(
                [sys.executable, "-m", "ops", "node"], env=self.command_env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        wait_until(lambda: self.supervisord.poll() is not None or self.running(), 90,
                   f"node {self.name}'s worker and agent running")
        if self.supervisord.poll() is not None:
            raise RuntimeError(f"`python -m ops node` for {self.name} exited "
                               f"({self.supervisord.returncode}):\n"
                               + (logs / "node.log").read_text(errors="replace")[-3000:])
        for program in PROGRAMS:
            link = self.data / "logs" / f"{program}-{self.name}.log"
            if not link.is_symlink():
                link.symlink_to(logs / f"{program}.log")
        wait_until(lambda: self.heartbeat_fresh(), 60, f"node {self.name}'s heartbeat fresh")

    def running(self) -> bool:
        try:
            states = [p["statename"] for p in supervise.rpc(self.home).getAllProcessInfo()]
        except (OSError, xmlrpc.client.Error):
            return False
        return len(states) == len(PROGRAMS) and all(s == "RUNNING" for s in states)

    def heartbeat_fresh(self) -> bool:
        row = self.sql("SELECT docker_ok, extract(epoch FROM now() - heartbeat_at) FROM nodes"
                  " WHERE name = %s", (self.name,))
        return bool(row) and row[0][0] and row[0][1] < 3

    def pid(self, program: str) -> int:
        return supervise.program_pid(self.home, program)

    def process_env(self, program: str = "agent") -> dict:
        """The environment the node's ``program`` runs with (read from the process itself)."""
        raw = Path(f"/proc/{self.pid(program)}/environ").read_bytes()
        return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)

    # --- loss and return ------------------------------------------------------------------
    def kill_processes(self) -> None:
        """SIGKILL of the node's supervisord, worker and agent (each program is a process
        group of its own: Dramatiq's children go with their parent)."""
        groups = []
        if self.supervisord is not None and self.supervisord.poll() is None:
            try:
                groups = [self.pid(p) for p in PROGRAMS]
            except (OSError, xmlrpc.client.Error):
                groups = []
            self.supervisord.kill()
            self.supervisord.wait(timeout=30)
        for group in groups:
            if group:
                try:
                    os.killpg(group, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        wait_until(lambda: not any(pid_alive(g) for g in groups), 30,
                   f"node {self.name}'s processes gone")

    def kill(self) -> None:
        """The host lost: its processes, its engine and its containers, all SIGKILLed."""
        self.kill_processes()
        self.kill_engine(containers=True)

    def kill_engine(self, containers: bool = False) -> None:
        """Only the engine (and its containers' processes if ``containers``): the node's
        agent lives on and reports Docker down."""
        self.engine_killed = True
        self.engine.kill(containers=containers)

    def revive(self) -> None:
        """Back after kill() or kill_engine(): the engine on the same data root and socket,
        then the node's processes if they were killed; returns when its heartbeat is fresh."""
        if not self.engine.running():
            self.engine.start()
        self.engine_killed = False
        if self.supervisord is None or self.supervisord.poll() is not None:
            # the killed agent's claim (a Postgres session) must be gone, or `ops node`
            # rightly refuses the name
            wait_until(lambda: not self.sql("SELECT 1 FROM pg_stat_activity WHERE"
                                       " application_name = %s",
                                       (f"harbormaster-agent:{self.name}",)),
                       30, f"the killed agent's claim on {self.name} released")
            self.start_processes()
        wait_until(lambda: self.heartbeat_fresh(), 60, f"node {self.name}'s heartbeat fresh")
        # a node declared down meanwhile takes work again once its own worker has removed
        # its stale instances (returning -> ready)
        wait_until(lambda: self.sql("SELECT status FROM nodes WHERE name = %s",
                                    (self.name,))[0][0] == "ready", 90,
                   f"node {self.name} ready again")

    # --- stop -----------------------------------------------------------------------------
    def stop_processes(self) -> None:
        if self.supervisord is not None and self.supervisord.poll() is None:
            self.supervisord.send_signal(signal.SIGTERM)
            self.supervisord.wait(timeout=60)
        self.supervisord = None

    def ensure_engine(self) -> None:
        """The engine answers (started again if a test left it killed): its containers can
        only be removed through it."""
        if self.engine_killed and not self.engine.running():
            self.engine.start()
            self.engine_killed = False
