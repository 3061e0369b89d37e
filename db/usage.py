"""Usage metering's records of what the agents observe: each container incarnation (by node
and Docker id), its runs (Docker's StartedAt .. FinishedAt), its pauses (the pause and
unpause events) and its limits over time. The rollup reads them (db.usage_rollup), and
looks again at an instance whose records changed (changed_at)."""
from __future__ import annotations

from datetime import datetime

from psycopg.types.json import Jsonb

from db import locks, pool

LIVE = ("running", "paused", "starting")


def observe(node: str, f: dict, at: datetime, cpu_nanos: int | None, memory: int | None,
            paused: bool) -> None:
    """Record one observation of a container (``core.observe.fields``) made at ``at`` (a
    Docker event's time, or now for a full sync); ``paused``: whether it is paused then."""
    docker_id, started, finished = f["docker_id"], f["started_at"], f["finished_at"]
    labels = {k: v for k, v in (f["labels"] or {}).items()
              if not k.startswith("harbormaster.") and k != "managed-by"}
    with pool.connection() as conn:
        # the agent's event and sync threads may observe one container at once
        locks.in_transaction(conn, "usage", f"{node}/{docker_id}")
        conn.execute(
            "INSERT INTO usage_instances (node, docker_id, name, kind, deployment, labels)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (node, docker_id) DO UPDATE SET"
            " name = EXCLUDED.name, labels = EXCLUDED.labels, last_seen = now()",
            (node, docker_id, f["name"], f["kind"],
             (f["labels"] or {}).get("harbormaster.deployment"), Jsonb(labels)))
        changed = 0
        if started is not None:
            changed += _runs(conn, node, docker_id, started, finished, f["state"])
            changed += _limits(conn, node, docker_id, started, at, cpu_nanos, memory)
        changed += _pauses(conn, node, docker_id, paused, f["state"], at, finished)
        if changed:
            _changed(conn, node, docker_id)


def _changed(conn, node: str, docker_id: str) -> None:
    """The rollup looks again at an instance whose lifecycle changed (the clock's time, not
    the transaction's start: a rollup that began before this commits must not miss it)."""
    conn.execute("UPDATE usage_instances SET changed_at = clock_timestamp() WHERE node = %s"
                 " AND docker_id = %s", (node, docker_id))


def _runs(conn, node: str, docker_id: str, started, finished, state: str) -> int:
    """The run Docker reports, and the end of an earlier one left open: rows changed."""
    ended = finished is not None and finished >= started
    if not ended and state not in LIVE:
        return 0  # created, never started
    changed = conn.execute(
        "INSERT INTO usage_spans (node, docker_id, kind, started_at, ended_at)"
        " VALUES (%s, %s, 'run', %s, %s) ON CONFLICT (node, docker_id, kind, started_at)"
        " DO UPDATE SET ended_at = EXCLUDED.ended_at WHERE usage_spans.ended_at IS NULL"
        " AND EXCLUDED.ended_at IS NOT NULL",
        (node, docker_id, started, finished if ended else None)).rowcount
    # an earlier run still open ended before this one started: at the FinishedAt Docker
    # keeps (the previous run's, while this one runs), or at this start
    return changed + conn.execute(
        "UPDATE usage_spans SET ended_at = CASE WHEN %s::timestamptz > started_at"
        "  AND %s::timestamptz <= %s::timestamptz THEN %s::timestamptz ELSE %s::timestamptz END"
        " WHERE node = %s AND docker_id = %s AND kind = 'run' AND ended_at IS NULL"
        " AND started_at < %s",
        (finished, finished, started, finished, started, node, docker_id, started)).rowcount


def _pauses(conn, node: str, docker_id: str, paused: bool, state: str, at: datetime,
            finished) -> int:
    if paused:
        return conn.execute(
            "INSERT INTO usage_spans (node, docker_id, kind, started_at)"
            " SELECT %s, %s, 'pause', %s WHERE NOT EXISTS (SELECT 1 FROM usage_spans"
            "  WHERE node = %s AND docker_id = %s AND kind = 'pause' AND ended_at IS NULL)"
            " ON CONFLICT DO NOTHING", (node, docker_id, at, node, docker_id)).rowcount
    # not paused (any more): a pause still open ended at this moment, or when the run did
    end = min(at, finished) if finished is not None and state not in LIVE else at
    return conn.execute(
        "UPDATE usage_spans SET ended_at = GREATEST(started_at, %s) WHERE node = %s"
        " AND docker_id = %s AND kind = 'pause' AND ended_at IS NULL",
        (end, node, docker_id)).rowcount


def _limits(conn, node: str, docker_id: str, started, at: datetime, cpu_nanos: int | None,
            memory: int | None) -> int:
    """A row when the limits differ from the last ones recorded (the first from the run's
    start: they were set at creation)."""
    last = conn.execute("SELECT cpu_nanos, memory FROM usage_limits WHERE node = %s"
                        " AND docker_id = %s ORDER BY at DESC LIMIT 1",
                        (node, docker_id)).fetchone()
    if last is not None and (last["cpu_nanos"], last["memory"]) == (cpu_nanos, memory):
        return 0
    return conn.execute("INSERT INTO usage_limits (node, docker_id, at, cpu_nanos, memory)"
                        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (node, docker_id, started if last is None else at, cpu_nanos,
                         memory)).rowcount


def gone(node: str, docker_id: str, at: datetime) -> None:
    """The container is destroyed: a run or pause whose end was missed ends now."""
    with pool.connection() as conn:
        if conn.execute("UPDATE usage_spans SET ended_at = GREATEST(started_at, %s)"
                        " WHERE node = %s AND docker_id = %s AND ended_at IS NULL",
                        (at, node, docker_id)).rowcount:
            _changed(conn, node, docker_id)
