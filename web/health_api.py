"""Health: liveness (/health), every component (/api/health), the containers' latest
classification, one container's health history, host and instance metrics."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import redis
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from db import containers, health, locks, nodes, pool
import validation
from web import dispatch, lookups
from web.errors import ApiError
from web.schemas import BEARER, ContainerPath, ErrorOut, Strict
from web.context import settings

tag = Tag(name="health", description="Liveness, component health, metrics")
bp = APIBlueprint("health", __name__, abp_tags=[tag])
api_bp = APIBlueprint("health_api", __name__, url_prefix="/api", abp_tags=[tag],
                      abp_security=BEARER,
                      abp_responses={401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut,
                                     503: ErrorOut})


class Liveness(BaseModel):
    status: str


class Component(BaseModel):
    status: str
    latency_ms: Optional[float] = None
    last_heartbeat: Optional[datetime] = None
    detail: Optional[str] = None


class HealthReport(BaseModel):
    status: str
    components: dict[str, Component]


class Snapshot(BaseModel):
    model_config = {"extra": "allow"}
    container: str
    at: datetime
    status: str


class SnapshotList(BaseModel):
    items: list[Snapshot]
    next: Optional[str] = None


class ContainerHealth(BaseModel):
    container: str
    health: str
    health_detail: Optional[dict[str, Any]] = None
    latest: Optional[Snapshot] = None
    history: list[Snapshot]


class SinceQuery(Strict):
    since: Optional[datetime] = None
    limit: int = Field(200, ge=1, le=5000)


class SeriesQuery(Strict):
    since: Optional[str] = Field(None, description="ISO time, or a duration back from now (1h)")
    step: str = Field("60s", description="seconds or 30s, 5m...")


class MetricsOut(BaseModel):
    model_config = {"extra": "allow"}
    host: dict[str, Any]
    instances: dict[str, Any]


@bp.get("/health", responses={200: Liveness})
def liveness():
    """The seed's liveness probe (public)."""
    return {"status": "OK"}


def _timed(fn):
    started = time.perf_counter()
    try:
        fn()
        return "ok", round((time.perf_counter() - started) * 1000, 2), None
    except Exception as exc:  # noqa: BLE001 - a component check reports any failure as down
        return "down", None, f"{type(exc).__name__}: {exc}"[:300]


@api_bp.get("/health", responses={200: HealthReport})
def component_health():
    """Each component: docker per node, postgres, redis, workers, scheduler, agents."""
    cfg = settings()
    comps = {}
    status, latency, detail = _timed(pool.ping)
    comps["postgres"] = {"status": status, "latency_ms": latency, "detail": detail}
    client = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=1, socket_timeout=2)
    status, latency, detail = _timed(client.ping)
    comps["redis"] = {"status": status, "latency_ms": latency, "detail": detail}
    if status == "ok":
        beats = client.zrangebyscore("harbormaster:__heartbeats__",
                                     (time.time() - 60) * 1000, "+inf")
        comps["workers"] = {"status": "ok" if beats else "down",
                            "detail": f"{len(beats)} worker process(es) heartbeating"}
    else:
        comps["workers"] = {"status": "unknown", "detail": "redis is down"}
    if comps["postgres"]["status"] == "ok":
        leader = locks.leader_held()
        comps["scheduler"] = {"status": "ok" if leader else "down",
                              "detail": "a leader holds the lock" if leader else
                              "no scheduler holds the leader lock"}
        for node in nodes.all_nodes():
            fresh = node["age"] <= cfg.heartbeat_stale_after
            comps[f"agent:{node['name']}"] = {
                "status": "ok" if fresh else "down", "last_heartbeat": node["heartbeat_at"],
                "detail": f"heartbeat {node['age']:.1f}s ago"}
            problem = dispatch.docker_problem(node["name"], node)
            comps[f"docker:{node['name']}"] = {
                "status": "down" if problem else "ok",
                "latency_ms": node["docker_latency_ms"], "last_heartbeat": node["heartbeat_at"],
                "detail": problem or f"Docker {node['docker_version']}"}
    overall = "ok" if all(c["status"] == "ok" for c in comps.values()) else "degraded"
    return {"status": overall, "components": comps}


def snapshot_json(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k != "id"}
    out["at"] = row["at"].isoformat()
    return out


@api_bp.get("/health/containers", responses={200: SnapshotList})
def containers_health():
    """The latest snapshot and classification of every live container."""
    live = [r["name"] for r in containers.find(limit=100000)]
    return {"items": [snapshot_json(r) for r in health.latest(live)], "next": None}


@api_bp.get("/containers/<ref>/health", responses={200: ContainerHealth})
def container_health(path: ContainerPath, query: SinceQuery):
    """One container's probe verdict, latest snapshot and history (newest first)."""
    row = lookups.container_or_404(path.ref)
    rows = health.history(row["name"], query.since, query.limit)
    return {"container": row["name"], "health": row["health"],
            "health_detail": row.get("health_detail"),
            "latest": snapshot_json(rows[0]) if rows else None,
            "history": [snapshot_json(r) for r in rows]}


@api_bp.get("/metrics", responses={200: MetricsOut})
def metrics_summary():
    """Host cpu, memory and disk (per node) and totals across instances."""
    hosts = {}
    for node in nodes.all_nodes():
        hosts[node["name"]] = {
            "cpu_percent": node["host_cpu_percent"], "cpus": node["cpus"],
            "memory_bytes": node["host_memory_bytes"], "memory_used": node["host_memory_used"],
            "disk_bytes": node["host_disk_bytes"], "disk_used": node["host_disk_used"],
            "sampled_at": node["sampled_at"].isoformat() if node["sampled_at"] else None}
    totals = health.totals()
    return {"host": hosts, "instances": {
        "running": totals["running"], "cpu_core_percent": float(totals["cpu_core_percent"]),
        "memory_bytes": int(totals["memory_bytes"]), "net_rx": int(totals["net_rx"]),
        "net_tx": int(totals["net_tx"])}}


@api_bp.get("/metrics/<ref>", responses={200: SnapshotList})
def container_series(path: ContainerPath, query: SeriesQuery):
    """One container's series, downsampled in SQL to one point per ``step``."""
    row = lookups.container_or_404(path.ref)
    try:
        step = validation.parse_duration(query.step)
        if query.since is None:
            since = datetime.now(timezone.utc) - timedelta(hours=1)
        elif query.since[:1].isdigit() and "-" not in query.since:
            since = datetime.now(timezone.utc) - timedelta(
                seconds=validation.parse_duration(query.since))
        else:
            since = datetime.fromisoformat(query.since)
    except ValueError as exc:
        raise ApiError(422, str(exc), fields={"since/step": str(exc)}) from None
    if step < 1:
        raise ApiError(422, "step must be at least 1s", fields={"step": "at least 1s"})
    points = health.series(row["name"], since, step)
    return {"items": [{**p, "container": row["name"], "at": p["at"].isoformat(),
                       "status": "series"} for p in points], "next": None}
