"""docker-compose.yml is a valid Compose file (Debian's docker-compose validates it)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker-compose"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       stdout=subprocess.DEVNULL)
        found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is not installed and cannot be installed here")
    return found


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
