"""The seed's container and image routes over our model: an image is a deployment
(``legacy-<image slug>``, core.naming), start raises its replicas, stop and delete retire
a slot."""
from __future__ import annotations

from typing import Optional

from flask import jsonify, request
from pydantic import BaseModel, Field

import validation
from core.naming import legacy_deployment_name
from core.plan import desired_slots
from db import containers, deployments, events, health, secrets
from web import auth, dispatch, policy
from web.context import settings
from web.legacy.common import (Fail, LegacyResources, awaited, body_json, bp, find_instance,
                               image_of, legacy_resources, pending, resources_of, seed_status)
from workers import messages


class StartBody(BaseModel):
    count: int = Field(1, ge=1, le=100)
    resources: Optional[LegacyResources] = None


class InstanceBody(BaseModel):
    instanceId: str = Field(min_length=1, max_length=128)


def deployment_job(dep_name: str, kind: str, write=None) -> dict:
    return dispatch.submit_deployment_job(dep_name, kind, write)


@bp.get("/containers")
def list_containers():
    rows = containers.find(role="active", limit=100000)
    items = [{"id": r["docker_id"], "name": r["name"], "image": r["image"],
              "status": seed_status(r["state"]), "ports": r["ports"] or {},
              "created_at": r["created_at"].isoformat(), "resources": resources_of(r)}
             for r in rows]
    return jsonify({"containers": items, "total": len(items)})


@bp.get("/images")
def list_images():
    items = []
    for dep in deployments.find(limit=10000):
        if dep["deleting"]:
            continue
        rows = containers.find(deployment=dep["name"], role="active", limit=100000)
        template = dep["template"]
        items.append({"image": template["image"], "deployment": dep["name"],
                      # the seed's rule: the replica count unless bounds were set
                      "min_replicas": dep["min_replicas"] if dep["min_replicas"] is not None
                      else dep["replicas"],
                      "max_replicas": dep["max_replicas"] if dep["max_replicas"] is not None
                      else dep["replicas"],
                      "resources": legacy_resources(dep["resources"] or {}),
                      "env": template.get("env") or {}, "ports": template.get("ports") or {},
                      "updated_at": dep["updated_at"].isoformat(),
                      "current_running": sum(1 for r in rows if r["state"] == "running"),
                      "total_instances": len(rows)})
    return jsonify({"images": items})


@bp.get("/containers/instances/<ref>/health")
def instance_health(ref: str):
    row = find_instance(ref)
    latest = health.latest([row["name"]])
    snap = latest[0] if latest else None
    running = row["state"] == "running"
    if snap is not None and snap["running"] != running:
        snap = None  # sampled before it started (or stopped): not about its current run
    disk_mb = round((row.get("disk_bytes") or 0) / 1024 / 1024, 2)
    if snap is None:
        return jsonify({"cpu_usage": 0.0, "memory_usage": 0.0, "disk_usage": disk_mb,
                        "status": "healthy" if running else "stopped",
                        "errors": ["no health sample yet"]})
    # the sweep's verdict, made with the configured thresholds (not re-derived here)
    return jsonify({"cpu_usage": round(float(snap["cpu_percent"] or 0), 2),
                    "memory_usage": round(float(snap["memory_percent"] or 0), 2),
                    "disk_usage": disk_mb, "status": snap["status"]})


@bp.get("/containers/<path:image>/instances")
def image_instances(image: str):
    name = legacy_deployment_name(image_of(image))
    items = []
    for row in containers.find(deployment=name, role="active", limit=100000):
        port = next((p for p in (row["ports"] or {}).values() if p), None)
        items.append({"id": row["docker_id"], "name": row["name"],
                      "status": seed_status(row["state"]),
                      "endpoint": f"http://localhost:{port}" if port and
                      row["state"] == "running" else "",
                      "resources": resources_of(row)})
    return jsonify({"instances": items})


