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


def assignments(deployment: str) -> dict[int, dict]:
    """slot -> {node, placed_reason, pending_reason, last_exit_*} for the deployment's
    slots."""
    rows = pool.fetchall("SELECT slot, node, placed_reason, pending_reason,"
                         " last_exit_container, last_exit_code, last_exit_reason, last_exit_at"
                         " FROM slots WHERE deployment = %s", (deployment,))
    return {r["slot"]: r for r in rows}


def record_exit(deployment: str, slot: int, container: str, code: int | None,
                reason: str) -> None:
    """The slot's last exit (its kept container, exit code and why it ended)."""
    pool.execute("UPDATE slots SET last_exit_container = %s, last_exit_code = %s,"
                 " last_exit_reason = %s, last_exit_at = now()"
                 " WHERE deployment = %s AND slot = %s",
                 (container, code, reason, deployment, slot))


def assign(deployment: str, slot: int, node: str | None, placed: str | None,
           pending: str | None) -> None:
    """Where a slot is placed (None: nowhere yet, and why)."""
    pool.execute(
        "INSERT INTO slots (deployment, slot, node, placed_reason, pending_reason)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (deployment, slot) DO UPDATE SET"
        " node = EXCLUDED.node, placed_reason = EXCLUDED.placed_reason,"
        " pending_reason = EXCLUDED.pending_reason",
        (deployment, slot, node, placed, pending))


def unassign_node(node: str) -> list[dict]:
    """Slots placed on a node that went down or drains: placed nowhere now (the runner
    places them again). Returns (deployment, slot) of each."""
    return pool.fetchall("UPDATE slots SET node = NULL, placed_reason = NULL WHERE node = %s"
                         " RETURNING deployment, slot", (node,))
