"""/api/events: the append-only record of what happened, as pages and as a live stream.

Events are ordered by their cursor, given in commit order (db.events): a page's ``next``
and a stream's ``id:`` are cursors, and resuming after one never misses an event that
committed late.
"""
from __future__ import annotations

import time
from typing import Optional

from flask import request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field

from core import streams
from core.eventfeed import matches, resume_problem
from db import events
from web import sse
from web.context import settings
from web.errors import ApiError, unavailable
from web.event_hub import hub
from web.schemas import BEARER, ErrorOut, EventList, EventQuery, Strict

tag = Tag(name="events", description="What happened, to what, and who asked")
bp = APIBlueprint("events", __name__, url_prefix="/api/events", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={422: ErrorOut, 503: ErrorOut})


class EventStreamQuery(Strict):
    deployment: Optional[str] = Field(None, max_length=63)
    container: Optional[str] = Field(None, max_length=128)
    kind: Optional[str] = Field(None, max_length=64)
    after: Optional[int] = Field(None, ge=0, description="resume after this cursor "
                                 "(Last-Event-ID wins when both are sent)")


def event_json(row: dict) -> dict:
    return {"id": row["id"], "cursor": row["cursor"], "at": row["at"].isoformat(),
            "kind": row["kind"], "deployment": row["deployment"],
            "container": row["container"], "detail": row["detail"], "who": row["who"]}


@bp.get("", responses={200: EventList})
def list_events(query: EventQuery):
    """Events oldest first (commit order); ``next`` is the cursor of the following page,
    ``newest`` the cursor a stream can follow on from."""
    newest = events.newest_cursor()   # first: every cursor up to it is committed, so listed
    rows = events.find(deployment=query.deployment, container=query.container,
                       kind=query.kind, since=query.since,
                       after=int(query.cursor) if query.cursor else None,
                       limit=query.limit + 1)
    items = rows[: query.limit]
    following = str(items[-1]["cursor"]) if len(rows) > query.limit else None
    return {"items": [event_json(r) for r in items], "next": following,
            "newest": str(newest)}


def resume_position(query: EventStreamQuery) -> int:
    """Where a stream starts: after Last-Event-ID or ``after`` (410 when events after it
    were removed by retention), else after the newest event."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if header and not header.isdigit():
        raise ApiError(422, "Last-Event-ID must be a cursor (digits)",
                       fields={"Last-Event-ID": "not a cursor"})
    after = int(header) if header else query.after
    if after is None:
        return hub.position()
    problem = resume_problem(after, **events.horizon())
    if problem:
        raise ApiError(410, problem, code="gone")
    return after


@bp.get("/stream", responses={200: sse.RESPONSE, 410: ErrorOut})
def stream_events(query: EventStreamQuery):
    """Events as Server-Sent Events (``id:`` is the cursor), from after Last-Event-ID (or
    ``after``) on, live; a comment every HARBORMASTER_STREAM_HEARTBEAT seconds when quiet.
    410 when the cursor is older than retention: read the list again instead."""
    if not hub.wait_ready(10):
        raise unavailable("postgres", "the event listener is not connected")
    position = resume_position(query)
    release = sse.claim()
    filters = (query.deployment, query.kind, query.container)
    body = relay_events(position, filters, sse.client_gone_check(), settings().stream_heartbeat)
    return sse.respond(body, release)


def relay_events(position: int, filters: tuple, gone, heartbeat: float):
    yield "retry: 2000\n" + streams.sse_comment(f"events after {position}")
    generation, quiet_since = -1, time.monotonic()
    while not gone():
        rows, generation = hub.read(position, generation, 1.0)
        if rows is None:   # from further back than this process holds: the table, once
            rows, generation = events.after_cursor(position), -1
        wrote = False
        for row in rows:
            position = row["cursor"]
            if matches(row, *filters):
                wrote = True
                yield streams.sse(event_json(row), event_id=str(row["cursor"]))
        if wrote:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat:
            quiet_since = time.monotonic()
            yield streams.sse_comment("heartbeat")
