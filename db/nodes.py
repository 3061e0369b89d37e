"""Nodes: one row per Docker host, with the agent's heartbeat and Docker's health."""
from __future__ import annotations

from db import pool


def heartbeat(name: str, docker_ok: bool, latency_ms: float | None, error: str | None,
              version: str | None, cpus: int | None, memory_bytes: int | None,
              agent_pid: int) -> None:
    pool.execute(
        "INSERT INTO nodes (name, docker_ok, docker_latency_ms, docker_error, docker_version,"
        " cpus, memory_bytes, heartbeat_at, agent_pid)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, now(), %s)"
        " ON CONFLICT (name) DO UPDATE SET docker_ok = EXCLUDED.docker_ok,"
        " docker_latency_ms = EXCLUDED.docker_latency_ms, docker_error = EXCLUDED.docker_error,"
        " docker_version = COALESCE(EXCLUDED.docker_version, nodes.docker_version),"
        " cpus = COALESCE(EXCLUDED.cpus, nodes.cpus),"
        " memory_bytes = COALESCE(EXCLUDED.memory_bytes, nodes.memory_bytes),"
        " heartbeat_at = now(), agent_pid = EXCLUDED.agent_pid",
        (name, docker_ok, latency_ms, error, version, cpus, memory_bytes, agent_pid))


def get(name: str) -> dict | None:
    return pool.fetchone(
        "SELECT *, extract(epoch FROM now() - heartbeat_at) AS age FROM nodes WHERE name = %s",
        (name,))


def all_nodes() -> list[dict]:
    return pool.fetchall(
        "SELECT *, extract(epoch FROM now() - heartbeat_at) AS age FROM nodes ORDER BY name")


def record_host(name: str, cpu_percent: float, host: dict) -> None:
    pool.execute("UPDATE nodes SET host_cpu_percent = %s, host_memory_bytes = %s,"
                 " host_memory_used = %s, host_disk_bytes = %s, host_disk_used = %s,"
                 " sampled_at = now() WHERE name = %s",
                 (cpu_percent, host["memory_bytes"], host["memory_used"], host["disk_bytes"],
                  host["disk_used"], name))
