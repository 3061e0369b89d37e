"""The rollup's reads and writes, all on the caller's connection (one transaction per run,
under a lock per period length): the instances to look at with their lifecycle, cursors
and new samples; rows written, closed, summed into longer periods, and pruned.

Rows of closed periods are never updated (a trigger refuses it): a run sets the time
amounts of its instances' open rows, adds their new samples' amounts, removes open rows
left empty, then closes the periods that ended."""
from __future__ import annotations

from datetime import datetime

from db import locks

TIME = ("running_us", "paused_us", "cpu_request", "memory_request")
SAMPLED = ("cpu_used_ns", "memory_used", "net_rx", "net_tx")
KEYS = "unnest(%s::text[], %s::text[]) AS k(node, docker_id)"


def lock(conn, period_seconds: int) -> bool:
    """One run per period length at a time (False: another one runs now)."""
    return locks.try_in_transaction(conn, "usage-rollup", str(period_seconds))


def progress(conn, period_seconds: int) -> dict | None:
    """How far the periods of this length are closed, since when they are metered, and
    when the last run started."""
    return conn.execute("SELECT closed_until, metered_since, ran_at FROM usage_rollups"
                        " WHERE period_seconds = %s", (period_seconds,)).fetchone()


def set_closed_until(conn, period_seconds: int, at: datetime) -> None:
    """Periods before ``at`` are closed (the first time, metering starts there)."""
    conn.execute("INSERT INTO usage_rollups (period_seconds, closed_until, metered_since)"
                 " VALUES (%s, %s, %s) ON CONFLICT (period_seconds) DO UPDATE SET"
                 " closed_until = EXCLUDED.closed_until, ran_at = now()",
                 (period_seconds, at, at))


def candidates(conn, period_seconds: int, seen_since: datetime, changed_since: datetime,
               closing: datetime, now: datetime) -> list[dict]:
    """The instances a run may change: with a run or pause still open (a node down keeps
    them open: its outage ends their billing), or, among those seen since ``seen_since``,
    never rolled up at this length, with a lifecycle changed since ``changed_since``, with
    a sample newer than their cursor, or with a row in a period that closes now. The
    others' rows are as the last run left them, and still right."""
    return conn.execute(
        "SELECT i.node, i.docker_id FROM usage_instances i LEFT JOIN usage_state s"
        "  ON s.period_seconds = %(p)s AND s.node = i.node AND s.docker_id = i.docker_id"
        " WHERE EXISTS (SELECT 1 FROM usage_spans sp WHERE sp.node = i.node"
        "   AND sp.docker_id = i.docker_id AND sp.ended_at IS NULL)"
        " OR (i.last_seen >= %(seen)s AND (s.node IS NULL OR i.changed_at >= %(changed)s"
        "  OR EXISTS (SELECT 1 FROM health_snapshots h WHERE h.docker_id = i.docker_id"
        "   AND h.node = i.node AND h.at > COALESCE(s.cursor_at, '-infinity')"
        "   AND h.at <= %(now)s AND (h.cpu_ns IS NOT NULL OR h.memory_bytes IS NOT NULL"
        "   OR h.net_rx IS NOT NULL))"
        "  OR EXISTS (SELECT 1 FROM usage_rows r WHERE r.period_seconds = %(p)s"
        "   AND NOT r.closed AND r.period_start < %(closing)s AND r.node = i.node"
        "   AND r.docker_id = i.docker_id)))"
        " ORDER BY i.node, i.docker_id",
        {"p": period_seconds, "seen": seen_since, "changed": changed_since,
         "closing": closing, "now": now}).fetchall()


