"""A generation's image before any of its instances is created: made present (by the pull
policy) on every node that will run the generation, and its tag resolved to the digest that
every instance of that generation is then created from (``repository@sha256:...``; an image
with no registry digest, built or imported on the node, is pinned by its reference).

A rollout that cannot get its image pauses before it touches anything: the old instances
keep serving and the stable generation stays (no generation is made to go back). A first
deployment that cannot get it is degraded with the registry's reason and tries again (a
failed pull's backoff spaces the tries) until the image appears.
"""
from __future__ import annotations

import config
from db import deployments, events, jobs
from workers import messages, placing

PULL_WAIT_MARGIN = 30.0   # seconds a planner waits past the pull timeout for a node's pull


def unresolved(dep: dict, creates: list) -> list[int]:
    """The generations that creates are planned for and whose image is not pinned yet."""
    out = []
    for generation in sorted({a.generation for a in creates if a.generation is not None}):
        revision = deployments.revision(dep["name"], generation)
        if revision is not None and revision.get("image_digest") is None:
            out.append(generation)
    return out


def nodes_for(creates: list, placed: placing.Placed, fleet: placing.Fleet) -> list[str]:
    """Every ready node that will run the generation: its slots' nodes and the creates'."""
    wanted = set(placed.assignment.values()) | {a.node for a in creates if a.node}
    return sorted(node for node in wanted if fleet.ready(node))


def resolve(dep: dict, generation: int, node_names: list[str], fleet: placing.Fleet,
            cfg: config.Config, wait_for) -> str | None:
    """Pull ``generation``'s image on ``node_names`` (one job per node, in parallel) and pin
    it. Returns None when pinned, else why not ("pull 127.0.0.1:5000/web:v9: manifest
    unknown")."""
    if not node_names:
        return None   # nowhere to pull now; nothing is created either
    revision = deployments.revision(dep["name"], generation)
    template = revision["template"]
    image, policy = template["image"], template.get("pull_policy") or "if-not-present"
    sent = []
    for node in node_names:
        job = jobs.create("image.prepare", f"deployments/{dep['name']}",
                          messages.PREPARE_IMAGE, messages.node_queue(node),
                          {"image": image, "policy": policy, "node": node,
                           "epoch": fleet.rows[node]["epoch"]}, "reconciler")
        messages.send_job_or_leave(job)
        sent.append((node, job))
    digests = []
    for node, job in sent:
        row = wait_for(job, node, cfg.pull_timeout + PULL_WAIT_MARGIN)
        if row["status"] != "succeeded":
            return row["error"] or f"pull {image} on {node}: {row['status']}"
        digests.append((row["result"] or {}).get("digest"))
    pinned = next((d for d in digests if d), image)
    deployments.set_image_digest(dep["name"], generation, pinned)
    events.add("image_resolved", deployment=dep["name"],
               detail={"generation": generation, "image": image, "pinned": pinned,
                       "nodes": node_names})
    return None


def refuse_rollout(dep: dict, reason: str) -> str:
    """A rollout whose image cannot be had pauses, touching nothing; returns the job's error."""
    deployments.pause(dep["name"], f"rollout paused: {reason}")
    events.add("rollout_paused", deployment=dep["name"],
               detail={"generation": dep["generation"], "reason": reason})
    return f"rollout of generation {dep['generation']} paused: {reason}"
