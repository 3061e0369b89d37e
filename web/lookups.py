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


