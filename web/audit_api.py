"""/api/audit: who asked for what, from the jobs and the events that name a caller."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from db import audit
from web.schemas import BEARER, ErrorOut, Strict

tag = Tag(name="audit", description="Who asked for what (admin)")
bp = APIBlueprint("audit", __name__, url_prefix="/api/audit", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={401: ErrorOut, 403: ErrorOut, 422: ErrorOut, 503: ErrorOut})


class AuditQuery(Strict):
    since: Optional[datetime] = None
    who: Optional[str] = Field(None, max_length=100)
    limit: int = Field(100, ge=1, le=1000)


class AuditEntry(BaseModel):
    at: datetime
    who: Optional[str] = None
    source: str
    action: str
    target: Optional[str] = None
    status: Optional[str] = None
    ref: str
    detail: dict[str, Any] = {}


class AuditList(BaseModel):
    items: list[AuditEntry]
    next: Optional[str] = None


@bp.get("", responses={200: AuditList})
def list_audit(query: AuditQuery):
    """Requests (jobs) and recorded actions (events) with their caller, newest first."""
    rows = audit.find(since=query.since, who=query.who, limit=query.limit)
    return {"items": [{**r, "at": r["at"].isoformat()} for r in rows], "next": None}
