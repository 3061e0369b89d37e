"""Names and labels: how an installation names and marks what it creates in Docker.

An instance is (deployment, slot, incarnation). The incarnation is a per-slot counter that
Postgres hands out before the container is created, so two containers of one slot can
coexist (a dead one kept for its logs, a stale one on a host that came back, the live one)
and a create repeated after a worker died finds its container by name.
"""
from __future__ import annotations

import re

CLUSTER = "harbormaster.cluster"
KIND = "harbormaster.kind"
NODE = "harbormaster.node"
NAME = "harbormaster.name"
IMAGE = "harbormaster.image"
DEPLOYMENT = "harbormaster.deployment"
SLOT = "harbormaster.slot"
GENERATION = "harbormaster.generation"
INCARNATION = "harbormaster.incarnation"
MANAGED_BY = "managed-by"
RESERVED_PREFIX = "harbormaster."


def instance_name(deployment: str, slot: int, incarnation: int) -> str:
    """``web-3.12``: slot 3 of deployment web, its 12th container."""
    return f"{deployment}-{slot}.{incarnation}"


def network_name(cluster: str) -> str:
    """The installation's bridge network on each engine."""
    return f"harbormaster-{cluster[:12]}"


def legacy_deployment_name(image: str) -> str:
    """The deployment the seed's image routes map an image to (e.g. legacy-nginx-alpine)."""
    slug = re.sub(r"[^a-z0-9]+", "-", image.lower()).strip("-")
    return f"legacy-{slug}"[:40].rstrip("-")


def container_labels(cluster_id: str, kind: str, node: str, name: str, image: str,
                     user_labels: dict | None = None, deployment: str | None = None,
                     slot: int | None = None, generation: int | None = None,
                     incarnation: int | None = None) -> dict:
    """Every label a container of ours carries; the user's own labels first (ours win)."""
    labels = dict(user_labels or {})
    labels.update({CLUSTER: cluster_id, KIND: kind, NODE: node, NAME: name, IMAGE: image,
                   MANAGED_BY: image})
    if deployment is not None:
        labels.update({DEPLOYMENT: deployment, SLOT: str(slot), GENERATION: str(generation)})
        if incarnation is not None:
            labels[INCARNATION] = str(incarnation)
    return labels
