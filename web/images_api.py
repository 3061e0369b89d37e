"""/api/images: what each node's engine holds (as its agent and executor last listed it,
never asked of Docker here), the image jobs (pull, tag, push, remove, prune: one job per
node, on that node's queue) and the pulled-image cache limit.

Viewers read; operators pull and tag; admins push, remove, prune and set the limit
(web.auth.ADMIN_ENDPOINTS). A reference in the path may hold a registry's host, port and
slashes (``DELETE /api/images/127.0.0.1:5000/team/web:v2``): the fixed routes (/settings,
/pull, ...) are matched before the path converter.
"""
from __future__ import annotations

import re
import time

from flask_openapi3 import APIBlueprint, Tag

import validation
from db import events, images, jobs, nodes
from web import auth, dispatch, views
from web.context import settings
from web.errors import ApiError, not_found, unavailable
from web.image_schemas import (CacheSettings, CacheSettingsOut, ImageDeleteQuery, ImageFound,
                               ImageGetQuery, ImageList, ImageListQuery, ImagePath, JobsOut,
                               PruneBody, PullBody, PushBody, TagBody)
from web.nodes_api import node_or_404
from web.schemas import BEARER, ErrorOut, WaitQuery
from workers import messages

tag = Tag(name="images", description="Images on each node: list, pull (with progress), tag, "
                                     "push, remove, prune; the cache limit")
bp = APIBlueprint("images", __name__, url_prefix="/api/images", abp_tags=[tag],
                  abp_security=BEARER,
                  abp_responses={401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
                                 422: ErrorOut, 503: ErrorOut})
JOBS = {202: JobsOut, 200: JobsOut}
#: a container in one of these states runs (or is about to): its image is never removed
LIVE = ("creating", "starting", "running", "paused", "stopping")
IMAGE_ID = re.compile(r"^(?:sha256:)?([0-9a-f]{4,64})$")


# --- what a request names -------------------------------------------------------------------

