"""The audit trail: every job and every event that names its caller, as one list."""
from __future__ import annotations

from db import pool


def find(since=None, who: str | None = None, limit: int = 100) -> list[dict]:
    where, params = ["who IS NOT NULL"], []
    if since is not None:
        where.append("at >= %s")
        params.append(since)
    if who:
        where.append("who = %s")
        params.append(who)
    params.append(limit)
    return pool.fetchall(
        "SELECT * FROM ("
        " SELECT created_at AS at, requested_by AS who, 'job' AS source, kind AS action,"
        "  target, status, id::text AS ref, jsonb_build_object('error', error) AS detail"
        "  FROM jobs"
        " UNION ALL"
        " SELECT at, who, 'event', kind, COALESCE(container, deployment), NULL, id::text,"
        "  detail FROM events"
        f") a WHERE {' AND '.join(where)} ORDER BY at DESC LIMIT %s", params)
