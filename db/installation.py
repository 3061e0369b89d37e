"""The installation's identity: its cluster id, kept in the database."""
from __future__ import annotations

from db import pool


def leader_node() -> str | None:
    """The node whose scheduler leads (it probes unnamed external registrations)."""
    row = pool.fetchone("SELECT leader_node FROM installation")
    return row["leader_node"] if row else None


def set_leader_node(node: str) -> None:
    pool.execute("UPDATE installation SET leader_node = %s", (node,))


def cluster_id() -> str:
    override = pool.settings().cluster_id_override
    if override:
        return override
    row = pool.fetchone("SELECT cluster_id FROM installation")
    return row["cluster_id"]
