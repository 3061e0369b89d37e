"""The labels every container of ours carries (DESIGN.md's vocabulary)."""
from __future__ import annotations

CLUSTER = "harbormaster.cluster"
KIND = "harbormaster.kind"
NODE = "harbormaster.node"
NAME = "harbormaster.name"
IMAGE = "harbormaster.image"
DEPLOYMENT = "harbormaster.deployment"
SLOT = "harbormaster.slot"
GENERATION = "harbormaster.generation"
MANAGED_BY = "managed-by"


def for_container(cluster_id: str, kind: str, node: str, name: str, image: str,
                  user_labels: dict | None = None, deployment: str | None = None,
                  slot: int | None = None, generation: int | None = None) -> dict:
    labels = dict(user_labels or {})
    labels.update({CLUSTER: cluster_id, KIND: kind, NODE: node, NAME: name, IMAGE: image,
                   MANAGED_BY: image})
    if deployment is not None:
        labels.update({DEPLOYMENT: deployment, SLOT: str(slot), GENERATION: str(generation)})
    return labels
