"""The installation's bridge network on the engine."""
from __future__ import annotations

import threading

from workers.docker_ops.engine import Conflict, DockerError, Permanent, call, client


_networks_seen: set[str] = set()
_network_lock = threading.Lock()


def ensure_network(name: str, labels: dict) -> None:
    """The installation's bridge network (created once; later calls are free).

    Docker allows two networks with one name, and workers may race to create it: the
    daemon's duplicate check, a lock per process, and after creating, every process keeps
    the same one (the oldest) and removes the others.
    """
    if name in _networks_seen:
        return
    with _network_lock:
        if name in _networks_seen:
            return
        api = client().api
        if not [n for n in call(api.networks, names=[name]) if n["Name"] == name]:
            try:
                call(api.create_network, name, driver="bridge", labels=labels,
                     check_duplicate=True)
            except Permanent as exc:
                if "already exists" not in str(exc) and not isinstance(exc, Conflict):
                    raise
        same = sorted((n for n in call(api.networks, names=[name]) if n["Name"] == name),
                      key=lambda n: (n["Created"], n["Id"]))
        for extra in same[1:]:
            try:
                call(api.remove_network, extra["Id"])
            except DockerError:
                pass  # another process removed it, or a container joined it meanwhile
        _networks_seen.add(name)