def normalised(ref: str) -> str:
    """A reference as the engine lists it: Docker Hub's implicit names without their prefix,
    and :latest when no tag or digest is given."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    try:
        _, _, tag_name, digest = validation.split_image(ref)
    except ValueError:  # a container's image recorded by the seed's routes, as it was given
        return ref
    return ref if tag_name or digest else f"{ref}:latest"


def find(ref: str, node: str | None = None) -> list[dict]:
    """The engine images ``ref`` names, by Docker's order: a tag or digest first, else an id
    or a unique prefix of one (409 when a prefix names several images)."""
    rows = images.engine_images(node)
    wanted = normalised(ref)
    named = [r for r in rows if wanted in (r["digests"] if "@" in wanted else r["tags"])]
    if named:
        return named
    match = IMAGE_ID.match(ref)
    if match is None:
        return []
    found = [r for r in rows if r["image_id"].startswith("sha256:" + match.group(1))]
    if len({r["image_id"] for r in found}) > 1:
        raise ApiError(409, f"image id prefix {ref!r} matches {len({r['image_id'] for r in found})}"
                            " images; give more of the id", fields={"ref": "ambiguous"})
    return found


def image_or_404(ref: str, node: str | None = None) -> list[dict]:
    if node is not None:
        node_or_404(node)
    found = find(ref, node)
    if not found:
        raise not_found(f"image {ref!r}" + (f" on node {node!r}" if node else ""))
    return found


def ready_nodes() -> list[str]:
    """Every node whose Docker can be used now; 503 naming why when there is none."""
    rows = nodes.all_nodes()
    problems = {row["name"]: dispatch.docker_problem(row["name"], row) for row in rows}
    ready = [name for name, problem in problems.items() if problem is None]
    if not ready:
        raise unavailable("docker", "; ".join(p for p in problems.values() if p)
                          or "no node has registered yet (is an agent running?)")
    return ready


def named_or_ready(node: str | None) -> list[str]:
    """The node a request names (404 unknown, 503 not ready), or every ready node."""
    if node is None:
        return ready_nodes()
    node_or_404(node)
    dispatch.require_docker(node)
    return [node]


def holders(rows: list[dict]) -> list[str]:
    """The nodes holding these images, each ready (503 naming the first that is not)."""
    names = sorted({r["node"] for r in rows})
    for name in names:
        dispatch.require_docker(name)
    return names


def affected(ref: str, row: dict) -> list[dict]:
    """The containers a removal of ``ref`` from this image matters to. When ``ref`` is one
    of several tags, the removal only takes that name away (Docker untags): it matters to
    the containers made from that name (their deployment creates from it again); otherwise
    the image goes, and it matters to every container made from it."""
    users = row["users"] or []
    wanted = normalised(ref)
    if wanted in row["tags"] and len(row["tags"]) > 1:
        return [u for u in users if u.get("image") and normalised(u["image"]) == wanted]
    return users


def refuse_if_used(ref: str, rows: list[dict], force: bool) -> None:
    """409 naming the deployments and containers using what the removal takes away: any
    container (not removed) without ``force``, a running one even with it."""
    users = [u for r in rows for u in affected(ref, r) if not force or u["state"] in LIVE]
    if not users:
        return
    deps = sorted({u["deployment"] for u in users if u.get("deployment")})
    names = sorted({u["name"] for u in users})
    standalone = sorted({u["name"] for u in users if not u.get("deployment")})
    parts = ([f"deployment{'s' if len(deps) > 1 else ''} {', '.join(deps)}"] if deps else []) \
        + ([f"container{'s' if len(standalone) > 1 else ''} {', '.join(standalone)}"]
           if standalone else [])
    hint = "" if force else " (force=true removes it from stopped containers' use, never a " \
                            "running one's)"
    raise ApiError(409, f"image {ref!r} is used by {'running ' if force else ''}"
                        f"{' and '.join(parts)}: remove them first{hint}",
                   fields={"deployments": ", ".join(deps), "containers": ", ".join(names)})


# --- jobs -------------------------------------------------------------------------------------

def image_job(kind: str, actor: str, node: str, args: dict, subject: str | None) -> dict:
    target = f"nodes/{node}/images" + (f"/{subject}" if subject else "")
    return dispatch.submit(kind, target, actor, {**args, "node": node}, node=node)


def accepted_jobs(made: list[dict], wait: str | None):
    """202 with every job (one per node); with one job, its fields at the top level too and
    its Location. With ?wait=, once they all ended (200) or the wait ran out (202)."""
    deadline = time.monotonic() + dispatch.wait_seconds(wait)
    ended = [dispatch.wait_for_job(job, max(0.0, deadline - time.monotonic())) for job in made]
    shown = [dispatch.job_json(job) for job in ended]
    done = bool(wait) and all(job["status"] in jobs.TERMINAL for job in ended)
    if len(shown) == 1:
        return {**shown[0], "jobs": shown}, 200 if done else 202, \
            {"Location": f"/api/jobs/{shown[0]['id']}"}
    return {"jobs": shown}, 200 if done else 202


# --- routes -----------------------------------------------------------------------------------

@bp.get("", responses={200: ImageList})
def list_images(query: ImageListQuery):
    """Every image of every node's engine (or one node's): id, tags, digests, size, created,
    when this installation pulled it and last used it, and the containers and deployments
    made from it."""
    if query.node is not None:
        node_or_404(query.node)
    return {"items": [views.image_json(r) for r in images.engine_images(query.node)],
            "next": None}


@bp.get("/settings", responses={200: CacheSettingsOut})
def get_settings():
    """The pulled-image cache limit per node, as set here and as configured."""
    return settings_json()


@bp.put("/settings", responses={200: CacheSettingsOut})
def put_settings(body: CacheSettings):
    """Set the pulled-image cache limit per node (null: the configuration's applies); image
    GC removes the least recently used pulled images past it (admin)."""
    images.set_cache_size(body.cache_size)
    events.add("image_cache_size_set", who=auth.caller_name(),
               detail={"cache_size": body.cache_size})
    return settings_json()


def settings_json() -> dict:
    override, configured = images.cache_size_override(), settings().image_cache_size
    return {"cache_size": override, "configured_cache_size": configured,
            "effective_cache_size": configured if override is None else override}


@bp.post("/pull", responses=JOBS)
def pull_image(body: PullBody, query: WaitQuery):
    """Pull an image on a node, or on every ready node (one job each, on its node's queue;
    the job's ``progress`` counts the bytes of its layers). Credentials stored for its
    registry (POST /api/registries) are used."""
    made = [image_job("pull_image", messages.PULL_IMAGE, node, {"image": body.image},
                      body.image) for node in named_or_ready(body.node)]
    return accepted_jobs(made, query.wait)


@bp.post("/tag", responses=JOBS)
def tag_image(body: TagBody, query: WaitQuery):
    """Give an image another reference (a job on the node, or on every node holding it)."""
    made = [image_job("tag_image", messages.TAG_IMAGE, node,
                      {"source": body.source, "target": body.target}, body.target)
            for node in holders(image_or_404(body.source, body.node))]
    return accepted_jobs(made, query.wait)


@bp.post("/push", responses=JOBS)
def push_image(body: PushBody, query: WaitQuery):
    """Push an image to its registry from a node holding it (a job with ``progress``;
    admin)."""
    rows = image_or_404(body.image, body.node)
    if body.node is not None:
        dispatch.require_docker(body.node)
        node = body.node
    else:
        ready = set(ready_nodes())
        node = next((r["node"] for r in sorted(rows, key=lambda r: r["node"])
                     if r["node"] in ready), None)
        if node is None:
            raise unavailable("docker", f"no ready node holds {body.image!r}")
    made = [image_job("push_image", messages.PUSH_IMAGE, node, {"image": body.image},
                      body.image)]
    return accepted_jobs(made, query.wait)


@bp.post("/prune", responses=JOBS)
def prune_images(body: PruneBody, query: WaitQuery):
    """Remove the dangling images and every image this installation pulled that no
    container uses, on a node or every ready node (admin)."""
    made = [image_job("prune_images", messages.PRUNE_IMAGES, node, {}, None)
            for node in named_or_ready(body.node)]
    return accepted_jobs(made, query.wait)


@bp.get("/<path:ref>", responses={200: ImageFound})
def get_image(path: ImagePath, query: ImageGetQuery):
    """The image a tag, digest or id (prefix) names, on each node holding it."""
    rows = image_or_404(path.ref, query.node)
    return {"reference": path.ref, "items": [views.image_json(r) for r in rows]}


@bp.delete("/<path:ref>", responses=JOBS)
def remove_image(path: ImagePath, query: ImageDeleteQuery):
    """Remove a reference from a node, or from every node holding it (a job each; admin).
    409 naming the deployments and containers that use it; ``force`` never removes an image
    a running container uses."""
    rows = image_or_404(path.ref, query.node)
    refuse_if_used(path.ref, rows, query.force)
    made = [image_job("remove_image", messages.REMOVE_IMAGE, node,
                      {"image": path.ref, "force": query.force}, path.ref)
            for node in holders(rows)]
    return accepted_jobs(made, query.wait)