@bp.post("/containers/<path:image>/start")
def start(image: str):
    image = image_of(image)
    body = StartBody.model_validate(body_json())
    resources = body.resources.ours() if body.resources else {}
    name = legacy_deployment_name(image)
    before = {}

    def write(conn):
        dep = deployments.get(name, conn=conn)
        if dep is None:
            template = {"image": image, "ports": {"80/tcp": None},
                        "security": policy.normalised_security(policy.Security())}
            dep = deployments.create(name, template, resources,
                                     0, None, None, {}, {"monitor": 0},
                                     auth.caller_name(), conn)
            events.add("deployment_created", deployment=name, who=auth.caller_name(),
                       conn=conn, detail={"image": image, "via": "seed start"})
        before["slots"] = set(desired_slots(dep["replicas"], set(dep["retired_slots"])))
        wanted = dep["replicas"] + body.count
        problem = validation.bounds_problem(wanted, dep["min_replicas"], dep["max_replicas"],
                                            settings().max_replicas)
        if problem:
            raise Fail(422, problem)
        if resources:
            deployments.update(name, conn, resources={**dep["resources"], **resources})
        row = deployments.set_replicas(name, wanted, conn)
        before["new"] = sorted(set(desired_slots(row["replicas"], set(row["retired_slots"])))
                               - before["slots"])
        before["generation"] = row["generation"]
        events.add("scale", deployment=name, who=auth.caller_name(), conn=conn,
                   detail={"from": dep["replicas"], "to": wanted, "via": "seed start"})

    job = deployment_job(name, "scale_deployment", write)
    ended = awaited(job)
    if ended is None:
        return pending(job)
    started = []
    for row in containers.find(deployment=name, state="running", role="active", limit=100000):
        if row["slot"] in before["new"] and row["generation"] == before["generation"]:
            started.append(row["docker_id"])
    if not started:
        raise Fail(500, f"no instance of {image} started: {ended['error'] or 'see the job'}")
    return jsonify({"started": started})


def retire(row: dict, remove: bool):
    """Retire an instance's slot: replicas - 1 and the reconciler leaves it stopped."""
    def write(conn):
        deployments.retire_slot(row["deployment"], row["slot"], conn)
        events.add("retire_slot", deployment=row["deployment"], container=row["name"],
                   who=auth.caller_name(), conn=conn, detail={"slot": row["slot"]})

    job = deployment_job(row["deployment"], "retire_slot", write)
    ended = awaited(job)
    if ended is None or not remove:
        return ended, job
    dispatch.require_docker(row["node"])
    removal = dispatch.submit("remove_container", f"containers/{row['name']}",
                                 messages.REMOVE_CONTAINER, {"name": row["name"], "force": True},
                                 node=row["node"])
    return awaited(removal), removal


@bp.post("/containers/<path:image>/stop")
def stop(image: str):
    image_of(image)
    body = InstanceBody.model_validate(body_json())
    row = find_instance(body.instanceId)
    if row["deployment"]:
        ended, job = retire(row, remove=False)
    else:
        dispatch.require_docker(row["node"])
        job = dispatch.submit("stop_container", f"containers/{row['name']}",
                                 messages.STOP_CONTAINER, {"name": row["name"], "timeout": 10},
                                 node=row["node"])
        ended = awaited(job)
    if ended is None:
        return pending(job)
    if ended["status"] != "succeeded":
        raise Fail(500, ended["error"] or "stop failed")
    return jsonify({"stopped": True})


@bp.put("/containers/<path:image>/resources")
def update_resources(image: str):
    image = image_of(image)
    body = LegacyResources.model_validate(body_json())
    resources = body.ours()
    if not resources:
        raise Fail(422, "give cpu_limit or memory_limit")
    name = legacy_deployment_name(image)
    dep = deployments.get(name)
    if dep is None:
        raise Fail(404, f"Image '{image}' not found")
    def write(conn):
        deployments.update(name, conn, resources={**dep["resources"], **resources})

    job = deployment_job(name, "update_deployment", write)  # the planner applies them live
    ended = awaited(job)
    if ended is None:
        return pending(job)
    if ended["status"] != "succeeded":
        raise Fail(500, ended["error"] or "update failed")
    updated = [r["docker_id"] for r in containers.find(deployment=name, role="active",
                                                       limit=100000) if r["docker_id"]]
    return jsonify({"updated": updated})


@bp.delete("/containers/<path:ref>")
def delete(ref: str):
    body = body_json()
    instance = body.get("instanceId") if isinstance(body.get("instanceId"), str) else None
    row = find_instance(instance or ref)
    detail = {"deleted": True, "container_id": row["docker_id"], "name": row["name"]}
    if row["deployment"]:
        ended, job = retire(row, remove=True)
    else:
        dispatch.require_docker(row["node"])
        force = request.args.get("force", "false").lower() in ("1", "true", "yes")
        job = dispatch.submit("remove_container", f"containers/{row['name']}",
                                 messages.REMOVE_CONTAINER, {"name": row["name"], "force": force},
                                 node=row["node"])
        ended = awaited(job)
    if ended is None:
        return pending(job)
    if ended["status"] != "succeeded":
        status = 409 if "running" in (ended["error"] or "") else 500
        raise Fail(status, ended["error"] or "delete failed")
    secrets.delete(row["name"])
    return jsonify(detail)


