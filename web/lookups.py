"""Finding what a request names, or answering 404."""
from __future__ import annotations

from db import containers, deployments
from web.errors import not_found


def container_or_404(ref: str) -> dict:
    row = containers.get(ref)
    if row is None or row["state"] == "removed":
        raise not_found(f"container {ref!r}")
    return row


def deployment_or_404(name: str) -> dict:
    dep = deployments.get(name)
    if dep is None or dep["deleting"]:
        raise not_found(f"deployment {name!r}")
    return dep




def previous_of(row: dict) -> dict:
    """The slot's last dead container, kept for ``logs --previous`` (404 when the slot has
    none: its instances never died, or the kept one was cleaned up)."""
    kept = containers.kept_of(row["deployment"], row["slot"]) \
        if row["deployment"] is not None else None
    if kept is None or kept["name"] == row["name"]:
        raise not_found(f"a previous container of {row['name']!r}")
    return kept
