"""Health snapshots (one batched insert per sweep), alert state, and the reads the API
serves: latest per container, history, series downsampled in SQL, totals."""
from __future__ import annotations

from db import pool

SNAPSHOT_FIELDS = ("at", "container", "deployment", "node", "running", "cpu_ns", "memory_bytes",
                   "memory_limit", "cpu_limit", "net_rx", "net_tx", "blk_read", "blk_write",
                   "pids", "cpu_percent", "memory_percent", "status", "source", "docker_id")


def latest_counters(names: list[str]) -> dict[str, dict]:
    if not names:
        return {}
    rows = pool.fetchall(
        "SELECT container, extract(epoch FROM at) AS at, cpu_ns, running"
        " FROM latest_snapshots(now() - interval '1 hour') WHERE container = ANY(%s)",
        (names,))
    return {r["container"]: r for r in rows}


def insert_snapshots(rows: list[tuple]) -> None:
    """One COPY for the whole sweep."""
    if not rows:
        return
    with pool.connection() as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY health_snapshots ({', '.join(SNAPSHOT_FIELDS)}) FROM STDIN") \
                    as copy:
                for row in rows:
                    copy.write_row(row)


def alert_states(names: list[str]) -> dict[tuple[str, str], bool]:
    if not names:
        return {}
    rows = pool.fetchall("SELECT container, kind, firing FROM alert_state"
                         " WHERE container = ANY(%s)", (names,))
    return {(r["container"], r["kind"]): r["firing"] for r in rows}


def set_alert(container: str, kind: str, firing: bool, conn) -> None:
    conn.execute("INSERT INTO alert_state (container, kind, firing) VALUES (%s, %s, %s)"
                 " ON CONFLICT (container, kind) DO UPDATE SET firing = EXCLUDED.firing,"
                 " changed_at = now()", (container, kind, firing))


def latest(names: list[str], max_age: float | None = None) -> list[dict]:
    """The newest snapshot of each of ``names`` (of the last ``max_age`` seconds): one
    index probe per name."""
    if not names:
        return []
    return pool.fetchall(
        "SELECT s.* FROM unnest(%s::text[]) AS n(name) CROSS JOIN LATERAL latest_snapshot("
        "n.name, CASE WHEN %s::float8 IS NULL THEN '-infinity'::timestamptz"
        " ELSE now() - make_interval(secs => %s) END) s", (names, max_age, max_age))


def newest_at():
    """When the newest snapshot was taken (None: never)."""
    return pool.fetchone("SELECT max(at) AS at FROM health_snapshots")["at"]


def load_by_deployment() -> list[dict]:
    """Average cpu and memory % of each deployment's running instances (last 5 minutes)."""
    return pool.fetchall(
        "SELECT deployment, round(avg(cpu_percent)::numeric, 2)::float8 AS cpu,"
        " round(avg(memory_percent)::numeric, 2)::float8 AS memory"
        " FROM latest_snapshots(now() - interval '5 minutes') WHERE running"
        " GROUP BY deployment")


def history(name: str, since=None, limit: int = 500) -> list[dict]:
    if since is None:
        return pool.fetchall("SELECT * FROM health_snapshots WHERE container = %s"
                             " ORDER BY at DESC LIMIT %s", (name, limit))
    return pool.fetchall("SELECT * FROM health_snapshots WHERE container = %s AND at >= %s"
                         " ORDER BY at DESC LIMIT %s", (name, since, limit))


def series(name: str, since, step_seconds: float, limit: int = 2000) -> list[dict]:
    """Downsampled in SQL: one point per step (averages, maxima of gauges)."""
    return pool.fetchall(
        "SELECT date_bin(make_interval(secs => %s), at, TIMESTAMPTZ '2000-01-01') AS at,"
        " round(avg(cpu_percent)::numeric, 2)::float8 AS cpu_percent,"
        " round(avg(memory_percent)::numeric, 2)::float8 AS memory_percent,"
        " max(memory_bytes) AS memory_bytes, max(net_rx) AS net_rx, max(net_tx) AS net_tx,"
        " max(blk_read) AS blk_read, max(blk_write) AS blk_write, max(pids) AS pids,"
        " count(*) AS samples"
        " FROM health_snapshots WHERE container = %s AND at >= %s"
        " GROUP BY 1 ORDER BY 1 LIMIT %s", (step_seconds, name, since, limit))


def totals() -> dict:
    return pool.fetchone(
        "SELECT count(*) FILTER (WHERE running) AS running,"
        " coalesce(sum(cpu_percent * cpu_limit) FILTER (WHERE running), 0) AS cpu_core_percent,"
        " coalesce(sum(memory_bytes) FILTER (WHERE running), 0) AS memory_bytes,"
        " coalesce(sum(net_rx), 0) AS net_rx, coalesce(sum(net_tx), 0) AS net_tx"
        " FROM latest_snapshots(now() - interval '10 minutes') latest"
        " JOIN containers c ON c.name = latest.container AND c.state <> 'removed'"
        "  AND c.role = 'active'")


def prune(seconds: float) -> int:
    return pool.execute("DELETE FROM health_snapshots WHERE at < now() - make_interval("
                        "secs => %s)", (seconds,))
