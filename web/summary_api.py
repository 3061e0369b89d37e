"""/api/summary: everything the dashboard shows, in one answer, so that a page makes one
request per refresh: the service map, the nodes with what is reserved of each, the images
each node's engine holds, the deployments with their status counts, the instances with their
node and latest load and the recent jobs (viewer role). Events are not in it: the dashboard
reads them live from /api/events/stream, never polling."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from db import containers, dashboard, deployments, health, images, jobs, nodes
from web import dispatch, usage_views, views
from web.deploy_schemas import DeploymentStatus
from web.schemas import BEARER, ErrorOut, JobOut
from web.context import settings

tag = Tag(name="summary", description="What the dashboard shows, in one request")
bp = APIBlueprint("summary", __name__, url_prefix="/api", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={401: ErrorOut, 422: ErrorOut, 429: ErrorOut, 503: ErrorOut})
MAX_INSTANCES = 500
MAX_IMAGES = 300
RECENT_JOBS = 15
# the snapshot classifications, best first ("stopped" says nothing about load)
LOAD_ORDER = ("healthy", "warning", "critical")
# the map's health words for the same three levels
CONDITION = {"healthy": "passing", "warning": "warning", "critical": "critical"}
CONDITION_ORDER = ("passing", "warning", "critical")


class MapNode(BaseModel):
    id: str
    health: str = Field(description="passing, warning or critical: its endpoints' readiness")
    load: Optional[str] = Field(None, description="the worst classification (healthy, "
                                "warning, critical) of its instances' latest cpu and memory")
    condition: str = Field(description="the worse of health and load: what the map colours")
    instances: int = Field(description="endpoints registered")
    ready: int = Field(description="a deployment's ready instances; else endpoints passing")
    desired: int = Field(description="a deployment's desired instances; else endpoints")
    deployment: Optional[str] = None
    state: Optional[str] = Field(None, description="the deployment's state")
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


class NodeSummary(BaseModel):
    name: str
    status: str = Field(description="ready, down or returning")
    ready: bool = Field(description="placement may use it (fresh heartbeat, Docker usable)")
    availability: str = Field(description="active, pause or drain")
    address: str
    labels: dict[str, str]
    heartbeat_age: float = Field(description="seconds since its agent's last heartbeat")
    down_since: Optional[datetime] = None
    docker: dict[str, Any] = Field(description="ok, version, latency_ms, error")
    capacity: dict[str, Any] = Field(description="cpus and memory (bytes) placement offers")
    reserved: dict[str, Any] = Field(description="cpus and memory reserved by its instances")
    instances: int


NODE_FIELDS = tuple(NodeSummary.model_fields)


class ImageSummary(BaseModel):
    node: str
    short_id: str
    tags: list[str]
    size: Optional[int] = None
    created: Optional[datetime] = None
    last_used: Optional[datetime] = Field(None, description="as recorded by this installation")
    containers: list[str]
    deployments: list[str]


IMAGE_FIELDS = tuple(ImageSummary.model_fields)


class DeploymentSummary(BaseModel):
    name: str
    image: str
    replicas: int
    min_replicas: Optional[int] = None
    max_replicas: Optional[int] = None
    warm_pool: int = 0
    generation: int
    service: Optional[str] = None
    status: DeploymentStatus
    load: Optional[str] = None


class InstanceSummary(BaseModel):
    name: str
    kind: str
    deployment: Optional[str] = None
    slot: Optional[int] = None
    role: str = Field("active", description="warm: a paused warm pool member, no replica")
    node: str
    state: str
    health: str
    restarts: int = Field(description="Docker's restarts plus, for a deployment's instance, "
                                      "its slot's consecutive failures")
    exit_code: Optional[int] = None
    endpoint: Optional[str] = None
    backoff_until: Optional[datetime] = Field(None, description="a crash-looping slot is "
                                              "started again at this time")
    cpu_percent: Optional[float] = None
    memory_percent: Optional[float] = None
    load: Optional[str] = None
    sampled_at: Optional[datetime] = None


class UsageChart(BaseModel):
    period_seconds: int
    dates: list[str] = Field(description="the start of each hour of the last day (UTC)")
    deployments: list[dict[str, Any]] = Field(description="name (null: the standalone "
                                              "containers), billable cpu core-hours and "
                                              "memory GiB-hours per hour")
    idle: dict[str, list[float]] = Field(description="cpu core-hours and memory GiB-hours "
                                         "nothing reserved, every node together")


class SummaryOut(BaseModel):
    generated_at: datetime
    map: SummaryMap
    nodes: list[NodeSummary]
    images: list[ImageSummary] = Field(description="each node's engine's images, by node")
    images_truncated: bool = Field(description=f"more than {MAX_IMAGES} images")
    deployments: list[DeploymentSummary]
    instances: list[InstanceSummary]
    instances_truncated: bool = Field(description=f"more than {MAX_INSTANCES} live instances")
    jobs: list[JobOut]
    usage: UsageChart = Field(description="metered usage per deployment over the last day")


def worst(values, order: tuple[str, ...]) -> Optional[str]:
    ranked = [order.index(v) for v in values if v in order]
    return order[max(ranked)] if ranked else None


def desired_slots(dep: dict) -> list[int]:
    """The reconciler's rule: the ``replicas`` lowest slot numbers that are not retired."""
    retired, slots, slot = set(dep["retired_slots"] or []), [], 0
    while len(slots) < dep["replicas"]:
        if slot not in retired:
            slots.append(slot)
        slot += 1
    return slots


