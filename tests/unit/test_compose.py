"""docker-compose.yml is a valid Compose file (Debian's docker-compose validates it)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support import packages

ROOT = Path(__file__).resolve().parents[2]


def compose_binary() -> str:
    return packages.ensure("docker-compose", "docker-compose")


def test_compose_file_is_valid():
    result = subprocess.run([compose_binary(), "-f", str(ROOT / "docker-compose.yml"), "config",
                             "-q"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_worker_and_agent_get_the_docker_socket_host_pid_and_cgroups():
    result = subprocess.run([compose_binary(), "-f", str(ROOT / "docker-compose.yml"), "config"],
                            capture_output=True, text=True, cwd=ROOT, check=True)
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) >= {"postgres", "redis", "web", "worker", "scheduler", "agent"}
    for name in ("worker", "agent"):
        service = services[name]
        mounts = " ".join(str(v) for v in service["volumes"])
        assert "/var/run/docker.sock" in mounts and "/sys/fs/cgroup" in mounts
        assert service["pid"] == "host" and service["network_mode"] == "host"
