"""Pydantic models of deployments (api-sketch.md's shape)."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field, field_validator, model_validator

import validation
from core import placement
from web.context import settings
from web.schemas import (ContainerOut, EnvMap, ImageRef, LabelMap, MountSpec, PortMap,
                         PullPolicy, ReplicaCount, Resources, Security, StopSignal, Strict,
                         WorkingDir)

DEPLOYMENT_NAME = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
WARM_POOL = ("instances kept created, ready once and paused beside the replicas, taken first "
             "by a scale-up (0 .. max_replicas; a setting: changing it never rolls out)")


class HealthCheck(Strict):
    type: Literal["http", "tcp", "command"]
    path: Optional[str] = Field(None, max_length=512, pattern=r"^/")
    port: Optional[int] = Field(None, ge=1, le=65535)
    command: Optional[list[str]] = Field(None, min_length=1, max_length=64)
    interval: float = Field(10, gt=0, le=3600)
    timeout: float = Field(2, gt=0, le=600)
    start_period: float = Field(0, ge=0, le=3600)
    healthy_threshold: int = Field(1, ge=1, le=100)
    unhealthy_threshold: int = Field(3, ge=1, le=100)

    @model_validator(mode="after")
    def _fields_per_type(self):
        if self.type == "http" and not self.path:
            self.path = "/"
        if self.type in ("http", "tcp") and self.port is None:
            raise ValueError(f"a {self.type} check needs a port")
        if self.type == "command" and not self.command:
            raise ValueError("a command check needs a command")
        return self


class RestartPolicy(Strict):
    backoff_initial: float = Field(10, ge=0, le=3600)
    backoff_max: float = Field(300, ge=0, le=86400)
    reset_after: float = Field(600, ge=0, le=86400)


class UpdateStrategy(Strict):
    order: Literal["start-first", "stop-first"] = "start-first"
    max_surge: int = Field(1, ge=0, le=100)
    max_unavailable: int = Field(0, ge=0, le=100)
    monitor: float = Field(5, ge=0, le=3600)
    progress_deadline: float = Field(600, gt=0, le=86400)
    on_failure: Literal["rollback", "pause"] = "rollback"
    drain_delay: Optional[float] = Field(None, ge=0, le=600)
    grace_period: Optional[float] = Field(None, ge=0, le=3600)

    @model_validator(mode="after")
    def _progress_possible(self):
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise ValueError("max_surge and max_unavailable cannot both be 0")
        return self


class ServiceBlock(Strict):
    name: str = Field(pattern=DEPLOYMENT_NAME)
    version: str = Field("1.0.0", max_length=64)
    port: int = Field(ge=1, le=65535)
    metadata: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list, max_length=64)


class Placement(Strict):
    constraints: list[str] = Field(default_factory=list, max_length=32,
                                   description="Swarm's grammar: node.name==n2, "
                                               "node.labels.zone!=b")
    strategy: Literal["spread", "binpack"] = "spread"
    max_per_node: Optional[int] = Field(None, ge=1, le=1000)
    follow_volumes: bool = Field(True, description="an instance that mounts a named volume "
                                 "runs where that volume is (volumes are per engine); false: "
                                 "anywhere, each node with a volume of its own")

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, values):
        return [placement.parse_constraint(v).text for v in values]


class Template(Strict):
    """What rolls out when it changes."""
    image: Optional[ImageRef] = None
    command: Optional[list[str] | str] = None
    env: Optional[EnvMap] = None
    secret_env: Optional[EnvMap] = None
    ports: Optional[PortMap] = None
    security: Optional[Security] = None
    mounts: Optional[list[MountSpec]] = None
    health_check: Optional[HealthCheck] = None
    labels: Optional[LabelMap] = None
    service: Optional[ServiceBlock] = None
    working_dir: Optional[WorkingDir] = None
    stop_signal: Optional[StopSignal] = None
    pull_policy: Optional[PullPolicy] = None
    placement: Optional[Placement] = None
    mode: Optional[Literal["replicated", "global"]] = Field(
        None, description="global: one instance on every eligible node (replicas follows)")


class DeploymentCreate(Template):
    name: str = Field(pattern=DEPLOYMENT_NAME, description="lowercase, digits, '-'; 1-40")
    image: ImageRef
    replicas: ReplicaCount = 1
    min_replicas: Optional[ReplicaCount] = Field(None, description="unset: 0")
    max_replicas: Optional[ReplicaCount] = Field(None, description="unset: the server's cap")
    warm_pool: ReplicaCount = Field(0, description=WARM_POOL)
    resources: Resources = Field(default_factory=Resources)
    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    update: UpdateStrategy = Field(default_factory=UpdateStrategy)

    @model_validator(mode="after")
    def _bounds(self):
        problem = validation.bounds_problem(self.replicas, self.min_replicas, self.max_replicas,
                                            settings().max_replicas)
        if problem:
            raise ValueError(problem)
        return self


class DeploymentPatch(Template):
    replicas: Optional[ReplicaCount] = None
    min_replicas: Optional[ReplicaCount] = None
    max_replicas: Optional[ReplicaCount] = None
    warm_pool: Optional[ReplicaCount] = Field(None, description=WARM_POOL)
    resources: Optional[Resources] = None
    restart: Optional[RestartPolicy] = None
    update: Optional[UpdateStrategy] = None


class ScaleBody(Strict):
    replicas: ReplicaCount


class DeploymentPath(BaseModel):
    name: str = Field(pattern=DEPLOYMENT_NAME)


class DeploymentStatus(BaseModel):
    desired: int
    running: int
    ready: int
    healthy: int
    updated: int
    warm: int = 0
    state: str
    reason: Optional[str] = None


class DeploymentOut(BaseModel):
    name: str
    image: str
    replicas: int
    min_replicas: Optional[int] = None
    max_replicas: Optional[int] = None
    warm_pool: int = 0
    generation: int
    desired_version: int
    command: Optional[list[str] | str] = None
    env: dict[str, str] = {}
    secret_env_keys: list[str] = []
    ports: dict[str, Optional[int]] = {}
    resources: dict[str, Any] = {}
    security: Optional[dict[str, Any]] = None
    mounts: list[dict[str, Any]] = []
    health_check: Optional[dict[str, Any]] = None
    restart: dict[str, Any] = {}
    update: dict[str, Any] = {}
    service: Optional[dict[str, Any]] = None
    labels: dict[str, str] = {}
    working_dir: Optional[str] = None
    stop_signal: Optional[str] = None
    pull_policy: Optional[str] = None
    placement: Optional[dict[str, Any]] = None
    mode: Optional[str] = None
    status: DeploymentStatus
    instances: list[ContainerOut] = []
    slots: list[dict[str, Any]] = Field(default_factory=list,
                                        description="each slot's node, or why nowhere")
    created_at: datetime
    updated_at: datetime


class DeploymentList(BaseModel):
    items: list[DeploymentOut]
    next: Optional[str] = None


class Revision(BaseModel):
    generation: int
    image: str
    cause: str
    who: Optional[str] = None
    created_at: datetime
    template: dict[str, Any]


class RevisionList(BaseModel):
    items: list[Revision]
    next: Optional[str] = None


def legacy_deployment_name(image: str) -> str:
    """The deployment the seed's image routes map an image to (e.g. legacy-nginx-alpine)."""
    slug = re.sub(r"[^a-z0-9]+", "-", image.lower()).strip("-")
    return f"legacy-{slug}"[:40].rstrip("-")