def _keys(keys: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [k[0] for k in keys], [k[1] for k in keys]


def spans(conn, keys) -> list[dict]:
    return conn.execute(
        f"SELECT s.node, s.docker_id, s.kind, s.started_at, s.ended_at FROM {KEYS}"
        " JOIN usage_spans s USING (node, docker_id) ORDER BY s.started_at", _keys(keys)
    ).fetchall()


def limits(conn, keys) -> list[dict]:
    return conn.execute(
        f"SELECT l.node, l.docker_id, l.at, l.cpu_nanos, l.memory FROM {KEYS}"
        " JOIN usage_limits l USING (node, docker_id) ORDER BY l.at", _keys(keys)).fetchall()


def outages(conn) -> list[dict]:
    return conn.execute("SELECT node, down_at, up_at FROM node_outages").fetchall()


def states(conn, period_seconds: int, keys) -> list[dict]:
    return conn.execute(
        f"SELECT s.* FROM {KEYS} JOIN usage_state s USING (node, docker_id)"
        " WHERE s.period_seconds = %s", (*_keys(keys), period_seconds)).fetchall()


def samples(conn, period_seconds: int, keys, now: datetime) -> list[dict]:
    """Each instance's samples newer than its cursor (up to now), oldest first."""
    return conn.execute(
        f"SELECT k.node, k.docker_id, h.at, h.cpu_ns, h.memory_bytes, h.net_rx, h.net_tx"
        f" FROM {KEYS} JOIN health_snapshots h ON h.docker_id = k.docker_id"
        "  AND h.node = k.node"
        " LEFT JOIN usage_state s ON s.period_seconds = %s AND s.node = k.node"
        "  AND s.docker_id = k.docker_id"
        " WHERE h.at > COALESCE(s.cursor_at, '-infinity') AND h.at <= %s"
        "  AND (h.cpu_ns IS NOT NULL OR h.memory_bytes IS NOT NULL OR h.net_rx IS NOT NULL)"
        " ORDER BY k.node, k.docker_id, h.at", (*_keys(keys), period_seconds, now)).fetchall()


def write_rows(conn, period_seconds: int, keys, rows: list[tuple]) -> None:
    """``rows``: (period_start, node, docker_id, running_us, paused_us, cpu_request,
    memory_request, cpu_used_ns, memory_used, net_rx, net_tx). The instances' open rows
    get the time amounts given (those not given are 0 now) and add the sampled ones."""
    conn.execute(
        f"UPDATE usage_rows r SET {', '.join(f'{f} = 0' for f in TIME)} FROM {KEYS}"
        " WHERE r.period_seconds = %s AND NOT r.closed AND r.node = k.node"
        " AND r.docker_id = k.docker_id", (*_keys(keys), period_seconds))
    columns = ("period_start", "node", "docker_id") + TIME + SAMPLED
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO usage_rows (period_seconds, {', '.join(columns)}) VALUES"
            f" (%s, {', '.join(['%s'] * len(columns))}) ON CONFLICT (period_seconds,"
            " period_start, node, docker_id) DO UPDATE SET "
            + ", ".join([f"{f} = EXCLUDED.{f}" for f in TIME]
                        + [f"{f} = usage_rows.{f} + EXCLUDED.{f}" for f in SAMPLED]),
            [(period_seconds, *row) for row in rows])
    conn.execute(f"DELETE FROM usage_rows WHERE period_seconds = %s AND NOT closed AND"
                 f" {' AND '.join(f'{f} = 0' for f in TIME + SAMPLED)}", (period_seconds,))


def write_states(conn, period_seconds: int, rows: list[tuple]) -> None:
    """``rows``: (node, docker_id, cursor_at, cursor_run, cpu_ns, net_rx, net_tx, memory,
    memory_until, billed_running_us, billed_paused_us, billed_cpu_request,
    billed_memory_request)."""
    columns = ("node", "docker_id", "cursor_at", "cursor_run", "cpu_ns", "net_rx", "net_tx",
               "memory", "memory_until", "billed_running_us", "billed_paused_us",
               "billed_cpu_request", "billed_memory_request")
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO usage_state (period_seconds, {', '.join(columns)}) VALUES"
            f" (%s, {', '.join(['%s'] * len(columns))}) ON CONFLICT (period_seconds, node,"
            " docker_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[2:]),
            [(period_seconds, *row) for row in rows])


