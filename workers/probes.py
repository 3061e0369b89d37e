"""Health probes: http (200-399), tcp (connect), command (exec, exit 0).

http and tcp target the instance's port published on 127.0.0.1 (traffic stays on loopback;
a check on an unpublished port is refused at the API). The agent runs the due probes and
turns consecutive results into the instance's health (workers.health.probe_transition).
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import requests

from workers import docker_ops


@dataclass
class ProbeState:
    successes: int = 0
    failures: int = 0
    last_run: float = 0.0
    last_error: str | None = None
    history: list = field(default_factory=list)


def published_port(ports: dict, port: int) -> int | None:
    for spec in (f"{port}/tcp", str(port)):
        if ports.get(spec):
            return int(ports[spec])
    return None


def run(check: dict, row: dict, host: str = "127.0.0.1") -> tuple[bool, str | None]:
    """One probe of one instance: (passed, error)."""
    timeout = float(check.get("timeout", 2))
    kind = check["type"]
    try:
        if kind == "command":
            exit_code, output = docker_ops.exec_run(row["docker_id"], check["command"],
                                                    timeout=timeout)
            return exit_code == 0, None if exit_code == 0 else f"exit {exit_code}: {output[-200:]}"
        port = published_port(row["ports"] or {}, int(check["port"]))
        if port is None:
            return False, f"port {check['port']} is not published"
        if kind == "tcp":
            with socket.create_connection((host, port), timeout=timeout):
                return True, None
        response = requests.get(f"http://{host}:{port}{check.get('path', '/')}",
                                timeout=timeout, allow_redirects=False)
        if 200 <= response.status_code < 400:
            return True, None
        return False, f"HTTP {response.status_code}"
    except (OSError, requests.RequestException, docker_ops.DockerError) as exc:
        return False, f"{type(exc).__name__}: {exc}"[:300]


def due(state: ProbeState, check: dict, now: float) -> bool:
    return now - state.last_run >= float(check.get("interval", 10))


def in_start_period(row: dict, check: dict, now: float) -> bool:
    started = row["started_at"].timestamp() if row["started_at"] else now
    return now - started < float(check.get("start_period", 0))


def now() -> float:
    return time.time()
