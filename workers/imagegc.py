"""Image GC of this node, run on its executor: gathers what core.imagegc decides from (what
this installation pulled here, from Postgres; the engine's images, containers and image
disk), removes what it says, and records each removal as an event with its reason.

Decisions read the last use recorded in Postgres, so a restart changes none of them. An
image is never forced out: the engine's refusal (a container made from it meanwhile) leaves
it for the next round.
"""
from __future__ import annotations

import logging

from core import imagegc
from db import events, images
from workers import docker_ops, runtime
from workers import images as node_images
from workers.docker_ops import NotFound, Permanent

log = logging.getLogger("harbormaster.imagegc")


def collect(node: str) -> list[dict]:
    """One round of image GC on ``node`` (this executor's own); returns the removals."""
    cfg = runtime.settings()
    if node != cfg.node_name:
        log.warning("image GC of %s asked of %s's executor: left", node, cfg.node_name)
        return []
    # the images running containers use are in use now: their last use moves first
    images.touch(node, [i for i in docker_ops.used_image_ids(running_only=True) if i])
    # the records before the engine's listing: a pull recorded meanwhile is on the engine
    records = images.pulled_on(node)
    if not records:
        return []
    present = docker_ops.list_images()
    forget_missing(node, records, present)
    plan = imagegc.removals(
        [pulled(row) for row in records],
        [imagegc.Present(i["image_id"], i["size_bytes"] or 0, tuple(i["tags"]), i["labels"])
         for i in present],
        set(docker_ops.used_image_ids()), disk_figures(), policy(cfg),
        # the database's clock, which recorded the uses (the executor's may differ)
        now=records[0]["last_used_at"].timestamp() + float(records[0]["idle_seconds"]))
    removed = [done for done in (remove(node, removal) for removal in plan) if done]
    if removed:
        node_images.report_engine()
    return removed


def policy(cfg) -> imagegc.Policy:
    override = images.cache_size_override()
    return imagegc.Policy(high_percent=cfg.image_gc_high, low_percent=cfg.image_gc_low,
                          cache_bytes=override if override is not None else cfg.image_cache_size,
                          min_age=cfg.image_min_age, max_age=cfg.image_max_age)


def pulled(row: dict) -> imagegc.Pulled:
    return imagegc.Pulled(row["reference"], row["image_id"], row["size_bytes"],
                          row["last_used_at"].timestamp(), row["pulled_at"].timestamp())


def disk_figures() -> imagegc.Disk | None:
    figures = docker_ops.image_disk()
    return imagegc.Disk(**figures) if figures else None


def forget_missing(node: str, records: list[dict], present: list[dict]) -> None:
    """Records of images the engine no longer holds (removed by hand) are forgotten."""
    ids = {i["image_id"] for i in present}
    for row in records:
        if row["image_id"] and row["image_id"] not in ids:
            log.info("image %s (%s) is no longer on %s: forgotten", row["reference"],
                     row["image_id"], node)
            images.forget(node, row["reference"])


def remove(node: str, removal: imagegc.Removal) -> dict | None:
    """Remove every reference of one image, never forced; the event says why. None when the
    engine refused (in use meanwhile): the next round decides again."""
    for reference in removal.references:
        try:
            docker_ops.remove_image(reference)
        except NotFound:
            pass  # gone already (a second round, or removed by hand)
        except Permanent as exc:
            log.warning("image GC left %s on %s: %s", reference, node, exc)
            return None
        images.forget(node, reference)
    detail = {"image": removal.references[0], "references": list(removal.references),
              "image_id": removal.image_id, "node": node, "reason": removal.reason,
              "size_bytes": removal.size_bytes}
    events.add("image_removed", detail=detail)
    log.info("image GC removed %s from %s: %s", ", ".join(removal.references), node,
             removal.reason)
    return detail
