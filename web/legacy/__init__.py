"""The seed service's HTTP contract at the root paths (docs/legacy-api.md), as a thin
layer over our model: an image is a deployment (``legacy-<image slug>``), start raises its
replicas, stop and delete retire a slot. Mutations are our jobs, awaited (bounded) so the
answer has the seed's shape; past the wait the answer is 202 with the job.
Errors keep the seed's ``{"detail": ...}`` form. The routes live by concern in
web.legacy.health, .containers and .registry, on one blueprint.
"""
from web.legacy import containers, health, registry  # noqa: F401 - they register the routes
from web.legacy.common import bp

__all__ = ["bp"]
