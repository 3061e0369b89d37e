"""Every Postgres advisory lock the platform takes, in one place: their ids and how they are
held. Session locks live as long as their dedicated connection (a process that dies releases
them with it); transaction locks as long as the caller's transaction.
"""
from __future__ import annotations

from contextlib import contextmanager

import psycopg

from db import pool

MIGRATIONS = 7340001        # one migrator at a time
SCHEDULER_LEADER = 7340002  # the one scheduler that fires periodic work
# taken by the events trigger (db/migrations/0015_streams.sql) as each transaction that wrote
# events commits: event cursors follow commit order
EVENT_CURSOR = 7340003


class Busy(Exception):
    """Someone else holds the lock (and the caller asked not to wait)."""


def leader_session(application_name: str) -> psycopg.Connection:
    """A connection of its own for the scheduler's leader lock (its name tells an operator,
    and the tests, which process it is)."""
    return pool.direct_connect(autocommit=True, application_name=application_name)


def try_lead(session: psycopg.Connection) -> bool:
    """Take the leader lock on ``session`` if nobody holds it."""
    return session.execute("SELECT pg_try_advisory_lock(%s) AS got",
                           (SCHEDULER_LEADER,)).fetchone()["got"]


def still_held(session: psycopg.Connection) -> bool:
    """Whether a session lock's connection is alive (Postgres releases its locks with it)."""
    try:
        session.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def agent_session(node: str) -> psycopg.Connection | None:
    """One live agent per node name: the claim, held on a connection of its own for the
    agent's life (None: another agent holds it)."""
    conn = pool.direct_connect(autocommit=True, application_name=f"harbormaster-agent:{node}")
    if conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS got",
                    (f"agent:{node}",)).fetchone()["got"]:
        return conn
    conn.close()
    return None


def leader_held() -> bool:
    """Whether some scheduler holds the leader lock now."""
    row = pool.fetchone("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
                        " AND objid = %s AND granted", (SCHEDULER_LEADER,))
    return row["n"] > 0


def leader_pid_names() -> list[str]:
    """application_name of the sessions holding the leader lock (tests and operators)."""
    return [r["application_name"] for r in pool.fetchall(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted", (SCHEDULER_LEADER,))]


@contextmanager
def migrations(conn):
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATIONS,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATIONS,))


@contextmanager
def deployment(name: str, wait: bool, timeout: str = "120s"):
    """One reconcile pass of a deployment at a time, across every worker and node. Raises
    Busy when ``wait`` is false and another pass holds it."""
    conn = pool.direct_connect(autocommit=True)
    try:
        key = f"deploy:{name}"
        if wait:
            conn.execute(f"SET lock_timeout = '{timeout}'")
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        elif not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS got",
                              (key,)).fetchone()["got"]:
            raise Busy(name)
        yield
    finally:
        conn.close()  # closing the session releases the lock


def in_transaction(conn, scope: str, name: str) -> None:
    """A lock held until ``conn``'s transaction ends (scope: container, registry, ...)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{scope}:{name}",))


def try_in_transaction(conn, scope: str, name: str) -> bool:
    """``in_transaction``'s lock if nobody holds it (False: someone does; nothing waits)."""
    return conn.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s)) AS got",
                        (f"{scope}:{name}",)).fetchone()["got"]
