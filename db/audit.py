"""The audit trail: every job and every event that names its caller, as one list."""
from __future__ import annotations

from db import pool


def find(since=None, who: str | None = None, limit: int = 100) -> list[dict]:
    clause, params = pool.where([("at >= %s", since), ("who = %s", who)])
    clause = f"{clause} AND who IS NOT NULL" if clause else "WHERE who IS NOT NULL"
    params.append(limit)
    return pool.fetchall(
        "SELECT * FROM ("
        " SELECT created_at AS at, requested_by AS who, 'job' AS source, kind AS action,"
        "  target, status, id::text AS ref, jsonb_build_object('error', error) AS detail"
        "  FROM jobs"
        " UNION ALL"
        " SELECT at, who, 'event', kind, COALESCE(container, deployment), NULL, id::text,"
        "  detail FROM events"
        f") a {clause} ORDER BY at DESC LIMIT %s", params)
