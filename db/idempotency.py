"""Idempotency keys: the first answer to a request, kept so that a retry gets it again."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import pool

COLUMNS = "who, key, fingerprint, request, status, body, location, created_at"


def claim(who: str, key: str, fingerprint: str, request: str) -> dict | None:
    """Reserve a key for a request being answered now; None when it was free, else the
    row already there (answered, or still being answered by another request)."""
    with pool.connection() as conn:
        inserted = conn.execute(
            "INSERT INTO idempotency_keys (who, key, fingerprint, request) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING key", (who, key, fingerprint, request)).fetchone()
        if inserted is not None:
            return None
        return conn.execute(f"SELECT {COLUMNS} FROM idempotency_keys WHERE who = %s AND key = %s",
                            (who, key)).fetchone()


def answer(who: str, key: str, status: int, body, location: str | None) -> None:
    pool.execute("UPDATE idempotency_keys SET status = %s, body = %s, location = %s"
                 " WHERE who = %s AND key = %s", (status, Jsonb(body), location, who, key))


def release(who: str, key: str) -> None:
    """The request failed before it had an answer worth keeping: the key is free again."""
    pool.execute("DELETE FROM idempotency_keys WHERE who = %s AND key = %s AND status IS NULL",
                 (who, key))


def prune(seconds: float) -> int:
    return pool.execute("DELETE FROM idempotency_keys WHERE created_at < now() -"
                        " make_interval(secs => %s)", (seconds,))
