"""Reads shaped for the dashboard's summary, which a page asks for every few seconds.

The aggregate modules' reads do not fit a poll: ``slots.backoff`` reads one deployment.
This takes every slot's backoff at once. (Events are not polled: the dashboard reads the
event stream.)
"""
from __future__ import annotations

from db import pool


def slot_backoffs() -> dict[tuple[str, int], dict]:
    """(deployment, slot) -> consecutive failures and the next allowed start."""
    rows = pool.fetchall("SELECT deployment, slot, failures, next_start_at FROM slots"
                         " WHERE next_start_at IS NOT NULL")
    return {(r["deployment"], r["slot"]): r for r in rows}
