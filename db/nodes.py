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