def empty_slot_rows(deps: list[dict], live: list[dict]) -> list[dict]:
    """For each desired slot with no live container (a crash loop between two tries), the
    slot's last container, so that the slot stays in view with its state."""
    occupied = {(r["deployment"], r["slot"]) for r in live if r["deployment"]}
    rows = []
    for dep in deps:
        missing = [s for s in desired_slots(dep) if (dep["name"], s) not in occupied]
        if not missing:
            continue
        history = containers.find(deployment=dep["name"], include_removed=True, limit=10000)
        for slot in missing:
            last = max((r for r in history if r["slot"] == slot),
                       key=lambda r: r["updated_at"], default=None)
            if last is not None:
                rows.append(last)
    return rows


def instance_json(row: dict, sample: dict | None, backoff: dict | None) -> dict:
    base = views.container_json(row)
    now = datetime.now(timezone.utc)
    waiting = backoff and backoff["next_start_at"] and backoff["next_start_at"] > now
    # a removed container's last sample (a crash loop's short run) says nothing about now
    running = sample is not None and sample["running"] and row["state"] == "running"
    return {
        **{k: base[k] for k in ("name", "kind", "deployment", "slot", "role", "node", "state",
                                "health", "exit_code", "endpoint")},
        "restarts": (row["restarts"] or 0) + (backoff["failures"] if backoff else 0),
        "backoff_until": backoff["next_start_at"].isoformat() if waiting else None,
        "cpu_percent": sample["cpu_percent"] if running else None,
        "memory_percent": sample["memory_percent"] if running else None,
        "load": sample["status"] if running else None,
        "sampled_at": sample["at"].isoformat() if sample else None,
    }


def instances_json(deps: list[dict]) -> tuple[list[dict], bool]:
    # a kept container (dead, for logs --previous) is no instance; its slot shows it only
    # while the slot has nothing live (empty_slot_rows)
    live = [r for r in containers.find(limit=MAX_INSTANCES + 1) if r["role"] != "kept"]
    truncated = len(live) > MAX_INSTANCES
    rows = live[:MAX_INSTANCES] + empty_slot_rows(deps, live)
    cfg = settings()
    # a sample older than a few sampling intervals no longer says how loaded it is
    samples = {s["container"]: s for s in health.latest(
        [r["name"] for r in rows], max(10.0, 4 * cfg.sample_interval))}
    backoffs = dashboard.slot_backoffs()
    out = [instance_json(r, samples.get(r["name"]), backoffs.get((r["deployment"], r["slot"])))
           for r in rows]
    out.sort(key=lambda i: (i["deployment"] or "", i["slot"] or 0, i["name"]))
    return out, truncated


def deployment_summary(dep: dict, instances: list[dict]) -> dict:
    full = views.deployment_json(dep, with_instances=False)
    service = (dep["template"] or {}).get("service")
    return {**{k: full[k] for k in ("name", "image", "replicas", "min_replicas", "max_replicas",
                                    "warm_pool", "generation", "status")},
            "service": service["name"] if service else None,
            "load": worst((i["load"] for i in instances if i["deployment"] == dep["name"]),
                          LOAD_ORDER)}


def map_json(summaries: dict[str, dict]) -> dict:
    """The service map of /api/services/map, with each deployment's counts and load."""
    graph = views.service_map_json()
    # a service named apart from its deployment, with no endpoint yet, is still that
    # deployment's (service_map finds the owner through its endpoints or its name)
    by_service = {d["service"]: d for d in summaries.values() if d["service"]}
    for node in graph["nodes"]:
        dep = summaries.get(node["deployment"]) or by_service.get(node["id"])
        if dep is not None:
            node.update(deployment=dep["name"], ready=dep["status"]["ready"],
                        desired=dep["status"]["desired"],
                        state=dep["status"]["state"], load=dep["load"])
        else:
            node.update(desired=node["instances"], state=None, load=None)
        node["condition"] = worst((node["health"], CONDITION.get(node["load"])),
                                  CONDITION_ORDER)
    return graph


def nodes_json() -> list[dict]:
    """Every node as /api/nodes shows it, only what the dashboard draws."""
    rows = nodes.all_nodes()
    states = views.fleet_states(rows)
    return [{k: shown[k] for k in NODE_FIELDS}
            for shown in (views.node_json(row, states[row["name"]]) for row in rows)]


def images_json() -> tuple[list[dict], bool]:
    """Every node's images as GET /api/images shows them, only what the dashboard draws."""
    rows = images.engine_images()
    return ([{k: shown[k] for k in IMAGE_FIELDS}
             for shown in map(views.image_json, rows[:MAX_IMAGES])], len(rows) > MAX_IMAGES)


@bp.get("/summary", responses={200: SummaryOut})
def summary():
    """Everything the dashboard shows, in one answer.

    The service map, the nodes (status, availability, capacity and what is reserved of it,
    instances), the images on each node (and what uses them), the deployments with their
    status counts and load, the instances (live ones, and each crash-looping slot's last
    one) with state, health, restarts, node and latest cpu and memory, the recent jobs
    (events: /api/events/stream), and each deployment's metered usage over the last
    day with the idle capacity."""
    deps = [d for d in deployments.find(limit=10000) if not d["deleting"]]
    instances, truncated = instances_json(deps)
    summaries = {d["name"]: deployment_summary(d, instances) for d in deps}
    shown_images, images_truncated = images_json()
    return {
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "map": map_json(summaries),
        "nodes": nodes_json(),
        "images": shown_images,
        "images_truncated": images_truncated,
        "deployments": list(summaries.values()),
        "instances": instances,
        "instances_truncated": truncated,
        "jobs": [dispatch.job_json(j) for j in jobs.find(limit=RECENT_JOBS)],
        "usage": usage_views.chart(),
    }
