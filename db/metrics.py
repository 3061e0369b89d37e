"""The figures /metrics exposes, read from Postgres at each scrape (so they are the same
whichever process did the work)."""
from __future__ import annotations

from db import pool


def jobs_by_kind_and_status() -> list[dict]:
    return pool.fetchall("SELECT kind, status, count(*) AS n FROM jobs GROUP BY kind, status"
                         " ORDER BY kind, status")


def job_durations() -> list[dict]:
    return pool.fetchall(
        "SELECT kind, count(*) AS n, sum(extract(epoch FROM finished_at - created_at))"
        " AS seconds FROM jobs WHERE finished_at IS NOT NULL GROUP BY kind")


def reconcile_actions() -> list[dict]:
    return pool.fetchall(
        "SELECT deployment, kind, count(*) AS n FROM events WHERE kind IN"
        " ('instance_created', 'instance_removed', 'instance_stopped', 'backoff',"
        "  'rollback') AND deployment IS NOT NULL GROUP BY deployment, kind")


def recent_snapshots() -> list[dict]:
    return pool.fetchall("SELECT container, cpu_percent, memory_bytes FROM"
                         " latest_snapshots(now() - interval '10 minutes')")


def live_containers() -> list[dict]:
    return pool.fetchall("SELECT name, deployment, kind, state FROM containers"
                         " WHERE state <> 'removed' AND role = 'active' ORDER BY name")


def deployment_replicas() -> list[dict]:
    return pool.fetchall("SELECT name, replicas, counts FROM deployments")
