"""Append-only events: what happened to which container, and who asked.

Each event has a ``cursor`` given as its transaction commits, in commit order
(db/migrations/0015_streams.sql): pages and streams read ``cursor > C`` and never miss one
that committed late. The ``id`` is drawn at insert and only identifies the row.
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import pool

COLUMNS = "id, cursor, at, kind, deployment, container, detail, who"


def add(kind: str, container: str | None = None, deployment: str | None = None,
        detail: dict | None = None, who: str | None = None, conn=None) -> None:
    sql = ("INSERT INTO events (kind, deployment, container, detail, who)"
           " VALUES (%s, %s, %s, %s, %s)")
    params = (kind, deployment, container, Jsonb(detail or {}), who)
    if conn is not None:
        conn.execute(sql, params)
    else:
        pool.execute(sql, params)


def find(deployment: str | None = None, container: str | None = None, kind: str | None = None,
         since=None, who: str | None = None, after: int | None = None,
         limit: int = 100) -> list[dict]:
    """Oldest first (commit order), so ``after`` (a cursor) pages forward."""
    clause, params = pool.where([("deployment = %s", deployment), ("container = %s", container),
                                 ("kind = %s", kind), ("who = %s", who), ("at >= %s", since),
                                 ("cursor > %s", after)])
    params.append(limit)
    return pool.fetchall(f"SELECT {COLUMNS} FROM events {clause} ORDER BY cursor LIMIT %s",
                         params)


def after_cursor(cursor: int, limit: int = 500) -> list[dict]:
    """Every event after ``cursor``, in commit order (what the event streams read)."""
    return pool.fetchall(f"SELECT {COLUMNS} FROM events WHERE cursor > %s"
                         " ORDER BY cursor LIMIT %s", (cursor, limit))


def newest_cursor() -> int:
    """The highest cursor of a committed event (0: none). Not the sequence's value: a
    transaction that drew a cursor may not have committed yet, and a reader starting after
    it would skip it."""
    return int(pool.fetchone("SELECT COALESCE(max(cursor), 0) AS top FROM events")["top"])


def horizon() -> dict:
    """What a resume is checked against: the highest cursor retention removed and the
    highest the sequence gave (committed or not)."""
    row = pool.fetchone("SELECT h.pruned_through, s.last_value, s.is_called"
                        " FROM event_horizon h, events_cursor s")
    newest = int(row["last_value"]) if row["is_called"] else int(row["last_value"]) - 1
    return {"pruned_through": int(row["pruned_through"]), "newest": newest}


def prune(seconds: float) -> int:
    """Remove events past their retention and remember the highest cursor removed."""
    with pool.connection() as conn:
        row = conn.execute(
            "WITH gone AS (DELETE FROM events WHERE at < now() - make_interval(secs => %s)"
            " RETURNING cursor) SELECT count(*) AS n, max(cursor) AS top FROM gone",
            (seconds,)).fetchone()
        if row["top"] is not None:
            conn.execute("UPDATE event_horizon SET pruned_through ="
                         " GREATEST(pruned_through, %s)", (row["top"],))
        return int(row["n"])
