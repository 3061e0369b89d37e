"""Append-only events: what happened to which container, and who asked."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import pool

COLUMNS = "id, at, kind, deployment, container, detail, who"


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
         since=None, who: str | None = None, after_id: int | None = None,
         limit: int = 100) -> list[dict]:
    """Oldest first, so ``after_id`` pages forward."""
    clause, params = pool.where([("deployment = %s", deployment), ("container = %s", container),
                                 ("kind = %s", kind), ("who = %s", who), ("at >= %s", since),
                                 ("id > %s", after_id)])
    params.append(limit)
    return pool.fetchall(f"SELECT {COLUMNS} FROM events {clause} ORDER BY id LIMIT %s", params)


def prune(seconds: float) -> int:
    return pool.execute("DELETE FROM events WHERE at < now() - make_interval(secs => %s)",
                        (seconds,))
