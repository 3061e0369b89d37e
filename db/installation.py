"""The installation's identity: its cluster id, kept in the database."""
from __future__ import annotations

from db import pool


def cluster_id() -> str:
    override = pool.settings().cluster_id_override
    if override:
        return override
    row = pool.fetchone("SELECT cluster_id FROM installation")
    return row["cluster_id"]
