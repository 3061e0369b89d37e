"""Secret env entries, stored apart and read only by the worker creating the container."""
from __future__ import annotations

from db import pool


def put(owner: str, values: dict[str, str], conn) -> None:
    conn.execute("DELETE FROM secrets WHERE owner = %s", (owner,))
    for key, value in values.items():
        conn.execute("INSERT INTO secrets (owner, key, value) VALUES (%s, %s, %s)",
                     (owner, key, value))


def get(owner: str) -> dict[str, str]:
    rows = pool.fetchall("SELECT key, value FROM secrets WHERE owner = %s", (owner,))
    return {row["key"]: row["value"] for row in rows}


def delete(owner: str) -> None:
    pool.execute("DELETE FROM secrets WHERE owner = %s", (owner,))
