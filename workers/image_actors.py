"""The image actors: jobs run on the node named in their args (its queue ``node.<name>``),
and the periodic image GC of one node. workers.actors imports this module so that one
``dramatiq ... workers.actors`` command declares them all."""
from __future__ import annotations

import logging

from workers import imagegc, images, messages
from workers.actors import job_actor, load, periodic

log = logging.getLogger("harbormaster.image_actors")


def _run(job_id: str, work) -> dict:
    _, args = load(job_id)
    return work(job_id, args)


# a pull or push runs as long as its own limits allow (pull_timeout, stall), not the usual
# job limit: the actor's time limit is only a backstop
TRANSFER_LIMIT_MS = 3600 * 1000


@job_actor(time_limit=TRANSFER_LIMIT_MS)
def pull_image(job_id: str):
    return _run(job_id, images.pull_job)


@job_actor(time_limit=TRANSFER_LIMIT_MS)
def push_image(job_id: str):
    return _run(job_id, images.push_job)


@job_actor(time_limit=TRANSFER_LIMIT_MS)
def prepare_image(job_id: str):
    return _run(job_id, images.prepare_job)


@job_actor
def tag_image(job_id: str):
    return _run(job_id, images.tag_job)


@job_actor
def remove_image(job_id: str):
    return _run(job_id, images.remove_job)


@job_actor
def prune_images(job_id: str):
    return _run(job_id, images.prune_job)


@periodic(messages.COLLECT_IMAGES, max_age_ms=60000)
def collect_images(node: str):
    """Image GC of this node (the scheduler sends it to every ready node's queue)."""
    removed = imagegc.collect(node)
    if removed:
        log.info("image GC on %s removed %d images", node, len(removed))
