"""Startup phases of instances: the moments each reached (recorded by whoever sees them:
the planner, the node's executor), and the histogram of the phases, added to once per
instance when it is ready (cumulative: it survives restarts and the rows' pruning)."""
from __future__ import annotations

import math

from core import startup
from db import pool

MOMENT_COLUMNS = {m: f"{m}_at" for m in startup.MOMENTS}
COLUMNS = ("container, deployment, node, pulled, planned_at, image_ready_at, created_at,"
           " started_at, running_at, ready_at")


def plan(name: str, deployment: str, node: str | None, conn) -> None:
    """An instance was planned (its incarnation reserved): its startup begins now."""
    conn.execute("INSERT INTO instance_startup (container, deployment, node, planned_at)"
                 " VALUES (%s, %s, %s, now()) ON CONFLICT (container) DO NOTHING",
                 (name, deployment, node or ""))


def mark(name: str, moment: str, at: float | None = None, pulled: bool | None = None) -> None:
    """The first time ``name`` reached ``moment`` (now, or ``at`` in unix seconds); a
    container without a startup row (a standalone one) is left alone."""
    column = MOMENT_COLUMNS[moment]
    pool.execute(f"UPDATE instance_startup SET {column} = COALESCE({column},"
                 " COALESCE(to_timestamp(%s), now())), pulled = pulled OR COALESCE(%s, false)"
                 " WHERE container = %s", (at, pulled, name))


def ready(moments: list[tuple[str, float]]) -> list[dict]:
    """Mark instances ready (name, unix seconds) that were not yet; for each newly ready
    one, its phases (core.startup) are added to the histogram in the same transaction.
    Returns the newly ready rows, each with its ``phases``."""
    if not moments:
        return []
    names, at = [m[0] for m in moments], [m[1] for m in moments]
    epochs = ", ".join(f"extract(epoch FROM {c}) AS {m}" for m, c in MOMENT_COLUMNS.items())
    with pool.connection() as conn:
        rows = conn.execute(
            "UPDATE instance_startup s SET ready_at = to_timestamp(r.at)"
            " FROM unnest(%s::text[], %s::float8[]) AS r(name, at)"
            " WHERE s.container = r.name AND s.ready_at IS NULL"
            f" RETURNING s.container, s.deployment, s.node, s.pulled, {epochs}",
            (names, at)).fetchall()
        for row in rows:
            row["phases"] = startup.phases({m: _float(row[m]) for m in startup.MOMENTS})
            for phase, seconds in row["phases"].items():
                observe(conn, phase, row["pulled"], seconds)
    return rows


def _float(value) -> float | None:
    return float(value) if value is not None else None


def observe(conn, phase: str, pulled: bool, seconds: float) -> None:
    conn.execute("INSERT INTO startup_histogram (phase, pulled, le, n)"
                 " SELECT %s, %s, le, 1 FROM unnest(%s::float8[]) AS le"
                 " ON CONFLICT (phase, pulled, le) DO UPDATE SET n = startup_histogram.n + 1",
                 (phase, pulled, startup.buckets_of(seconds)))
    conn.execute("INSERT INTO startup_sums (phase, pulled, seconds) VALUES (%s, %s, %s)"
                 " ON CONFLICT (phase, pulled) DO UPDATE SET"
                 " seconds = startup_sums.seconds + EXCLUDED.seconds", (phase, pulled, seconds))


def histogram() -> dict[tuple[str, bool], dict]:
    """(phase, pulled) -> {"buckets": {le: cumulative count}, "count", "sum"}."""
    out: dict = {}
    for row in pool.fetchall("SELECT phase, pulled, le, n FROM startup_histogram"):
        entry = out.setdefault((row["phase"], row["pulled"]), {"buckets": {}, "sum": 0.0})
        entry["buckets"][row["le"]] = row["n"]
    for row in pool.fetchall("SELECT phase, pulled, seconds FROM startup_sums"):
        out.setdefault((row["phase"], row["pulled"]), {"buckets": {}})["sum"] = row["seconds"]
    for entry in out.values():
        entry["count"] = entry["buckets"].get(math.inf, 0)
    return out


def get(name: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS} FROM instance_startup WHERE container = %s",
                         (name,))


def prune(seconds: float) -> int:
    """Rows of instances planned longer ago than ``seconds`` (the histogram stays)."""
    return pool.execute("DELETE FROM instance_startup WHERE planned_at <"
                        " now() - make_interval(secs => %s)", (seconds,))
