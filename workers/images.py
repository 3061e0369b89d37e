"""Images on this node: the one way an image gets here (``ensure``, driven by the pull
policy), pulls with their progress (two pulls of one reference at once are one pull), pushes,
tags, removals, and the engine's listing recorded for web.

Runs in the node's executor (its queue ``node.<name>``): the node is this process's own.
Registry credentials are read here, from their own table, and go to Docker only.
"""
from __future__ import annotations

import logging
import threading
import time

import validation
from core.transfer import Transfer
from db import events, images, jobs
from workers import docker_ops, runtime
from workers.fencing import check_fence
from workers.docker_ops import NotFound, Permanent

log = logging.getLogger("harbormaster.images")

POLICIES = ("if-not-present", "always", "never")
PROGRESS_EVERY = 0.25   # seconds between two progress writes of one job
FIRST_BACKOFF = 5.0     # seconds after a first failed pull; doubles up to pull_backoff_max


def node() -> str:
    return runtime.settings().node_name


def auth_for(ref: str) -> dict | None:
    registry, _, _, _ = validation.split_image(ref)
    return images.credentials_for(registry) if registry else None


def report_engine() -> None:
    """Record what this node's engine holds (web's GET /api/images reads it)."""
    images.replace_engine_images(node(), docker_ops.list_images())


def backoff_seconds(failures: int) -> float:
    return min(runtime.settings().pull_backoff_max, FIRST_BACKOFF * 2 ** (failures - 1))


# --- pulls: one at a time per reference, followers share its outcome ------------------------

class _Pull:
    """One pull in flight: the jobs following it see its progress and its outcome."""

    def __init__(self):
        self.done = threading.Event()
        self.job_ids: list[str] = []
        self.result: dict | None = None
        self.error: Exception | None = None


_in_flight: dict[str, _Pull] = {}
_in_flight_lock = threading.Lock()


def pull(ref: str, job_id: str | None = None) -> dict:
    """Pull ``ref`` on this node now; a pull of the same reference already running is
    followed instead of started again. Returns what the job result says."""
    with _in_flight_lock:
        running = _in_flight.get(ref)
        leader = running is None
        if leader:
            running = _in_flight[ref] = _Pull()
        if job_id:
            running.job_ids.append(job_id)
    if not leader:
        running.done.wait()
        if running.error is not None:
            raise Permanent(str(running.error))
        return {**running.result, "followed": True}
    try:
        running.result = _pull_now(ref, running)
        return {**running.result, "followed": False}
    except Exception as exc:
        running.error = exc
        raise
    finally:
        with _in_flight_lock:
            _in_flight.pop(ref, None)
        running.done.set()


def following(verb: str, ref: str, transfer: Transfer, report):
    """The handler of a pull's or push's messages: feeds ``transfer``, calls ``report`` with
    it at most every PROGRESS_EVERY seconds, raises the registry's error, and answers False
    (the stream is abandoned) once no byte has moved for the stall limit."""
    stall = runtime.settings().pull_stall_timeout
    last = {"moved": time.monotonic(), "written": 0.0}

    def on_message(message: dict) -> bool:
        now = time.monotonic()
        if transfer.feed(message):
            last["moved"] = now
            if now - last["written"] >= PROGRESS_EVERY:
                last["written"] = now
                report(transfer)
        elif transfer.error:
            raise Permanent(f"{verb} {ref}: {transfer.error}")
        return now - last["moved"] <= stall
    return on_message


def _pull_now(ref: str, running: _Pull) -> dict:
    cfg = runtime.settings()
    transfer = Transfer()

    def report(t: Transfer) -> None:   # every job following this pull sees it move
        for job_id in list(running.job_ids):
            jobs.set_progress(job_id, t.done, t.total, t.status)

    on_message = following("pull", ref, transfer, report)
    try:
        inspected = docker_ops.pull(ref, auth_for(ref), on_message, cfg.pull_timeout,
                                    cfg.pull_stall_timeout)
    except Permanent as exc:
        failures = images.record_pull_failure(node(), ref, str(exc), backoff_seconds)
        events.add("image_pull_failed", detail={"image": ref, "node": node(),
                                                "error": str(exc), "failures": failures})
        raise
    images.clear_pull_failure(node(), ref)
    digest = repo_digest(inspected, ref)
    images.record_pull(node(), ref, inspected["Id"], digest, inspected.get("Size"))
    for job_id in list(running.job_ids):
        jobs.set_progress(job_id, transfer.total, transfer.total, "pulled")
    events.add("image_pulled", detail={"image": ref, "node": node(), "digest": digest,
                                       "bytes": transfer.total})
    report_engine()
    return {"image": ref, "node": node(), "image_id": inspected["Id"], "digest": digest,
            "size_bytes": inspected.get("Size")}


def repo_digest(inspected: dict, ref: str) -> str | None:
    """``repository@sha256:...`` of ``ref``'s repository, when a registry gave one (images
    built or imported locally have none)."""
    _, repository, _, _ = validation.split_image(ref)
    for digest in inspected.get("RepoDigests") or []:
        if digest.split("@", 1)[0] == repository:
            return digest
    return None


# --- the one way an image gets onto this node -----------------------------------------------

