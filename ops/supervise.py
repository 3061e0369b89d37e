"""Run the Procfile's long-running processes under supervisord, which restarts one that dies.

The Procfile is parsed with honcho's parser; the supervisord configuration is written under
the data directory. Each program is its own process group (stopped and killed as a group,
so Dramatiq's worker children go with their parent).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from honcho.environ import parse_procfile

import config
from config import ROOT

LONG_RUNNING = ("web", "worker", "executor", "scheduler", "agent")


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    return dict(parse_procfile(path.read_text()).processes)


def write_config(data_dir: Path, programs: dict[str, str] | None = None) -> Path:
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = programs or {n: c for n, c in procfile().items() if n in LONG_RUNNING}
    lines = [
        "[supervisord]", "nodaemon=true", f"logfile={logs / 'supervisord.log'}",
        f"pidfile={data_dir / 'supervisord.pid'}", f"childlogdir={logs}", "loglevel=info", "",
        "[unix_http_server]", f"file={data_dir / 'supervisor.sock'}", "",
        "[supervisorctl]", f"serverurl=unix://{data_dir / 'supervisor.sock'}", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
    ]
    for name, command in commands.items():
        escaped = command.replace("%", "%%").replace("'", "'\"'\"'")
        lines += [
            f"[program:{name}]", f"command=/bin/sh -c '{escaped}'", f"directory={ROOT}",
            "autostart=true", "autorestart=true", "startsecs=1", "startretries=100000",
            "stopasgroup=true", "killasgroup=true", "stopsignal=TERM", "stopwaitsecs=15",
            f"stdout_logfile={logs / (name + '.log')}", "redirect_stderr=true",
            "stdout_logfile_maxbytes=50MB", "stdout_logfile_backups=2", "",
        ]
    path = data_dir / "supervisord.conf"
    path.write_text("\n".join(lines))
    return path


def process_env(extra: dict) -> dict:
    """The platform processes' environment: this one's, with ``extra`` on top."""
    env = config.process_environment()
    env.update(extra)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    data = Path(env.get("HARBORMASTER_DATA", ROOT / ".harbormaster"))
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data / "prometheus"))
    return env


def release(env: dict) -> None:
    """The Procfile's release step (migrations, the first admin token)."""
    subprocess.run(["/bin/sh", "-c", procfile()["release"]], cwd=ROOT, env=env, check=True)


def start(data_dir: Path, env: dict, foreground: bool,
          names: tuple[str, ...] = LONG_RUNNING) -> subprocess.Popen | None:
    """supervisord running the Procfile's ``names`` (all its long-running processes, or a
    node's worker and agent), from a configuration written under ``data_dir``."""
    conf = write_config(data_dir, {n: c for n, c in procfile().items() if n in names})
    # prometheus-client's multiprocess files are per run: stale ones would be summed in
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    args = [str(Path(sys.executable).parent / "supervisord"), "-c", str(conf)]
    if foreground:
        os.execve(args[0], args, env)
    return subprocess.Popen(args, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def rpc(data_dir: Path):
    """supervisord's XML-RPC interface over its unix socket."""
    sock = str(data_dir / "supervisor.sock")

    class Transport(xmlrpc.client.Transport):
        def make_connection(self, host):
            import http.client
            import socket

            class Conn(http.client.HTTPConnection):
                def connect(self):
                    self.sock = socket.socket(socket.AF_UNIX)
                    self.sock.connect(sock)
            return Conn("localhost")

    return xmlrpc.client.ServerProxy("http://localhost", transport=Transport()).supervisor


def program_pid(data_dir: Path, name: str) -> int:
    return rpc(data_dir).getProcessInfo(name)["pid"]


def wait_running(data_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = {p["name"]: p["statename"] for p in rpc(data_dir).getAllProcessInfo()}
            if states and all(s == "RUNNING" for s in states.values()):
                return
        except (OSError, xmlrpc.client.Error):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"supervised processes not running after {timeout} s")
