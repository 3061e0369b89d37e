"""The seed service's HTTP contract at the root paths (../shared/legacy-api.md), as a thin
layer over our model: an image is a deployment (``legacy-<image slug>``), start raises its
replicas, stop and delete retire a slot. Mutations are our jobs, awaited (bounded) so the
answer has the seed's shape; past the wait the answer is 202 with the job.
Errors keep the seed's ``{"detail": ...}`` form.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Optional

import psutil
from flask import Blueprint, jsonify, request
from pydantic import BaseModel, Field, ValidationError, field_validator

import config
from db import containers, deployments, events, health, nodes, pool, registry, secrets
from db.pool import Unavailable
import validation
from web import auth, deployments_api, dispatch, policy
from web.deploy_schemas import legacy_deployment_name
from web.errors import ApiError
from workers import messages
from workers.reconcile import desired_slots

bp = Blueprint("legacy", __name__)
WAIT = 60.0


class Fail(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@bp.errorhandler(Fail)
def _fail(exc: Fail):
    return jsonify({"detail": exc.detail}), exc.status


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return jsonify({"detail": exc.detail}), exc.status


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError):
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return jsonify({"detail": detail}), 422


class LegacyResources(BaseModel):
    cpu_limit: Optional[str | float] = None
    memory_limit: Optional[str] = None

    @field_validator("cpu_limit")
    @classmethod
    def _cpu(cls, value):
        return None if value is None else validation.parse_cpus(value)

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value):
        return None if value is None else validation.parse_size(value)

    def ours(self) -> dict:
        out = {}
        if self.cpu_limit is not None:
            out["cpus"] = self.cpu_limit
        if self.memory_limit is not None:
            out["memory"] = self.memory_limit
        return out


class StartBody(BaseModel):
    count: int = Field(1, ge=1, le=100)
    resources: Optional[LegacyResources] = None


class InstanceBody(BaseModel):
    instanceId: str = Field(min_length=1, max_length=128)


class EndpointBody(BaseModel):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")
    image_id: str = Field(min_length=1, max_length=255)
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    caps: Optional[dict] = None


class StatusBody(BaseModel):
    status: str = Field(pattern=r"^(UP|DOWN)$")


def body_json() -> dict:
    data = request.get_json(silent=True) if request.data else None
    return data if isinstance(data, dict) else {}


def image_of(image: str) -> str:
    try:
        return validation.check_image(image)
    except ValueError as exc:
        raise Fail(422, str(exc)) from None


def legacy_resources(resources: dict) -> dict:
    out = {}
    if resources.get("cpus") is not None:
        out["cpu_limit"] = f"{float(resources['cpus']):g}"
    if resources.get("memory") is not None:
        out["memory_limit"] = docker_size(int(resources["memory"]))
    return out


def docker_size(size: int) -> str:
    for unit, factor in (("g", 1024 ** 3), ("m", 1024 ** 2), ("k", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def resources_of(row: dict) -> dict:
    return legacy_resources(row["resources"] or {})


def seed_status(state: str) -> str:
    return "running" if state == "running" else "stopped"


def awaited(job: dict):
    """The job once it ended (bounded); None when it is still running (202 then)."""
    job = dispatch.wait_for_job(job, WAIT)
    return job if job["status"] in ("succeeded", "failed", "cancelled") else None


def pending(job: dict):
    return jsonify(dispatch.job_json(job)), 202, {"Location": f"/api/jobs/{job['id']}"}


def find_instance(ref: str) -> dict:
    row = containers.get(ref)
    if row is None or row["state"] == "removed":
        raise Fail(404, f"Instance '{ref}' not found")
    return row


def reconcile(dep_name: str, kind: str, write=None) -> dict:
    return deployments_api.submit_reconcile(dep_name, config.load().node_name, kind, write)


# --- health and system --------------------------------------------------------------

def check_postgres() -> tuple[bool, str]:
    try:
        started = time.perf_counter()
        pool.fetchone("SELECT 1")
        return True, f"connected ({(time.perf_counter() - started) * 1000:.1f} ms)"
    except Unavailable as exc:
        return False, str(exc)[:300]


def check_docker() -> tuple[bool | None, str]:
    node = config.load().node_name
    try:
        row = nodes.get(node)
    except Unavailable:
        return None, "unknown: postgres (which holds the node heartbeat) is unavailable"
    problem = dispatch.docker_problem(node, row)
    if problem is not None:
        return False, problem
    return True, f"Docker {row['docker_version']} answered in {row['docker_latency_ms']:.1f} ms"


@bp.get("/health/detailed")
def health_detailed():
    pg_ok, pg_message = check_postgres()
    docker_ok, docker_message = check_docker()
    cpu, memory = psutil.cpu_percent(interval=None), psutil.virtual_memory().percent
    managed = None
    if pg_ok:
        managed = pool.fetchone("SELECT count(*) AS n FROM containers WHERE state <> 'removed'")["n"]
    resources_ok = cpu < 90 and memory < 90
    components = {
        "docker": {"status": "healthy" if docker_ok else "unhealthy", "message": docker_message},
        "postgresql": {"status": "healthy" if pg_ok else "unhealthy", "message": pg_message},
        "container_manager": {"status": "healthy" if pg_ok else "unhealthy",
                              "message": f"Managing {managed} containers" if pg_ok
                              else "container records unavailable"},
        "system_resources": {"status": "healthy" if resources_ok else "warning",
                             "cpu_usage": f"{cpu:.1f}%", "memory_usage": f"{memory:.1f}%"},
    }
    status = "OK"
    if not docker_ok or not resources_ok:
        status = "DEGRADED"
    if not pg_ok:
        status = "ERROR"
    return jsonify({"status": status, "timestamp": datetime.now(timezone.utc).isoformat(),
                    "components": components})


def docker_totals() -> dict:
    rows = pool.fetchall("SELECT state FROM containers WHERE state <> 'removed'")
    latest = health.latest([r["name"] for r in containers.find(state="running", limit=100000)])
    cpu = sum((s["cpu_percent"] or 0) for s in latest)
    memory_mb = sum((s["memory_bytes"] or 0) for s in latest) / 1024 / 1024
    running = sum(1 for r in rows if r["state"] == "running")
    return {"managed_containers": len(rows), "running_containers": running,
            "total_cpu_usage_percent": round(cpu, 2), "total_memory_usage_mb": round(memory_mb, 2),
            "average_cpu_per_container": round(cpu / running, 2) if running else 0.0,
            "average_memory_per_container_mb": round(memory_mb / running, 2) if running else 0.0}


@bp.get("/system/resources")
def system_resources():
    try:
        cores = psutil.cpu_count() or 1
        usage = psutil.cpu_percent(interval=0.1)
        mem, disk = psutil.virtual_memory(), psutil.disk_usage("/")
        gb = 1024 ** 3
        return jsonify({"system": {
            "cpu": {"total_cores": cores, "current_usage_percent": usage,
                    "available_cores": round(cores * (100 - usage) / 100, 2)},
            "memory": {"total_gb": round(mem.total / gb, 2),
                       "available_gb": round(mem.available / gb, 2),
                       "usage_percent": mem.percent},
            "disk": {"total_gb": round(disk.total / gb, 2), "free_gb": round(disk.free / gb, 2),
                     "usage_percent": disk.percent}},
            "docker": docker_totals()})
    except (Unavailable, OSError) as exc:
        raise Fail(500, f"could not measure resources: {exc}") from None


@bp.get("/test/integration")
def integration():
    tests = {}
    docker_ok, docker_message = check_docker()
    tests["docker_connection"] = {"status": "PASS" if docker_ok else "FAIL",
                                  "message": docker_message}
    pg_ok, pg_message = check_postgres()
    tests["postgresql"] = {"status": "PASS" if pg_ok else "FAIL", "message": pg_message}
    if pg_ok:
        n = len(containers.find(limit=100000))
        tests["container_listing"] = {"status": "PASS", "message": f"{n} containers listed"}
        fresh = pool.fetchone("SELECT max(at) AS at FROM health_snapshots")["at"]
        age = (datetime.now(timezone.utc) - fresh).total_seconds() if fresh else None
        limit = 3 * config.load().sample_interval
        tests["health_monitoring"] = {
            "status": "PASS" if age is not None and age <= limit else "WARNING",
            "message": f"last health sample {age:.0f}s ago" if age is not None
            else "no health samples yet"}
    else:
        tests["container_listing"] = {"status": "FAIL", "message": "postgres is unavailable"}
        tests["health_monitoring"] = {"status": "FAIL", "message": "postgres is unavailable"}
    try:
        cpu, memory = psutil.cpu_percent(interval=None), psutil.virtual_memory().percent
        tests["system_resources"] = {"status": "PASS" if max(cpu, memory) < 90 else "WARNING",
                                     "message": f"cpu {cpu:.1f}%, memory {memory:.1f}%"}
    except OSError as exc:
        tests["system_resources"] = {"status": "FAIL", "message": str(exc)}
    overall = "FAILED" if any(t["status"] == "FAIL" for t in tests.values()) else "PASSED"
    return jsonify({"timestamp": datetime.now(timezone.utc).isoformat(), "tests": tests,
                    "overall_status": overall})


# --- containers and images ------------------------------------------------------------

@bp.get("/containers")
def list_containers():
    rows = containers.find(limit=100000)
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
        rows = containers.find(deployment=dep["name"], limit=100000)
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
    for row in containers.find(deployment=name, limit=100000):
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
            dep = deployments.create(name, config.load().node_name, template, resources,
                                     0, None, None, {}, {"monitor": 0},
                                     auth.caller_name(), conn)
            events.add("deployment_created", deployment=name, who=auth.caller_name(),
                       conn=conn, detail={"image": image, "via": "seed start"})
        before["slots"] = set(desired_slots(dep["replicas"], set(dep["retired_slots"])))
        wanted = dep["replicas"] + body.count
        problem = validation.bounds_problem(wanted, dep["min_replicas"], dep["max_replicas"],
                                            config.load().max_replicas)
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

    job = reconcile(name, "scale_deployment", write)
    ended = awaited(job)
    if ended is None:
        return pending(job)
    started = []
    for slot in before["new"]:
        row = containers.by_name(f"{name}-{slot}-g{before['generation']}")
        if row and row["state"] == "running":
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

    job = reconcile(row["deployment"], "retire_slot", write)
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
    dispatch.require_docker(dep["node"])

    def write(conn):
        deployments.update(name, conn, resources={**dep["resources"], **resources})

    job = dispatch.submit("update_deployment_resources", f"deployments/{name}",
                             messages.UPDATE_DEPLOYMENT_RESOURCES, {"deployment": name},
                             node=dep["node"], write=write)
    ended = awaited(job)
    if ended is None:
        return pending(job)
    if ended["status"] != "succeeded":
        raise Fail(500, ended["error"] or "update failed")
    updated = [containers.by_name(n)["docker_id"] for n in ended["result"]["updated"]]
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


# --- registry ---------------------------------------------------------------------------

def legacy_endpoint(row: dict) -> dict:
    return {"id": row["id"], "image_id": row["service"], "host": row["address"],
            "port": row["port"], "caps": (row["metadata"] or {}).get("caps"),
            "status": row["status"], "last_heartbeat": row["last_heartbeat"].isoformat()}


@bp.post("/registry/endpoints")
def register_endpoint():
    body = EndpointBody.model_validate(body_json())
    existing = registry.get(body.id)
    if existing is not None and existing["source"] == "deployment":
        raise Fail(409, f"Endpoint '{body.id}' belongs to a deployment")
    metadata = {"caps": body.caps} if body.caps is not None else {}
    row = registry.register(body.id, body.image_id, "1.0.0", body.host, body.port, metadata,
                            [], None, "legacy", status="UP")
    return jsonify(legacy_endpoint(row))


@bp.put("/registry/endpoints/<endpoint_id>/status")
def endpoint_status(endpoint_id: str):
    raw = body_json() or {"status": request.args.get("status")}
    body = StatusBody.model_validate(raw)
    if registry.get(endpoint_id) is None:
        raise Fail(404, f"Endpoint '{endpoint_id}' not found")
    row = registry.set_status(endpoint_id, body.status)
    return jsonify(legacy_endpoint(row))


@bp.delete("/registry/endpoints/<endpoint_id>")
def delete_endpoint(endpoint_id: str):
    if registry.delete(endpoint_id) is None:
        raise Fail(404, f"Endpoint '{endpoint_id}' not found")
    return jsonify({"ok": True})