def ensure(ref: str, policy: str = "if-not-present") -> dict:
    """Make ``ref`` present on this node as ``policy`` says; returns its inspect document.
    A pull that failed recently is not tried again before its backoff ends (a crash-looping
    slot must not pull in a tight loop). Raises Permanent saying why."""
    if policy not in POLICIES:
        raise Permanent(f"pull policy {policy!r} is not one of {', '.join(POLICIES)}")
    if policy != "always":
        try:
            inspected = docker_ops.inspect_image(ref)
            images.touch(node(), [inspected["Id"]])
            return inspected
        except NotFound:
            if policy == "never":
                raise Permanent(f"image {ref} is not on node {node()} and its pull policy "
                                "is never") from None
    failed = images.pull_failure(node(), ref)
    if failed is not None and failed["waiting"]:
        raise Permanent(f"{failed['reason']} (failed {failed['failures']} times; next try in "
                        f"{max(1, round(failed['retry_in']))} s)")
    pull(ref)
    return docker_ops.inspect_image(ref)


# --- jobs ---------------------------------------------------------------------------------

def check_node(args: dict) -> None:
    if args.get("node") and args["node"] != node():
        raise Permanent(f"this job is for node {args['node']!r}, not {node()!r}")


def pull_job(job_id: str, args: dict) -> dict:
    check_node(args)
    jobs.set_progress(job_id, 0, 0, "pulling")
    return pull(args["image"], job_id)


def push_job(job_id: str, args: dict) -> dict:
    check_node(args)
    ref, cfg = args["image"], runtime.settings()
    transfer = Transfer()
    on_message = following("push", ref, transfer, lambda t: jobs.set_progress(
        job_id, t.done, t.total, t.status))
    docker_ops.push(ref, auth_for(ref), on_message, cfg.pull_timeout, cfg.pull_stall_timeout)
    jobs.set_progress(job_id, transfer.total, transfer.total, "pushed")
    events.add("image_pushed", detail={"image": ref, "node": node(), "digest": transfer.digest})
    report_engine()
    return {"image": ref, "node": node(), "digest": transfer.digest, "bytes": transfer.total}


def tag_job(job_id: str, args: dict) -> dict:
    check_node(args)
    docker_ops.tag(args["source"], args["target"])
    report_engine()
    inspected = docker_ops.inspect_image(args["target"])
    return {"source": args["source"], "target": args["target"], "node": node(),
            "image_id": inspected["Id"]}


def remove_job(job_id: str, args: dict) -> dict:
    """Remove one reference. A tag the image has besides others only goes (the image stays,
    whoever uses it); otherwise the image goes, with ``force`` (admin) even when a stopped
    container uses it, never when a running one does."""
    check_node(args)
    ref = args["image"]
    try:
        inspected = docker_ops.inspect_image(ref)
    except NotFound:
        report_engine()
        return {"image": ref, "node": node(), "removed": False, "reason": "not on this node"}
    tags = inspected.get("RepoTags") or []
    only_untags = ref in tags and len(tags) > 1   # Docker removes the name, not the image
    running = docker_ops.used_image_ids(running_only=True).get(inspected["Id"])
    if running and not only_untags:
        raise Permanent(f"image {ref} is used by running containers: "
                        f"{', '.join(sorted(running))}")
    docker_ops.remove_image(ref, force=bool(args.get("force")) and not only_untags)
    images.forget(node(), ref)
    events.add("image_removed", detail={"image": ref, "node": node(), "reason": "requested",
                                        "image_id": inspected["Id"]})
    report_engine()
    return {"image": ref, "node": node(), "removed": True, "image_id": inspected["Id"]}


def prune_job(job_id: str, args: dict) -> dict:
    """Remove the dangling images and every image this installation pulled on this node that
    no container uses (never one it did not pull, nor the platform's own)."""
    check_node(args)
    used = docker_ops.used_image_ids()
    removed = []
    for row in images.pulled_on(node()):
        if row["image_id"] in used:
            continue
        try:
            docker_ops.remove_image(row["reference"])
        except NotFound:
            pass
        except Permanent as exc:   # in use meanwhile, or shared: left
            log.warning("prune left %s: %s", row["reference"], exc)
            continue
        images.forget(node(), row["reference"])
        removed.append(row["reference"])
        events.add("image_removed", detail={"image": row["reference"], "node": node(),
                                            "reason": "pruned", "image_id": row["image_id"]})
    for image_id in docker_ops.dangling_images():
        try:
            docker_ops.remove_image(image_id)
            removed.append(image_id)
        except Permanent as exc:
            log.warning("prune left dangling %s: %s", image_id, exc)
    report_engine()
    return {"node": node(), "removed": removed}


def prepare_job(job_id: str, args: dict) -> dict:
    """A rollout's share on this node: the image made present by its pull policy; its
    repository digest (None for an image with no registry digest) for the planner to pin."""
    check_fence(args, runtime.settings())
    jobs.set_progress(job_id, 0, 0, f"preparing {args['image']}")
    inspected = ensure(args["image"], args.get("policy") or "if-not-present")
    return {"image": args["image"], "node": node(), "image_id": inspected["Id"],
            "digest": repo_digest(inspected, args["image"])}
