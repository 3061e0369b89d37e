"""The one way a container comes to exist: standalone containers and deployment instances
alike are created here from their spec, adopted by name when a repeated create finds one
already there (a worker died after Docker made it), started, and recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from core import naming, observe
from core.spec import ContainerSpec
from db import containers, secrets, startup
from workers import docker_ops, images
from workers.docker_ops import Conflict, Permanent
from workers.record import record


@dataclass(frozen=True)
class Created:
    row: dict | None   # the container's record after it started (None: gone meanwhile)
    fresh: bool        # False: an existing container of ours was adopted


def create_and_start(name: str, spec: ContainerSpec, labels: dict, secrets_owner: str,
                     aliases: list[str] | None = None, start=docker_ops.start,
                     pinned_image: str | None = None) -> Created:
    """Create (or adopt) ``name`` from ``spec``, start it, record it.

    The image gets onto the node here and nowhere else (``images.ensure``, by the spec's
    pull policy); ``pinned_image`` (a rollout's resolved ``repository@digest``) is what is
    created from, while the labels keep the reference the user wrote.
    Secret env values are read here, from their own table, and go to Docker only.
    Raises Permanent when the name belongs to a container outside this installation.
    """
    cluster = labels[naming.CLUSTER]
    network = naming.network_name(cluster)
    docker_ops.ensure_network(network, {naming.CLUSTER: cluster})
    existing = docker_ops.find(name)
    if existing is None:
        image = pinned_image or spec.image
        present = spec.pull_policy != "always" and docker_ops.image_exists(image)
        images.ensure(image, spec.pull_policy)
        startup.mark(name, "image_ready", pulled=not present)   # an instance's startup
        with_secrets = replace(spec, image=image, env={**spec.env, **secrets.get(secrets_owner)})
        try:
            docker_id = docker_ops.create(name, with_secrets, labels, network, aliases)
            startup.mark(name, "created")
            fresh, running = True, False
        except Conflict:  # created meanwhile by another attempt of the same work
            existing = docker_ops.inspect(name)
    if existing is not None:
        if existing["Config"]["Labels"].get(naming.CLUSTER) != cluster:
            raise Permanent(f"a container named {name!r} exists outside this installation")
        docker_id, fresh = existing["Id"], False
        running = observe.state_of(existing) == "running"
    if not running:
        containers.set_state(name, "starting")
        start(docker_id)
    row = record(name, docker_id)
    if row is not None and row["state"] == "running" and row["started_at"]:
        # started as Docker says (State.StartedAt), seen running now
        startup.mark(name, "started", at=row["started_at"].timestamp())
        startup.mark(name, "running")
    return Created(row, fresh)
