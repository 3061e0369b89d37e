"""Postgres notifications: a LISTEN connection of its own, yielding each payload."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from psycopg import sql

from db import pool


def listen(channel: str, on_listening: Callable[[], None]) -> Iterator[str]:
    """Payloads NOTIFYed on ``channel`` as they come. ``on_listening`` runs once the LISTEN is
    in place (anything notified before it was missed). Raises psycopg.Error or
    pool.Unavailable when the connection is lost."""
    conn = pool.direct_connect(autocommit=True)
    try:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        on_listening()
        for note in conn.notifies():
            yield note.payload
    finally:
        conn.close()
