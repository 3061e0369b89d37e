"""/api/summary: everything the dashboard shows, in one answer, so that a page makes one
request per refresh: the service map, the deployments with their status counts, the
instances with their latest load, the recent jobs and the recent events (viewer role)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

import config
from db import containers, dashboard, deployments, jobs
from web import dispatch
from web.containers_api import container_json
from web.deploy_schemas import DeploymentStatus
from web.deployments_api import deployment_json
from web.events_api import event_json
from web.schemas import BEARER, ErrorOut, EventOut, JobOut
from web.services_api import service_map

tag = Tag(name="summary", description="What the dashboard shows, in one request")
bp = APIBlueprint("summary", __name__, url_prefix="/api", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={401: ErrorOut, 422: ErrorOut, 429: ErrorOut, 503: ErrorOut})
MAX_INSTANCES = 500
RECENT_JOBS = 15
RECENT_EVENTS = 40


class MapNode(BaseModel):
    id: str
    health: str = Field(description="passing, warning or critical: its endpoints' readiness")
    instances: int = Field(description="endpoints registered")
    ready: int = Field(description="endpoints passing")
    deployment: Optional[str] = None
    cpu: Optional[float] = None
    memory: Optional[float] = None


class MapEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    source: str = Field(alias="from")
    to: str
    health: str


class SummaryMap(BaseModel):
    nodes: list[MapNode]
    edges: list[MapEdge]


class DeploymentSummary(BaseModel):
    name: str
    image: str
    replicas: int
    min_replicas: Optional[int] = None
    max_replicas: Optional[int] = None
    generation: int
    service: Optional[str] = None
    status: DeploymentStatus


class InstanceSummary(BaseModel):
    name: str
    kind: str
    deployment: Optional[str] = None
    slot: Optional[int] = None
    node: str
    state: str
    health: str
    restarts: int
    exit_code: Optional[int] = None
    endpoint: Optional[str] = None
    cpu_percent: Optional[float] = None
    memory_percent: Optional[float] = None
    load: Optional[str] = None
    sampled_at: Optional[datetime] = None


class SummaryOut(BaseModel):
    generated_at: datetime
    map: SummaryMap
    deployments: list[DeploymentSummary]
    instances: list[InstanceSummary]
    instances_truncated: bool = Field(description=f"more than {MAX_INSTANCES} live instances")
    jobs: list[JobOut]
    events: list[EventOut] = Field(description="the newest first")


def instance_json(row: dict, sample: dict | None) -> dict:
    base = container_json(row)
    # a removed container's last sample (a crash loop's short run) says nothing about now
    running = sample is not None and sample["running"] and row["state"] == "running"
    return {
        **{k: base[k] for k in ("name", "kind", "deployment", "slot", "node", "state", "health",
                                "restarts", "exit_code", "endpoint")},
        "cpu_percent": sample["cpu_percent"] if running else None,
        "memory_percent": sample["memory_percent"] if running else None,
        "load": sample["status"] if running else None,
        "sampled_at": sample["at"].isoformat() if sample else None,
    }


def instances_json() -> tuple[list[dict], bool]:
    live = containers.find(limit=MAX_INSTANCES + 1)
    truncated = len(live) > MAX_INSTANCES
    rows = live[:MAX_INSTANCES]
    cfg = config.load()
    # a sample older than a few sampling intervals no longer says how loaded it is
    samples = dashboard.latest_snapshots([r["name"] for r in rows],
                                         max(10.0, 4 * cfg.sample_interval))
    out = [instance_json(r, samples.get(r["name"])) for r in rows]
    out.sort(key=lambda i: (i["deployment"] or "", i["slot"] or 0, i["name"]))
    return out, truncated


def deployment_summary(dep: dict) -> dict:
    full = deployment_json(dep, with_instances=False)
    service = (dep["template"] or {}).get("service")
    return {**{k: full[k] for k in ("name", "image", "replicas", "min_replicas", "max_replicas",
                                    "generation", "status")},
            "service": service["name"] if service else None}


@bp.get("/summary", responses={200: SummaryOut})
def summary():
    """Everything the dashboard shows, in one answer.

    The service map, the deployments with their status counts, the instances with state,
    health, restarts, node and latest cpu and memory, the recent jobs and the newest
    events."""
    deps = [d for d in deployments.find(limit=10000) if not d["deleting"]]
    instances, truncated = instances_json()
    return {
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "map": service_map(),
        "deployments": [deployment_summary(d) for d in deps],
        "instances": instances,
        "instances_truncated": truncated,
        "jobs": [dispatch.job_json(j) for j in jobs.find(limit=RECENT_JOBS)],
        "events": [event_json(e) for e in dashboard.newest_events(RECENT_EVENTS)],
    }
