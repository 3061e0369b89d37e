"""Reads shaped for the dashboard's summary, which a page asks for every few seconds.

The aggregate modules' reads do not fit a poll: ``events.find`` pages oldest first and
``slots.backoff`` reads one deployment. These take the newest events and every slot's
backoff at once.
"""
from __future__ import annotations

from db import pool
from db.events import COLUMNS as EVENT_COLUMNS


def newest_events(limit: int) -> list[dict]:
    """The ``limit`` newest events, newest first."""
    return pool.fetchall(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT %s",
                         (limit,))


def slot_backoffs() -> dict[tuple[str, int], dict]:
    """(deployment, slot) -> consecutive failures and the next allowed start."""
    rows = pool.fetchall("SELECT deployment, slot, failures, next_start_at FROM slots"
                         " WHERE next_start_at IS NOT NULL")
    return {(r["deployment"], r["slot"]): r for r in rows}
