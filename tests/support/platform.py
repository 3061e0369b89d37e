"""One Harbormaster per test session: its own data directory, Postgres, Redis, ports,
cluster id and a test profile of short intervals; the real processes under supervisord,
talking to the real Docker engine through a proxy the tests can cut; and a second node, n2,
on a second engine of its own for the whole session (tests.support.node).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import docker
import psycopg
import redis
import requests

from ops import bootstrap, images, supervise
from tests.support import faults
from tests.support.dockerproxy import DockerProxy
from tests.support.node import SecondNode
from tests.support.waiting import wait_until
from workers import docker_ops

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TEST_PROFILE = {
    "HARBORMASTER_HEARTBEAT_INTERVAL": "1",
    "HARBORMASTER_HEARTBEAT_STALE_AFTER": "4",
    "HARBORMASTER_AGENT_SYNC_INTERVAL": "5",
    "HARBORMASTER_OUTBOX_INTERVAL": "1",
    "HARBORMASTER_OUTBOX_RESEND_AFTER": "30",
    "HARBORMASTER_JOB_SWEEP_INTERVAL": "2",
    "HARBORMASTER_JOB_TIME_LIMIT": "60",
    "HARBORMASTER_BROKER_HEARTBEAT_TIMEOUT_MS": "5000",
    "HARBORMASTER_BROKER_MAINTENANCE_CHANCE": "1000000",
    "HARBORMASTER_WEB_WORKERS": "2",
    "HARBORMASTER_WORKER_THREADS": "8",
    "HARBORMASTER_WAIT_CAP": "60",
    "HARBORMASTER_DRAIN_DELAY": "0.2",
    "HARBORMASTER_GRACE_PERIOD": "2",
    "HARBORMASTER_RECONCILE_INTERVAL": "3",
    "HARBORMASTER_CLEANUP_INTERVAL": "2",
    "HARBORMASTER_RETIRED_INSTANCE_AGE": "2",
    "HARBORMASTER_ORPHAN_GRACE": "2",
    "HARBORMASTER_SAMPLE_INTERVAL": "1",
    "HARBORMASTER_DISK_INTERVAL": "5",
    "HARBORMASTER_PROBE_TICK": "0.1",
    "HARBORMASTER_AUTOSCALE_INTERVAL": "2",
    # usage metering: the open period's rows follow within seconds
    "HARBORMASTER_USAGE_ROLLUP_INTERVAL": "2",
    # placement: tests that measure capacity set it per node through the API; the rest
    # must never run out of room on a shared host
    "HARBORMASTER_DEFAULT_CPU_REQUEST": "0.01",
    "HARBORMASTER_DEFAULT_MEMORY_REQUEST": "8388608",
    "HARBORMASTER_NODE_RESERVE_MEMORY": "0",
    "HARBORMASTER_NODE_DOWN_AFTER": "5",
    # the suite polls: keep the shared limits out of its way (tests set tight per-token ones)
    "HARBORMASTER_RATE_LIMIT": "100000/minute",
    "HARBORMASTER_RATE_LIMIT_PER_ADDRESS": "100000/minute",
    # workers.testing's actors: the suite shows its fault check catches a failing actor
    "HARBORMASTER_TEST_HOOKS": "1",
    # each container's json-file log rotates at 1 MiB, two files kept: the bound is seen
    # within seconds of a chatty container
    "HARBORMASTER_LOG_MAX_SIZE": "1m",
    "HARBORMASTER_LOG_MAX_FILE": "2",
}


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


class TestPlatform:
    __test__ = False  # not a test class

    def __init__(self, extra_env: dict | None = None, second_node: bool = True):
        # short path: Postgres's socket path must stay under ~100 characters
        self.data = Path(tempfile.mkdtemp(prefix="hm-test-"))
        self.proxy = DockerProxy(str(self.data / "docker.sock"))
        # the session's n2; a platform of one node (schemathesis', a bench's baseline) has none
        self.n2 = SecondNode(self.data) if second_node else None
        self.redis_port = free_port()
        self.web_port = free_port()
        self.extra_env = extra_env or {}
        self.env: dict = {}
        self.supervisord = None
        self._docker = None
        self._cluster = None
        # what the tests declare they provoke; checked against the logs at teardown
        self.faults = faults.Ledger(self.data / "logs")

    @property
    def docker(self) -> docker.DockerClient:
        """A client straight to the engine (not through the proxy): the truth in tests."""
        if self._docker is None:
            self._docker = docker.DockerClient(base_url="unix:///var/run/docker.sock")
        return self._docker

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        # the test platform drives the machine's own engine (through its proxy) and has
        # an embedded Postgres and Redis of its own, whatever the environment names
        bootstrap.ensure_docker(ROOT / ".harbormaster", None)
        bootstrap.ensure_busybox_static()  # the test images are built from it
        docker_ops.configure(None, "127.0.0.1")
        images.ensure_images()
        database_url = bootstrap.ensure_postgres(self.data)
        bootstrap.start_redis(self.data, self.redis_port)
        self.proxy.start()
        self.env = supervise.process_env({
            **TEST_PROFILE,
            "HARBORMASTER_DATA": str(self.data),
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "DOCKER_HOST": self.proxy.url,
            "HARBORMASTER_WEB_PORT": str(self.web_port),
            **self.extra_env,
        })
        supervise.release(self.env)
        # kept from the start: teardown must find our containers even if the database is gone
        self._cluster = self.sql("SELECT cluster_id FROM installation")[0][0]
        self.start_processes()
        if self.n2 is not None:
            self.n2.start(self.env, self.docker, self.sql)

    def start_processes(self) -> None:
        self.supervisord = supervise.start(self.data, self.env, foreground=False)
        supervise.wait_running(self.data, timeout=60)
        wait_until(self.ready, 60, "platform ready (web answers, node heartbeat fresh)")

    def ready(self) -> bool:
        try:
            if requests.get(f"{self.url}/health", timeout=2).status_code != 200:
                return False
        except requests.RequestException:
            return False
        row = self.sql("SELECT docker_ok, extract(epoch FROM now() - heartbeat_at) AS age"
                       " FROM nodes WHERE name = 'local'")
        return bool(row) and row[0][0] and row[0][1] < 3

    def stop_processes(self) -> None:
        if self.supervisord is not None:
            self.supervisord.send_signal(signal.SIGTERM)
            self.supervisord.wait(timeout=60)
            self.supervisord = None

    @contextlib.contextmanager
    def extra_web(self, tag: str, **settings: str):
        """A second web process of this platform with other settings; yields its URL. Its
        log is logs/web-<tag>.log, checked for faults like the supervised web's."""
        port = free_port()
        env = {**self.env, **settings}
        with open(self.data / "logs" / f"web-{tag}.log", "ab") as log:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "gunicorn"), "web.wsgi:app", "--bind",
                 f"127.0.0.1:{port}", "-k", "gthread", "--threads", "8", "--workers", "1",
                 "--no-control-socket"], env=env, cwd=ROOT, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: proc.poll() is not None or _answers(url), 30,
                       f"extra web process {tag!r} up")
            assert proc.poll() is None, f"web-{tag} exited: see web-{tag}.log"
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)

    def program_pid(self, name: str) -> int:
        return supervise.program_pid(self.data, name)

    def rpc_state(self, name: str) -> str:
        """supervisord's state of a program: RUNNING, STOPPED, BACKOFF..."""
        return supervise.rpc(self.data).getProcessInfo(name)["statename"]

    def stop_program(self, name: str) -> None:
        supervise.rpc(self.data).stopProcess(name)

    def start_program(self, name: str) -> None:
        supervise.rpc(self.data).startProcess(name)

    def stop_redis(self) -> None:
        bootstrap.stop_redis(self.data)

    def start_redis(self) -> None:
        bootstrap.start_redis(self.data, self.redis_port)

    def stop_postgres(self) -> None:
        bootstrap.stop_postgres(self.data)

    def start_postgres(self) -> None:
        bootstrap.ensure_postgres(self.data)

    def teardown(self) -> None:
        """Every step is tried even when one fails; what failed is raised at the end, with
        the faults the processes' logs show that no test declared."""
        errors, found = [], []
        n2 = self.n2
        steps = [("stop n2's processes", n2.stop_processes if n2 else None),
                 ("stop the processes", self.stop_processes),
                 ("check the logs", lambda: found.extend(self.fault_report())),
                 ("start n2's engine if a test left it killed", n2.ensure_engine if n2 else None),
                 ("remove the containers", self.remove_containers),
                 ("stop n2's engine", n2.engine.stop if n2 else None),
                 ("close the docker proxy", self.proxy.close),
                 ("close n2's docker proxy", n2.proxy.close if n2 else None),
                 ("stop redis", lambda: bootstrap.stop_redis(self.data)),
                 ("stop postgres", lambda: bootstrap.stop_postgres(self.data))]
        steps = [(what, step) for what, step in steps if step is not None]
        for what, step in steps:
            try:
                step()
            except BaseException as exc:  # noqa: BLE001 - later steps must still run
                errors.append(f"{what}: {type(exc).__name__}: {exc}")
        keep = os.environ.get("HARBORMASTER_KEEP_TEST_DATA") == "1"
        if not keep:
            shutil.rmtree(self.data, ignore_errors=True)
        if errors or found:
            where = f" (kept in {self.data})" if keep else ""
            raise AssertionError(
                (f"teardown steps failed: {errors}\n" if errors else "")
                + (faults.report(found) + where if found else ""))

    # --- faults the tests provoke -------------------------------------------------
    def expect_log(self, program: str, regex: str) -> None:
        """Declare that this test makes ``program`` log an ERROR line or a traceback
        matching ``regex`` (from now on)."""
        self.faults.expect_log(program, regex)

    def expect_restart(self, program: str, times: int = 1) -> None:
        """Declare that this test makes ``program`` exit ``times`` times (supervisord
        restarts it)."""
        self.faults.expect_restart(program, times)

    def fault_report(self, ledger: faults.Ledger | None = None) -> list[faults.Fault]:
        """The faults in the logs that ``ledger`` (by default the tests' own) leaves
        undeclared."""
        ledger = ledger if ledger is not None else self.faults
        return faults.check(ledger) + self.node_exit_faults(ledger)

    def node_exit_faults(self, ledger: faults.Ledger) -> list[faults.Fault]:
        """n2's programs' exits (its supervisord's log) count against the same declarations."""
        if self.n2 is None:
            return []
        seen, found = Counter(program for program, _ in faults.exits(ledger.logs)), []
        for program, line in faults.exits(self.n2.home / "logs"):
            seen[program] += 1
            if seen[program] > ledger.restarts[program]:
                found.append(faults.Fault(
                    program, f"nodes/{self.n2.name}/logs/supervisord.log",
                    f"{line}  [exit {seen[program]}; declared: {ledger.restarts[program]}]"))
        return found

    # --- helpers --------------------------------------------------------------
    @property
    def admin_token(self) -> str:
        return (self.data / "admin-token").read_text().strip()

    @property
    def cluster_id(self) -> str:
        return self._cluster

    def sql(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port)

    @property
    def engines(self) -> dict[str, docker.DockerClient]:
        """node -> a client straight to its engine."""
        if self.n2 is None:
            return {"local": self.docker}
        return {"local": self.docker, self.n2.name: self.n2.engine.client}

    def containers(self, **labels) -> list:
        """Our containers on both engines (the truth, not through the proxies), each with
        ``.node`` naming its engine's node; an engine a test killed is left out, and so is a
        container removed between docker-py's listing and its inspection."""
        filters = [f"harbormaster.cluster={self.cluster_id}"]
        filters += [f"{k}={v}" for k, v in labels.items()]
        found = []
        for node, client in self.engines.items():
            if self.n2 is not None and node == self.n2.name and self.n2.engine_killed:
                continue
            for container in client.containers.list(all=True, filters={"label": filters},
                                                     ignore_removed=True):
                container.node = node
                found.append(container)
        return found

    def inspect(self, ref: str) -> dict:
        """A container's inspect document from whichever engine has it (with "node")."""
        for node, client in self.engines.items():
            try:
                return {**client.api.inspect_container(ref), "node": node}
            except docker.errors.NotFound:
                continue
        raise docker.errors.NotFound(f"no engine has container {ref}")

    def container_logs(self, ref: str) -> str:
        """A container's logs, from whichever engine has it."""
        return self.engines[self.inspect(ref)["node"]].api.logs(ref).decode()

    def listed(self, **filters) -> list[dict]:
        """The plain container list (docker's /containers/json) of every engine."""
        return [{**entry, "node": node} for node, client in self.engines.items()
                for entry in client.api.containers(all=True, filters=filters)]

    def n2_pid(self, program: str) -> int:
        return self.n2.pid(program)  # n2 itself: self.n2.kill(), .kill_engine(), .revive()

    def remove_containers(self) -> None:
        """Every container and the network of this installation on both engines; one
        failure does not stop the others (raised at the end)."""
        if self._cluster is None:
            return  # never started: nothing of ours can exist
        label = {"label": f"harbormaster.cluster={self.cluster_id}"}
        errors = []
        for node, client in self.engines.items():
            if self.n2 is not None and node == self.n2.name and not self.n2.engine.started:
                continue  # it never answered: nothing of ours can be there
            try:
                errors += remove_labelled(client.api, label)
            except docker.errors.DockerException as exc:
                errors.append(f"{node}: {exc}")
        if errors:
            raise RuntimeError(f"could not remove: {errors}")

    def logs(self) -> str:
        """Every platform process's log, and Postgres's, Redis's and dockerd's."""
        paths = sorted((self.data / "logs").glob("*.log")) + list(self.service_logs().values())
        return "\n".join(p.read_text(errors="replace") for p in paths if p.exists())

    def service_logs(self) -> dict[str, Path]:
        """The logs of what the platform runs on: Postgres and Redis (embedded, under the
        data directory) and dockerd when the bootstrap started it (its log is under the
        checkout's .harbormaster/; an engine started otherwise logs elsewhere)."""
        found = {"postgres": self.data / "pgdata" / "log",
                 "redis": self.data / "redis" / "redis.log"}
        dockerd = ROOT / ".harbormaster" / "dockerd.log"
        if bootstrap.read_pid(ROOT / ".harbormaster" / "dockerd.pid") is not None:
            found["dockerd"] = dockerd
        elif Path("/var/log/docker.log").exists():
            found["dockerd"] = Path("/var/log/docker.log")
        if self.n2 is not None:
            found[f"dockerd-{self.n2.name}"] = self.n2.engine.log
        return found


def remove_labelled(api: docker.APIClient, label: dict) -> list:
    """Remove one engine's containers and networks carrying ``label``; the failures."""
    errors = []
    for entry in api.containers(all=True, filters=label):
        try:
            api.remove_container(entry["Id"], force=True)
        except docker.errors.NotFound:
            pass  # removed meanwhile
        except docker.errors.APIError as exc:
            errors.append(exc)
    # and the installation's network: Docker's address pools hold only ~30 of them
    for network in api.networks(filters=label):
        try:
            api.remove_network(network["Id"])
        except docker.errors.APIError as exc:
            errors.append(exc)
    return errors