def write_capacity(conn, period_seconds: int, rows: list[tuple]) -> None:
    """``rows``: (period_start, node, up_us, cpu_capacity, memory_capacity) of open periods."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO usage_node_rows (period_seconds, period_start, node, up_us,"
            " cpu_capacity, memory_capacity) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (period_seconds, period_start, node) DO UPDATE SET"
            " up_us = EXCLUDED.up_us, cpu_capacity = EXCLUDED.cpu_capacity,"
            " memory_capacity = EXCLUDED.memory_capacity",
            [(period_seconds, *row) for row in rows])


def close(conn, period_seconds: int, until: datetime) -> int:
    """Close the periods that start before ``until``; how many rows were closed."""
    closed = conn.execute("UPDATE usage_rows SET closed = true WHERE period_seconds = %s"
                          " AND period_start < %s AND NOT closed", (period_seconds, until)).rowcount
    conn.execute("UPDATE usage_node_rows SET closed = true WHERE period_seconds = %s"
                 " AND period_start < %s AND NOT closed", (period_seconds, until))
    return closed


def aggregate(conn, fine: int, coarse: int, since: datetime, until: datetime) -> None:
    """The open rows of ``coarse`` periods from ``since``: sums of their ``fine`` rows
    (closed and open); those before ``until`` are complete and close."""
    amounts = TIME + SAMPLED
    conn.execute(f"UPDATE usage_rows SET {', '.join(f'{f} = 0' for f in amounts)}"
                 " WHERE period_seconds = %s AND NOT closed AND period_start >= %s",
                 (coarse, since))
    start = "date_bin(make_interval(secs => %s), period_start, TIMESTAMPTZ 'epoch')"
    conn.execute(
        f"INSERT INTO usage_rows (period_seconds, period_start, node, docker_id,"
        f" {', '.join(amounts)}) SELECT %s, {start} AS p, node, docker_id,"
        f" {', '.join(f'sum({f})' for f in amounts)} FROM usage_rows"
        " WHERE period_seconds = %s AND period_start >= %s GROUP BY p, node, docker_id"
        " ON CONFLICT (period_seconds, period_start, node, docker_id) DO UPDATE SET "
        + ", ".join(f"{f} = EXCLUDED.{f}" for f in amounts), (coarse, coarse, fine, since))
    conn.execute(f"DELETE FROM usage_rows WHERE period_seconds = %s AND NOT closed AND"
                 f" {' AND '.join(f'{f} = 0' for f in amounts)}", (coarse,))
    conn.execute(
        "INSERT INTO usage_node_rows (period_seconds, period_start, node, up_us, cpu_capacity,"
        f" memory_capacity) SELECT %s, {start} AS p, node, sum(up_us), sum(cpu_capacity),"
        " sum(memory_capacity) FROM usage_node_rows WHERE period_seconds = %s"
        " AND period_start >= %s GROUP BY p, node ON CONFLICT (period_seconds, period_start,"
        " node) DO UPDATE SET up_us = EXCLUDED.up_us, cpu_capacity = EXCLUDED.cpu_capacity,"
        " memory_capacity = EXCLUDED.memory_capacity", (coarse, coarse, fine, since))
    close(conn, coarse, until)


def prune(conn, period_seconds: int, before: datetime) -> int:
    """Rows of periods that started before ``before`` (the retention)."""
    gone = conn.execute("DELETE FROM usage_rows WHERE period_seconds = %s"
                        " AND period_start < %s", (period_seconds, before)).rowcount
    conn.execute("DELETE FROM usage_node_rows WHERE period_seconds = %s AND period_start < %s",
                 (period_seconds, before))
    return gone


def forget_instances(conn, seen_before: datetime) -> int:
    """Instances last seen before then with no run open: their records go (their rows stay
    until the retention removes them)."""
    gone = conn.execute(
        "DELETE FROM usage_instances i WHERE last_seen < %s AND NOT EXISTS (SELECT 1 FROM"
        " usage_spans s WHERE s.node = i.node AND s.docker_id = i.docker_id AND"
        " s.ended_at IS NULL) RETURNING node, docker_id", (seen_before,)).fetchall()
    if gone:
        keys = _keys([(r["node"], r["docker_id"]) for r in gone])
        for table in ("usage_spans", "usage_limits", "usage_state"):
            conn.execute(f"DELETE FROM {table} t USING {KEYS} WHERE t.node = k.node"
                         " AND t.docker_id = k.docker_id", keys)
    conn.execute("DELETE FROM node_outages WHERE up_at < %s", (seen_before,))
    return len(gone)
