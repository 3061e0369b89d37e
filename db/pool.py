"""The process-wide psycopg connection pool and the error that means "Postgres is down"."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

import config


class Unavailable(Exception):
    """Postgres could not be reached (or the pool had no connection in time)."""


_pool: ConnectionPool | None = None
_settings: config.Config | None = None
_lock = threading.Lock()


def configure(cfg: config.Config) -> None:
    """Which database this process uses (each process's start calls it once)."""
    global _pool, _settings
    with _lock:
        if _pool is not None:
            _pool.close()
        _pool, _settings = None, cfg


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
                        "connect_timeout": max(1, int(cfg.db_pool_timeout))},
                # a connection broken by a Postgres restart is detected and replaced
                check=ConnectionPool.check_connection,
                reconnect_timeout=30, name="harbormaster")
        return _pool


@contextmanager
def connection():
    """A pooled connection inside a transaction (committed on success)."""
    try:
        with get_pool().connection() as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise Unavailable(f"postgres unavailable: {exc}") from exc


def fetchall(sql: str, params=()) -> list[dict]:
    with connection() as conn:
        return conn.execute(sql, params).fetchall()


def fetchone(sql: str, params=()) -> dict | None:
    with connection() as conn:
        return conn.execute(sql, params).fetchone()


def execute(sql: str, params=()) -> int:
    with connection() as conn:
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


def direct_connect(autocommit: bool = True, application_name: str = "harbormaster"
                   ) -> psycopg.Connection:
    """A dedicated connection outside the pool (listeners, leader locks, migrations)."""
    cfg = settings()
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
