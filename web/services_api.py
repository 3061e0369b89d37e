"""/api/services: registration of external endpoints, discovery (with blocking queries),
and the service map."""
from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Any, Literal, Optional

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, field_validator, model_validator

from db import registry
from web import dispatch, views
from web.deploy_schemas import DEPLOYMENT_NAME
from web.errors import ApiError, not_found
from web.schemas import BEARER, ErrorOut, Strict
from web.waiter import Waiter

tag = Tag(name="services", description="Service registry and discovery")
bp = APIBlueprint("services", __name__, url_prefix="/api/services", abp_tags=[tag],
                  abp_security=BEARER,
                  abp_responses={401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut,
                                 503: ErrorOut})
service_waiter = Waiter("service_changed")


class Check(Strict):
    type: Literal["ttl", "http", "tcp"]
    ttl: Optional[float] = Field(None, gt=0, le=86400)
    deregister_after: float = Field(60, ge=0, le=86400 * 7)
    path: Optional[str] = Field(None, pattern=r"^/", max_length=512)
    interval: float = Field(10, gt=0, le=3600)
    timeout: float = Field(2, gt=0, le=600)

    @model_validator(mode="after")
    def _per_type(self):
        if self.type == "ttl" and self.ttl is None:
            raise ValueError("a ttl check needs ttl (seconds)")
        if self.type == "http" and not self.path:
            self.path = "/"
        return self


class Registration(Strict):
    name: str = Field(pattern=DEPLOYMENT_NAME)
    version: str = Field("1.0.0", max_length=64)
    address: str = Field(max_length=255)
    port: int = Field(ge=1, le=65535)
    metadata: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list, max_length=64)
    check: Optional[Check] = None
    node: Optional[str] = Field(None, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                description="the node whose agent runs the check (default: "
                                            "the one running the scheduler)")

    @field_validator("address")
    @classmethod
    def _address(cls, value):
        if not value or any(c.isspace() for c in value):
            raise ValueError("an address is a host name or an IP")
        return value

    @model_validator(mode="after")
    def _probe_loopback_only(self):
        # our probes send traffic only to loopback: http/tcp checks elsewhere are refused
        if self.check and self.check.type in ("http", "tcp"):
            try:
                loopback = ipaddress.ip_address(self.address).is_loopback
            except ValueError:
                loopback = self.address == "localhost"
            if not loopback:
                raise ValueError("http and tcp checks probe loopback addresses only; use a "
                                 "ttl check for this endpoint")
        return self


class EndpointOut(BaseModel):
    id: str
    service: str
    version: str
    address: str
    port: int
    internal: Optional[str] = None
    status: str
    health: str
    instance: Optional[str] = None
    deployment: Optional[str] = None
    source: str
    metadata: dict[str, Any]
    depends_on: list[str]
    check: Optional[dict[str, Any]] = None
    node: Optional[str] = None
    last_heartbeat: datetime


class EndpointList(BaseModel):
    items: list[EndpointOut]
    next: Optional[str] = None


class ServiceEndpoints(BaseModel):
    service: str
    index: int
    endpoints: list[EndpointOut]


class ListQuery(Strict):
    name: Optional[str] = Field(None, max_length=64)
    version: Optional[str] = Field(None, max_length=64)
    healthy: Optional[bool] = None


class EndpointsQuery(Strict):
    healthy: Optional[bool] = None
    version: Optional[str] = Field(None, max_length=64)
    index: Optional[int] = Field(None, ge=0)
    wait: Optional[str] = Field(None, description="with index: block up to this long")


class EndpointPath(BaseModel):
    endpoint_id: str = Field(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")


class NamePath(BaseModel):
    name: str = Field(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class ServiceMap(BaseModel):
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]


def endpoint_json(row: dict) -> dict:
    out = {k: row[k] for k in ("id", "service", "version", "address", "port", "internal",
                               "status", "health", "instance", "deployment", "source",
                               "metadata")}
    out["depends_on"] = list(row["depends_on"] or [])
    out["check"] = row["check_spec"]
    out["node"] = row["probe_node"]
    out["last_heartbeat"] = row["last_heartbeat"].isoformat()
    return out


@bp.post("/register", responses={201: EndpointOut})
def register(body: Registration):
    """Register an external endpoint (201 with its id); ttl, http or tcp checked."""
    row = registry.register(str(uuid.uuid4()), body.name, body.version, body.address,
                            body.port, body.metadata, body.depends_on,
                            body.check.model_dump() if body.check else None, "external",
                            probe_node=body.node)
    return endpoint_json(row), 201


@bp.get("", responses={200: EndpointList})
def list_endpoints(query: ListQuery):
    """Every endpoint (filters: name, version, healthy = UP and passing)."""
    rows = registry.find(query.name, query.version, query.healthy)
    return {"items": [endpoint_json(r) for r in rows], "next": None}


@bp.get("/map", responses={200: ServiceMap})
def service_map():
    """Services with health, counts and key metrics; dependency edges with the health of
    their target."""
    return views.service_map_json()


@bp.get("/<endpoint_id>", responses={200: EndpointOut})
def get_endpoint(path: EndpointPath):
    """One endpoint by its id."""
    row = registry.get(path.endpoint_id)
    if row is None:
        raise not_found(f"endpoint {path.endpoint_id!r}")
    return endpoint_json(row)


@bp.delete("/<endpoint_id>", responses={200: EndpointOut})
def deregister(path: EndpointPath):
    """Deregister an external endpoint (a deployment's endpoints follow its instances)."""
    row = registry.delete(path.endpoint_id)
    if row is None:
        existing = registry.get(path.endpoint_id)
        if existing is not None:
            raise ApiError(409, "a deployment's endpoints follow its instances; scale the "
                                "deployment instead")
        raise not_found(f"endpoint {path.endpoint_id!r}")
    return endpoint_json(row)


@bp.put("/<endpoint_id>/heartbeat", responses={200: EndpointOut})
def heartbeat(path: EndpointPath):
    """Renew a TTL registration."""
    row = registry.heartbeat(path.endpoint_id)
    if row is None:
        raise not_found(f"registered endpoint {path.endpoint_id!r}")
    return endpoint_json(row)


@bp.get("/<name>/endpoints", responses={200: ServiceEndpoints})
def service_endpoints(path: NamePath, query: EndpointsQuery):
    """A service's endpoints. With ?index=N&wait=30s the answer waits until the service's
    index exceeds N (woken through LISTEN/NOTIFY), so a balancer follows changes."""
    if query.index is not None and query.wait:
        seconds = dispatch.wait_seconds(query.wait)
        service_waiter.wait_for(path.name, lambda: registry.index(path.name) > query.index,
                                seconds)
    rows = registry.find(path.name, query.version, query.healthy)
    return {"service": path.name, "index": registry.index(path.name),
            "endpoints": [endpoint_json(r) for r in rows]}
