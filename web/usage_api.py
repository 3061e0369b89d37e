"""/api/usage: metered usage per hour or day (UTC), by deployment, node, label or container, as
JSON or as CSV (``Accept: text/csv`` or ``?format=csv``) with OpenCost's column names where
they apply, for a billing system to import (viewer role). Read from the rollup's rows: the
periods that closed are final, the open ones grow until they close."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Optional

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

import validation
from db import usage_report
from web.context import settings
from web.errors import ApiError
from web.schemas import BEARER, ErrorOut
from web.usage_views import report

tag = Tag(name="usage", description="Metered usage for billing")
bp = APIBlueprint("usage", __name__, url_prefix="/api", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={401: ErrorOut, 403: ErrorOut, 422: ErrorOut, 503: ErrorOut})
MAX_PERIODS = 2000
class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    since: Optional[str] = Field(None, alias="from", max_length=64, description=(
        "ISO time (UTC without an offset), or a duration back from now (24h, 7d); "
        "default 24h: the period holding it is the first"))
    to: Optional[str] = Field(None, max_length=64, description="likewise; default now "
                              "(periods starting before it)")
    by: str = Field("deployment", pattern=r"^(deployment|node|container|label:\S{1,128})$",
                    description="deployment, node, container or label:<key>")
    step: Literal["hour", "day"] = Field("hour", description="the period length")
    format: Optional[Literal["json", "csv"]] = Field(None, description="csv: the same rows "
                                                     "as text/csv (so does Accept: text/csv)")


class UsageOut(BaseModel):
    model_config = {"extra": "allow"}
    since: datetime = Field(alias="from")
    to: datetime
    step: str
    period_seconds: int
    by: str
    columns: list[str]
    items: list[dict[str, Any]]
    idle: list[dict[str, Any]] = Field(description="per period and node: its capacity and "
                                       "what nothing reserved of it")


def moment(text: str | None, field: str, default: datetime, now: datetime) -> datetime:
    """An ISO time (UTC if it has no offset) or a duration back from now."""
    if text is None:
        return default
    try:
        if validation.DURATION_RE.match(text):
            return now - timedelta(seconds=validation.parse_duration(text))
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, f"{field}: not an ISO time or a duration back from now ({exc})",
                       fields={field: "an ISO time (2026-11-30T16:00:00Z) or a duration (24h)"}
                       ) from None


def window(query: UsageQuery, length: int) -> tuple[datetime, datetime]:
    """[from floored to its period, to), refused with 422 naming the field when it is empty
    or holds more than MAX_PERIODS periods."""
    now = datetime.now(timezone.utc)
    until = moment(query.to, "to", now, now)
    since = moment(query.since, "from", now - timedelta(days=1), now)
    try:
        epoch = since.timestamp()
    except (OverflowError, ValueError, OSError):
        raise ApiError(422, "from: out of range", fields={"from": "out of range"}) from None
    since = datetime.fromtimestamp(epoch - epoch % length, timezone.utc)
    if until <= since:
        raise ApiError(422, f"to: must be after from ({since.isoformat()})",
                       fields={"to": "must be after from"})
    periods = (until - since).total_seconds() / length
    if periods > MAX_PERIODS:
        raise ApiError(422, f"from: the range holds {periods:.0f} periods of a {query.step}; "
                       f"at most {MAX_PERIODS} (a longer step, or a shorter range)",
                       fields={"from": f"at most {MAX_PERIODS} periods"})
    return since, until


def as_csv(columns: list[str], items: list[dict]) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for item in items:
        writer.writerow({k: "" if v is None else v for k, v in item.items()})
    return Response(out.getvalue(), mimetype="text/csv")


@bp.get("/usage", responses={200: UsageOut})
def usage(query: UsageQuery):
    """Usage per period (UTC hours or days) and group: running and paused seconds, CPU and
    memory used, requested and billable (max of the two), network bytes, cost (with
    prices configured); and each node's idle capacity."""
    cfg = settings()
    length = cfg.usage_periods[0 if query.step == "hour" else 1]
    since, until = window(query, length)
    shown = report(query.by, length, since, until)
    wants_csv = query.format == "csv" or (query.format is None and request.accept_mimetypes
                                          .best_match(["application/json", "text/csv"])
                                          == "text/csv")
    if wants_csv:
        return as_csv(shown["columns"], shown["items"])
    rolled = usage_report.newest_rollup()
    return {"from": since.isoformat(), "to": until.isoformat(), "step": query.step,
            "period_seconds": length, "by": query.by, **shown,
            "rolled_up_at": rolled.isoformat() if rolled else None}
