"""Postgres notifications: a LISTEN connection of its own, yielding each payload."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from psycopg import sql

from db import pool


def listen(channels: tuple[str, ...], on_listening: Callable[[int], None]
           ) -> Iterator[tuple[str, str]]:
    """(channel, payload) of each notification on ``channels`` as it comes. ``on_listening``
    runs once the LISTENs are in place (anything notified before was missed), with the
    connection's socket (readable: a notification arrived that is not yet yielded). Raises
    psycopg.Error or pool.Unavailable when the connection is lost."""
    conn = pool.direct_connect(autocommit=True)
    try:
        for channel in channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        on_listening(conn.fileno())
        for note in conn.notifies():
            yield note.channel, note.payload
    finally:
        conn.close()
