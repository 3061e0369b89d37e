"""Record what Docker says about one container: inspect it and store its observed state."""
from __future__ import annotations

from db import containers
from core import observe
from workers import docker_ops


def record(name: str, docker_id: str | None = None) -> dict | None:
    """The container's updated row; None (and the row marked removed) when it is gone."""
    attrs = docker_ops.find(docker_id or name)
    if attrs is None:
        containers.mark_gone(name, docker_id)
        return None
    row, _ = containers.observe({**observe.fields(attrs), "name": name})
    return row
