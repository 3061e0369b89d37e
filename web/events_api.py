"""/api/events: the append-only record of what happened."""
from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from db import events
from web.schemas import BEARER, ErrorOut, EventList, EventQuery

tag = Tag(name="events", description="What happened, to what, and who asked")
bp = APIBlueprint("events", __name__, url_prefix="/api/events", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={422: ErrorOut, 503: ErrorOut})


def event_json(row: dict) -> dict:
    return {"id": row["id"], "at": row["at"].isoformat(), "kind": row["kind"],
            "deployment": row["deployment"], "container": row["container"],
            "detail": row["detail"], "who": row["who"]}


@bp.get("", responses={200: EventList})
def list_events(query: EventQuery):
    """Events oldest first; ``next`` is the cursor of the following page."""
    rows = events.find(deployment=query.deployment, container=query.container,
                       kind=query.kind, since=query.since,
                       after_id=int(query.cursor) if query.cursor else None,
                       limit=query.limit + 1)
    items = rows[: query.limit]
    following = str(items[-1]["id"]) if len(rows) > query.limit else None
    return {"items": [event_json(r) for r in items], "next": following}
