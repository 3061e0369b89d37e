"""Slots of a deployment: the incarnation counter and the restart backoff of each."""
from __future__ import annotations

from db import pool


def reserve_incarnation(deployment: str, slot: int, conn) -> int:
    """The next incarnation of a slot, counted in Postgres before the container exists."""
    return conn.execute(
        "INSERT INTO slots (deployment, slot, next_incarnation) VALUES (%s, %s, 2)"
        " ON CONFLICT (deployment, slot) DO UPDATE SET"
        " next_incarnation = slots.next_incarnation + 1"
        " RETURNING next_incarnation - 1 AS incarnation", (deployment, slot)).fetchone()[
        "incarnation"]


def backoff(deployment: str) -> dict[int, dict]:
    """slot -> {failures, next_start (epoch)} for slots that have failed."""
    rows = pool.fetchall("SELECT slot, failures, extract(epoch FROM next_start_at) AS next_start"
                         " FROM slots WHERE deployment = %s AND next_start_at IS NOT NULL",
                         (deployment,))
    return {r["slot"]: r for r in rows}


def failures(deployment: str, slot: int) -> int:
    row = pool.fetchone("SELECT failures FROM slots WHERE deployment = %s AND slot = %s",
                        (deployment, slot))
    return row["failures"] if row else 0


def record_failure(deployment: str, slot: int, count: int, delay: float) -> float:
    """Store a slot's failure count and when it may start again (core.backoff decides);
    returns that moment (epoch)."""
    return pool.fetchone(
        "INSERT INTO slots (deployment, slot, failures, last_failure_at, next_start_at)"
        " VALUES (%s, %s, %s, now(), now() + make_interval(secs => %s))"
        " ON CONFLICT (deployment, slot) DO UPDATE SET failures = EXCLUDED.failures,"
        " last_failure_at = now(), next_start_at = EXCLUDED.next_start_at"
        " RETURNING extract(epoch FROM next_start_at) AS next_start",
        (deployment, slot, count, delay))["next_start"]
