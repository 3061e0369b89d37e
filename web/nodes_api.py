"""/api/nodes: the Docker hosts (viewers read; admins change labels and capacity, pause,
drain, activate, and remove a node that is down with nothing left); /api/system/resources
sums the ready ones."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from db import containers, deployments, events, nodes
from web import auth, dispatch, views
from web.errors import ApiError, not_found
from web.schemas import BEARER, ByteSize, CpuCount, ErrorOut, JobOut, Strict, WaitQuery
from workers import messages

tag = Tag(name="nodes", description="Docker hosts: capacity, placement, loss, drain")
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut,
          503: ErrorOut}
bp = APIBlueprint("nodes", __name__, url_prefix="/api/nodes", abp_tags=[tag],
                  abp_security=BEARER, abp_responses=ERRORS)
system_bp = APIBlueprint("system", __name__, url_prefix="/api/system", abp_tags=[tag],
                         abp_security=BEARER, abp_responses=ERRORS)
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class NodePath(BaseModel):
    name: str = Field(pattern=NAME)


class NodePatch(Strict):
    labels: Optional[dict[str, Optional[str]]] = Field(
        None, description="merged over the labels the agent reports; null removes one")
    cpus: Optional[CpuCount] = Field(None, description="capacity override (cores)")
    memory: Optional[ByteSize] = Field(None, description="capacity override (256m, 4g)")
    reset_capacity: bool = Field(False, description="drop the capacity overrides")


class DrainQuery(WaitQuery):
    deadline: float = Field(600, gt=0, le=messages.MAX_DRAIN_DEADLINE,
                            description="seconds; after it the rest is stopped")


class NodeOut(BaseModel):
    model_config = {"extra": "allow"}
    name: str
    status: str
    ready: bool
    availability: str
    address: str
    labels: dict[str, str]
    epoch: int
    heartbeat_age: float
    capacity: dict[str, Any]
    reserved: dict[str, Any]
    free: dict[str, Any]
    instances: int
    volumes: list[str] = Field(default_factory=list, description="named volumes its engine "
                               "holds (a deployment mounting one is placed there)")


class NodeList(BaseModel):
    items: list[NodeOut]
    next: Optional[str] = None


class NodeDetail(NodeOut):
    containers: list[dict[str, Any]] = []


class SystemResources(BaseModel):
    nodes: int
    cpus: float
    memory: int
    reserved_cpus: float
    reserved_memory: int
    free_cpus: float
    free_memory: int
    instances: int
    volumes: list[str] = Field(default_factory=list, description="named volumes its engine "
                               "holds (a deployment mounting one is placed there)")
    at: datetime


def node_or_404(name: str) -> dict:
    row = nodes.get(name)
    if row is None:
        raise not_found(f"node {name!r}")
    return row


@bp.get("", responses={200: NodeList})
def list_nodes():
    """Every node: capacity, reserved, free, instances, heartbeat, Docker, availability."""
    rows = nodes.all_nodes()
    states = views.fleet_states(rows)
    return {"items": [views.node_json(row, states[row["name"]]) for row in rows], "next": None}


@bp.get("/<name>", responses={200: NodeDetail})
def get_node(path: NodePath):
    """One node, with the containers on it and where each comes from."""
    row = node_or_404(path.name)
    out = views.node_view(row)
    out["containers"] = [views.container_json(r) for r in containers.find(node=row["name"],
                                                                          limit=10000)]
    return out


@bp.patch("/<name>", responses={200: NodeOut})
def patch_node(path: NodePath, body: NodePatch):
    """Labels (over the reported ones) and capacity overrides, for placement."""
    node_or_404(path.name)
    row = nodes.update(path.name, body.labels, body.cpus, body.memory, body.reset_capacity)
    events.add("node_updated", who=auth.caller_name(),
               detail={"node": path.name, **body.model_dump(exclude_none=True)})
    converge_everything()
    return views.node_view(row)


def set_availability(name: str, availability: str, kind: str):
    node_or_404(name)
    row = nodes.set_availability(name, availability)
    events.add(kind, who=auth.caller_name(), detail={"node": name})
    converge_everything()
    return views.node_view(row)


@bp.post("/<name>/pause", responses={200: NodeOut})
def pause_node(path: NodePath):
    """No new instances on this node; the ones there stay."""
    return set_availability(path.name, "pause", "node_paused")


@bp.post("/<name>/activate", responses={200: NodeOut})
def activate_node(path: NodePath):
    """Takes new instances again (rebalance a deployment to spread onto it)."""
    return set_availability(path.name, "active", "node_activated")


@bp.post("/<name>/drain", responses={202: JobOut, 200: JobOut})
def drain_node(path: NodePath, query: DrainQuery):
    """Move every instance off this node start-first (a job that ends when the drained
    containers have exited; after ``deadline`` seconds the rest is stopped)."""
    node_or_404(path.name)
    deadline = query.deadline

    def write(conn):
        nodes.set_availability(path.name, "drain", conn=conn)
        events.add("node_draining", who=auth.caller_name(), conn=conn,
                   detail={"node": path.name, "deadline": deadline})

    job = dispatch.submit("drain_node", f"nodes/{path.name}", messages.DRAIN_NODE,
                          {"node": path.name, "deadline": deadline}, write=write)
    return dispatch.accepted(job, query.wait)


@bp.delete("/<name>", responses={200: NodeOut})
def delete_node(path: NodePath):
    """Forget a node that is down and has nothing left on it."""
    row = node_or_404(path.name)
    shown = views.node_view(row)
    if nodes.delete(path.name) is None:
        raise ApiError(409, f"node {path.name!r} is {row['status']} or still has containers: "
                            "only a down node with nothing left can be removed")
    events.add("node_removed", who=auth.caller_name(), detail={"node": path.name})
    return shown


@system_bp.get("/resources", responses={200: SystemResources})
def system_resources():
    """Capacity, reserved and free CPU and memory summed over the ready nodes."""
    ready = [s for s in views.fleet_states().values() if s.ready]
    cpus, memory = sum(s.cpus for s in ready), sum(s.memory for s in ready)
    reserved_cpus = sum(s.reserved_cpus for s in ready)
    reserved_memory = sum(s.reserved_memory for s in ready)
    return {"nodes": len(ready), "cpus": round(cpus, 3), "memory": memory,
            "reserved_cpus": round(reserved_cpus, 3), "reserved_memory": reserved_memory,
            "free_cpus": round(max(0.0, cpus - reserved_cpus), 3),
            "free_memory": max(0, memory - reserved_memory),
            "instances": sum(s.instances for s in ready),
            "at": datetime.now(timezone.utc).isoformat()}


def converge_everything() -> None:
    """Placement changed: every deployment looks again (a pending slot may fit now)."""
    for name in deployments.names():
        messages.send_or_leave(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE, (name,))
