"""The jobs table: one row per requested Docker operation (the outbox and the record)."""
from __future__ import annotations

import json
import uuid

from psycopg.types.json import Jsonb

from db import pool

TERMINAL = ("succeeded", "failed", "cancelled")
COLUMNS = ("id, kind, target, status, queue, actor, progress, result, error, attempts, "
           "requested_by, idempotency_key, sends, sent_at, created_at, started_at, finished_at")


def create(kind: str, target: str, actor: str, queue: str, args: dict,
           requested_by: str | None, conn=None, sent: bool = False) -> dict:
    """Insert a queued job; ``conn`` lets the caller write desired state in the same
    transaction. ``sent``: recorded as sent once already (the caller sends its message right
    after the commit and calls ``mark_unsent`` if that fails: one write fewer)."""
    sql = (f"INSERT INTO jobs (kind, target, actor, queue, args, requested_by, sent_at, sends)"
           f" VALUES (%s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END, %s::int)"
           f" RETURNING {COLUMNS}")
    params = (kind, target, actor, queue, Jsonb(args), requested_by, sent, 1 if sent else 0)
    if conn is not None:
        return conn.execute(sql, params).fetchone()
    with pool.connection() as c:
        return c.execute(sql, params).fetchone()


def get(job_id: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS} FROM jobs WHERE id = %s", (job_id,))


def find_by_prefix(hex_prefix: str) -> tuple[dict | None, int]:
    """The job whose id starts with ``hex_prefix`` (1-32 hex digits, no dashes) and how many
    ids do: (job, 1) for a unique match, (None, count) otherwise.

    A range on the primary key rather than a LIKE over id::text, so it reads the index
    (uuids compare byte by byte, which is the order of their hex digits)."""
    low = str(uuid.UUID(hex_prefix.ljust(32, "0")))
    high = str(uuid.UUID(hex_prefix.ljust(32, "f")))
    rows = pool.fetchall(f"SELECT {COLUMNS}, count(*) OVER () AS matches FROM jobs"
                         " WHERE id BETWEEN %s AND %s LIMIT 2", (low, high))
    if not rows:
        return None, 0
    count = rows[0].pop("matches")
    return (rows[0] if count == 1 else None), count


def get_with_args(job_id: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS}, args FROM jobs WHERE id = %s", (job_id,))


def find(status: str | None = None, kind: str | None = None, target: str | None = None,
         limit: int = 50, before: str | None = None) -> list[dict]:
    """Newest first; ``before`` is a created_at cursor (exclusive)."""
    stamp, _, ident = (before or "").partition("|")
    clause, params = pool.where([("status = %s", status), ("kind = %s", kind),
                                 ("target = %s", target),
                                 ("(created_at, id::text) < (%s::timestamptz, %s)",
                                  (stamp, ident) if before else None)])
    params.append(limit)
    return pool.fetchall(f"SELECT {COLUMNS} FROM jobs {clause} "
                         "ORDER BY created_at DESC, id::text DESC LIMIT %s", params)


def mark_sent(job_id: str) -> None:
    pool.execute("UPDATE jobs SET sent_at = now(), sends = sends + 1 WHERE id = %s", (job_id,))


def mark_unsent(job_id: str) -> None:
    """A job created as sent whose message could not be sent: the outbox relay's now."""
    pool.execute("UPDATE jobs SET sent_at = NULL, sends = sends - 1 WHERE id = %s AND"
                 " sends > 0", (job_id,))


def begin(job_id: str) -> dict | None:
    """Mark a job running for one delivery of its message.

    Returns the job (with args) to run, or None when the message must be dropped: the
    job ended already (a redelivery after success) or was cancelled while queued.
    """
    return pool.fetchone(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1,"
        " started_at = COALESCE(started_at, now()), updated_at = now()"
        " WHERE id = %s AND status IN ('queued', 'running')"
        f" RETURNING {COLUMNS}, args", (job_id,))


def set_progress(job_id: str, done: int, total: int, message: str) -> None:
    pool.execute("UPDATE jobs SET progress = %s, updated_at = now() WHERE id = %s",
                 (Jsonb({"done": done, "total": total, "message": message}), job_id))


def cap_result(result, cap_bytes: int):
    """Keep results within the configured size; larger ones are cut and marked."""
    if result is None:
        return None
    text = json.dumps(result, default=str)
    if len(text.encode()) <= cap_bytes:
        return json.loads(text)
    return {"truncated": True, "size": len(text), "preview": text[: max(0, cap_bytes - 200)]}


def finish(job_id: str, status: str, result=None, error: str | None = None,
           cap_bytes: int = 65536) -> dict | None:
    """Record the end of a job (only once: an ended job keeps its first outcome)."""
    assert status in TERMINAL
    return pool.fetchone(
        "UPDATE jobs SET status = %s, result = %s, error = %s, finished_at = now(),"
        " updated_at = now() WHERE id = %s AND status IN ('queued', 'running')"
        f" RETURNING {COLUMNS}",
        (status, Jsonb(cap_result(result, cap_bytes)) if result is not None else None,
         error, job_id))


def cancel(job_id: str) -> dict | None:
    """Cancel a queued job; returns it, or None when it is no longer queued."""
    return pool.fetchone(
        "UPDATE jobs SET status = 'cancelled', finished_at = now(), updated_at = now(),"
        " error = 'cancelled by request' WHERE id = %s AND status = 'queued'"
        f" RETURNING {COLUMNS}", (job_id,))


def unsent(min_age: float, resend_after: float, limit: int = 200) -> list[dict]:
    """Queued jobs never handed to Redis, or handed long ago and never picked up."""
    return pool.fetchall(
        "SELECT id, actor, queue, sends FROM jobs WHERE status = 'queued' AND ("
        " (sent_at IS NULL AND created_at < now() - make_interval(secs => %s))"
        " OR sent_at < now() - make_interval(secs => %s)) ORDER BY created_at LIMIT %s",
        (min_age, resend_after, limit))


def fail_abandoned(running_for: float, max_sends: int) -> list[dict]:
    """Fail jobs that can no longer end by themselves and say why. A running job is lost
    when it has shown no sign of life (a start, a progress report) for ``running_for``: a
    long job that reports progress (a drain with a long deadline, a slow pull) lives on."""
    lost = pool.fetchall(
        "UPDATE jobs SET status = 'failed', finished_at = now(), updated_at = now(),"
        " error = 'worker lost: the job ran past its time limit and the broker''s redelivery"
        " window without finishing' WHERE status = 'running'"
        " AND updated_at < now() - make_interval(secs => %s) RETURNING id, error",
        (running_for,))
    never = pool.fetchall(
        "UPDATE jobs SET status = 'failed', finished_at = now(), updated_at = now(),"
        " error = 'never picked up: sent ' || sends || ' times without a worker starting it'"
        " WHERE status = 'queued' AND sends >= %s RETURNING id, error", (max_sends,))
    return lost + never


def delete_ended_before(seconds: float) -> int:
    return pool.execute("DELETE FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')"
                        " AND finished_at < now() - make_interval(secs => %s)", (seconds,))


def fail_queued_on(queue: str, error: str) -> list[dict]:
    """Jobs still queued for a queue whose consumer is gone (a node declared down)."""
    return pool.fetchall("UPDATE jobs SET status = 'failed', error = %s, finished_at = now(),"
                         " updated_at = now() WHERE queue = %s AND status = 'queued'"
                         " RETURNING id", (error, queue))
