"""Reads shaped for the dashboard's summary, which a page asks for every few seconds.

The aggregate modules' reads do not fit a poll: ``health.latest`` walks each container's
whole history, ``events.find`` pages oldest first and ``deployments.backoff`` reads one
deployment. These take one index probe per container, the newest events, and every slot's
backoff at once.
"""
from __future__ import annotations

from db import pool
from db.events import COLUMNS as EVENT_COLUMNS


def latest_snapshots(names: list[str], max_age: float) -> dict[str, dict]:
    """container -> its newest health snapshot of the last ``max_age`` seconds."""
    if not names:
        return {}
    rows = pool.fetchall(
        "SELECT n.name AS container, s.at, s.running, s.cpu_percent, s.memory_percent, s.status"
        " FROM unnest(%s::text[]) AS n(name) CROSS JOIN LATERAL ("
        "  SELECT at, running, cpu_percent, memory_percent, status FROM health_snapshots"
        "  WHERE container = n.name AND at > now() - make_interval(secs => %s)"
        "  ORDER BY at DESC LIMIT 1) s", (names, max_age))
    return {r["container"]: r for r in rows}


def newest_events(limit: int) -> list[dict]:
    """The ``limit`` newest events, newest first."""
    return pool.fetchall(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT %s",
                         (limit,))


def slot_backoffs() -> dict[tuple[str, int], dict]:
    """(deployment, slot) -> consecutive failures and the next allowed start."""
    rows = pool.fetchall("SELECT deployment, slot, failures, next_start_at FROM slot_backoff")
    return {(r["deployment"], r["slot"]): r for r in rows}
