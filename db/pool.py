"""The process-wide psycopg connection pool and the error that means "Postgres is down".

Round trips are what a request pays for most, so: a connection that finished a transaction
within RECENTLY_USED seconds is handed out without the liveness check (one more round trip
per checkout under load); the one-statement helpers (fetchone, fetchall, execute) run in
autocommit, one round trip instead of BEGIN, statement, COMMIT. psycopg prepares a
statement on a connection once it ran there five times (its prepare_threshold): the hot
path's statements are prepared statements without anything asked here.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager, suppress

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

import config


class Unavailable(Exception):
    """Postgres could not be reached (or the pool had no connection in time)."""


RECENTLY_USED = 1.0   # seconds
_USED_AT = "_harbormaster_used_at"  # attribute on a pooled connection: its last commit

_pool: ConnectionPool | None = None
_settings: config.Config | None = None
_application_name = "harbormaster"
_lock = threading.Lock()


def configure(cfg: config.Config, application_name: str = "harbormaster") -> None:
    """Which database this process uses (each process's start calls it once), and the name
    its connections show in pg_stat_activity and the server's log."""
    global _pool, _settings, _application_name
    with _lock:
        if _pool is not None:
            _pool.close()
        _pool, _settings, _application_name = None, cfg, application_name


def settings() -> config.Config:
    if _settings is None:
        raise RuntimeError("db.pool.configure(cfg) was not called in this process")
    return _settings


def get_pool() -> ConnectionPool:
    global _pool
    cfg = settings()
    with _lock:
        if _pool is None:
            _pool = ConnectionPool(
                cfg.database_url, min_size=1, max_size=cfg.db_pool_max,
                timeout=cfg.db_pool_timeout, open=True,
                kwargs={"row_factory": dict_row, "autocommit": False,
                        "connect_timeout": max(1, int(cfg.db_pool_timeout)),
                        "application_name": _application_name},
                # a connection broken by a Postgres restart is detected and replaced
                check=check_unless_recent,
                reconnect_timeout=30, name="harbormaster")
        return _pool


def check_unless_recent(conn: psycopg.Connection) -> None:
    """The pool's check at checkout: a round trip proves the connection alive, unless it
    committed moments ago. One that Postgres dropped since then fails its request (503) and
    leaves the pool."""
    if time.monotonic() - getattr(conn, _USED_AT, 0.0) < RECENTLY_USED:
        return
    ConnectionPool.check_connection(conn)


@contextmanager
def connection():
    """A pooled connection inside a transaction (committed on success)."""
    try:
        with get_pool().connection() as conn:
            yield conn
            setattr(conn, _USED_AT, time.monotonic())
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise Unavailable(f"postgres unavailable: {exc}") from exc


@contextmanager
def one_statement():
    """A pooled connection in autocommit: one statement is its own transaction, sent in one
    round trip (no BEGIN before it, no COMMIT after)."""
    with connection() as conn:
        conn.autocommit = True
        try:
            yield conn
        finally:
            with suppress(psycopg.Error):  # a broken connection leaves the pool anyway
                conn.autocommit = False


def fetchall(sql: str, params=()) -> list[dict]:
    with one_statement() as conn:
        return conn.execute(sql, params).fetchall()


def fetchone(sql: str, params=()) -> dict | None:
    with one_statement() as conn:
        return conn.execute(sql, params).fetchone()


def execute(sql: str, params=()) -> int:
    with one_statement() as conn:
        return conn.execute(sql, params).rowcount


def ping() -> None:
    """One round trip; raises Unavailable when Postgres does not answer."""
    fetchone("SELECT 1")


def server_limits() -> tuple[int, int]:
    """Postgres's max_connections and superuser_reserved_connections (one connection,
    closed after)."""
    with direct_connect(application_name="harbormaster-budget") as conn:
        return tuple(int(conn.execute(f"SHOW {name}").fetchone()[name])
                     for name in ("max_connections", "superuser_reserved_connections"))


def direct_connect(autocommit: bool = True, application_name: str | None = None
                   ) -> psycopg.Connection:
    """A dedicated connection outside the pool (listeners, leader locks, migrations)."""
    cfg = settings()
    application_name = application_name or _application_name
    try:
        return psycopg.connect(cfg.database_url, autocommit=autocommit, row_factory=dict_row,
                               connect_timeout=max(1, int(cfg.db_pool_timeout)),
                               application_name=application_name)
    except psycopg.OperationalError as exc:
        raise Unavailable(f"postgres unavailable: {exc}") from exc


def where(conditions: list[tuple[str, object]]) -> tuple[str, list]:
    """"WHERE c1 AND c2 ..." and its parameters, for the conditions whose value is set.

    Each condition is (SQL, value): one %s per value, or a tuple of values for several;
    a value of None or "" leaves the condition out.
    """
    parts = [(sql, value) for sql, value in conditions if value is not None and value != ""]
    if not parts:
        return "", []
    params = []
    for _, value in parts:
        params.extend(value if isinstance(value, tuple) else (value,))
    return "WHERE " + " AND ".join(sql for sql, _ in parts), params
