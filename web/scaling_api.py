"""/api/scaling: autoscaling policies (seed 004's paths), custom metrics, decisions."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Optional

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, model_validator

from core import autoscale
from db import deployments, events, pool, scaling
from web import auth, lookups
from web.deploy_schemas import DEPLOYMENT_NAME, DeploymentPath
from web.errors import ApiError, not_found
from web.schemas import BEARER, ErrorOut, ReplicaCount, Strict
from web.context import settings
from workers import messages

tag = Tag(name="scaling", description="Autoscaling policies and their decisions")
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut,
          503: ErrorOut}
bp = APIBlueprint("scaling", __name__, url_prefix="/api/scaling", abp_tags=[tag],
                  abp_security=BEARER, abp_responses=ERRORS)
metrics_bp = APIBlueprint("custom_metrics", __name__, url_prefix="/api/deployments",
                          abp_tags=[tag], abp_security=BEARER, abp_responses=ERRORS)


class MetricTarget(Strict):
    type: Literal["cpu", "memory", "custom"]
    target: float = Field(gt=0, le=1e9)
    name: Optional[str] = Field(None, pattern=r"^[a-z][a-z0-9_]{0,62}$")

    @model_validator(mode="after")
    def _named(self):
        if self.type == "custom" and not self.name:
            raise ValueError("a custom metric needs a name (e.g. requests_per_second)")
        if self.type != "custom":
            self.name = None
        return self


class Rule(Strict):
    metric: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    above: Optional[float] = None
    below: Optional[float] = None
    action: Literal["scale_up", "scale_down"]

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.above is None) == (self.below is None):
            raise ValueError("a rule has exactly one of above / below")
        if self.action == "scale_up" and self.above is None:
            raise ValueError("scale_up rules take 'above'")
        if self.action == "scale_down" and self.below is None:
            raise ValueError("scale_down rules take 'below'")
        return self


class PolicyBody(Strict):
    deployment: str = Field(pattern=DEPLOYMENT_NAME)
    min_replicas: Optional[ReplicaCount] = None
    max_replicas: Optional[ReplicaCount] = None
    metrics: list[MetricTarget] = Field(default_factory=list, max_length=16)
    rules: Optional[list[Rule]] = Field(None, max_length=16)
    scale_up_cooldown: float = Field(300, ge=0, le=86400)
    scale_down_cooldown: float = Field(600, ge=0, le=86400)
    stabilization_window: float = Field(300, ge=0, le=86400)
    enabled: bool = True

    @model_validator(mode="after")
    def _something_to_scale_on(self):
        if not self.metrics and not self.rules:
            raise ValueError("give metrics (targets) or rules")
        if self.min_replicas is not None and self.max_replicas is not None and \
                self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas is above max_replicas")
        return self


class PolicyOut(BaseModel):
    id: str
    deployment: str
    min_replicas: Optional[int] = None
    max_replicas: Optional[int] = None
    metrics: list[dict[str, Any]]
    rules: Optional[list[dict[str, Any]]] = None
    scale_up_cooldown: float
    scale_down_cooldown: float
    stabilization_window: float
    enabled: bool
    last_scale_up_at: Optional[datetime] = None
    last_scale_down_at: Optional[datetime] = None
    created_at: datetime
    updated_at: datetime


class PolicyList(BaseModel):
    items: list[PolicyOut]
    next: Optional[str] = None


class PolicyPath(BaseModel):
    policy_id: uuid.UUID


class DecisionQuery(Strict):
    deployment: Optional[str] = Field(None, pattern=DEPLOYMENT_NAME)
    since: Optional[datetime] = None
    limit: int = Field(200, ge=1, le=5000)


class DecisionOut(BaseModel):
    deployment: str
    at: datetime
    current: int
    desired: int
    recommendation: int
    applied: bool
    reason: str
    inputs: dict[str, Any]


class DecisionList(BaseModel):
    items: list[DecisionOut]
    next: Optional[str] = None


class MetricReport(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    value: float = Field(ge=0, le=1e12)


class MetricReported(BaseModel):
    deployment: str
    name: str
    value: float
    at: datetime


def policy_json(row: dict, dep: dict) -> dict:
    out = {k: row[k] for k in ("deployment", "metrics", "rules", "scale_up_cooldown",
                               "scale_down_cooldown", "stabilization_window", "enabled")}
    out["id"] = str(row["id"])
    out["min_replicas"], out["max_replicas"] = dep["min_replicas"], dep["max_replicas"]
    for key in ("last_scale_up_at", "last_scale_down_at", "created_at", "updated_at"):
        out[key] = row[key].isoformat() if row[key] else None
    return out


def apply_bounds(body: PolicyBody, dep: dict, conn) -> None:
    """A policy's min/max are the deployment's bounds."""
    lo = body.min_replicas if body.min_replicas is not None else dep["min_replicas"]
    hi = body.max_replicas if body.max_replicas is not None else dep["max_replicas"]
    if lo is not None and hi is not None and lo > hi:
        raise ApiError(422, f"min_replicas {lo} is above max_replicas {hi}",
                       fields={"min_replicas": "above max_replicas"})
    deployments.update(dep["name"], conn, min_replicas=lo, max_replicas=hi)


def dumped(body: PolicyBody) -> tuple[list, list | None]:
    return ([m.model_dump(exclude_none=True) for m in body.metrics],
            [r.model_dump(exclude_none=True) for r in body.rules] if body.rules else None)


@bp.post("/policies", responses={201: PolicyOut})
def create_policy(body: PolicyBody):
    """One policy per deployment (409 for a second); its min/max become the bounds."""
    dep = lookups.deployment_or_404(body.deployment)
    metrics, rules = dumped(body)
    with pool.connection() as conn:
        apply_bounds(body, dep, conn)
        row = scaling.create(dep["name"], metrics, rules, body.scale_up_cooldown,
                             body.scale_down_cooldown, body.stabilization_window, body.enabled,
                             auth.caller_name(), conn)
        if row is None:
            raise ApiError(409, f"deployment {dep['name']!r} already has a scaling policy")
        events.add("scaling_policy_created", deployment=dep["name"], who=auth.caller_name(),
                   conn=conn, detail={"policy": str(row["id"])})
    return policy_json(row, lookups.deployment_or_404(dep["name"])), 201


@bp.get("/policies", responses={200: PolicyList})
def list_policies():
    """Every scaling policy."""
    items = []
    for row in scaling.find():
        dep = deployments.get(row["deployment"])
        if dep is not None:
            items.append(policy_json(row, dep))
    return {"items": items, "next": None}


def policy_or_404(policy_id) -> dict:
    row = scaling.get(str(policy_id))
    if row is None:
        raise not_found(f"scaling policy {policy_id}")
    return row


@bp.get("/policies/<policy_id>", responses={200: PolicyOut})
def get_policy(path: PolicyPath):
    """One scaling policy."""
    row = policy_or_404(path.policy_id)
    return policy_json(row, lookups.deployment_or_404(row["deployment"]))


@bp.put("/policies/<policy_id>", responses={200: PolicyOut})
def replace_policy(path: PolicyPath, body: PolicyBody):
    """Replace a policy (its deployment cannot change)."""
    row = policy_or_404(path.policy_id)
    if body.deployment != row["deployment"]:
        raise ApiError(422, "a policy's deployment cannot change",
                       fields={"deployment": "cannot change"})
    dep = lookups.deployment_or_404(row["deployment"])
    metrics, rules = dumped(body)
    with pool.connection() as conn:
        apply_bounds(body, dep, conn)
        row = scaling.replace(str(path.policy_id), metrics, rules, body.scale_up_cooldown,
                              body.scale_down_cooldown, body.stabilization_window,
                              body.enabled, conn)
    return policy_json(row, lookups.deployment_or_404(dep["name"]))


@bp.delete("/policies/<policy_id>", responses={200: PolicyOut})
def delete_policy(path: PolicyPath):
    """Delete a policy: the deployment keeps its current replicas."""
    row = scaling.delete(str(path.policy_id))
    if row is None:
        raise not_found(f"scaling policy {path.policy_id}")
    events.add("scaling_policy_deleted", deployment=row["deployment"], who=auth.caller_name())
    dep = deployments.get(row["deployment"])
    return policy_json(row, dep or {"min_replicas": None, "max_replicas": None})


@bp.get("/decisions", responses={200: DecisionList})
def list_decisions(query: DecisionQuery):
    """Every decision with its reason, including those that kept the count (newest first)."""
    rows = scaling.decisions(query.deployment, query.since, query.limit)
    return {"items": [{**r, "at": r["at"].isoformat()} for r in rows], "next": None}


@metrics_bp.post("/<name>/metrics", responses={200: MetricReported})
def report_metric(path: DeploymentPath, body: MetricReport):
    """A load balancer reports a total for the deployment (e.g. requests_per_second); a
    value above the policy's target asks for the deployment's evaluation at once."""
    dep = lookups.deployment_or_404(path.name)
    row = scaling.report_metric(dep["name"], body.name, body.value, auth.caller_name())
    policy = scaling.policy_for(dep["name"])
    if policy is not None and policy["enabled"]:
        why = autoscale.wants_more(autoscale.Policy.of(policy, dep, settings().max_replicas),
                                   dep["replicas"], autoscale.Observations(
                                       custom={body.name: (body.value, 0.0)}))
        if why is not None:
            messages.send_or_leave(messages.EVALUATE_AUTOSCALING, messages.DEFAULT_QUEUE,
                                   (dep["name"], f"metric report: {why}"))
    return {**row, "at": row["at"].isoformat()}
