"""/api/jobs: read, list, wait for and cancel jobs."""
from __future__ import annotations

import uuid
from datetime import datetime

from flask_openapi3 import APIBlueprint, Tag

from db import containers, events, jobs
from web import auth, dispatch
from web.errors import ApiError, not_found
from web.schemas import BEARER, ErrorOut, JobList, JobListQuery, JobOut, JobPath, WaitQuery

tag = Tag(name="jobs", description="Every requested Docker operation is a job")
bp = APIBlueprint("jobs", __name__, url_prefix="/api/jobs", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={404: ErrorOut, 422: ErrorOut, 503: ErrorOut})


@bp.get("/<job_id>", responses={200: JobOut, 202: JobOut})
def get_job(path: JobPath, query: WaitQuery):
    """One job; with ?wait= the answer comes when the job ends (or the wait runs out)."""
    job = jobs.get(str(path.job_id))
    if job is None:
        raise not_found(f"job {str(path.job_id)}")
    job = dispatch.wait_for_job(job, dispatch.wait_seconds(query.wait))
    return dispatch.job_json(job), 200


def parse_cursor(cursor: str | None) -> str | None:
    """A cursor is '<created_at>|<job id>' as the previous page's ``next`` gave it."""
    if not cursor:
        return None
    stamp, _, ident = cursor.partition("|")
    try:
        datetime.fromisoformat(stamp)
        uuid.UUID(ident)
    except ValueError:
        raise ApiError(422, "cursor is not one this API gave", fields={"cursor": "invalid"}) \
            from None
    return cursor


@bp.get("", responses={200: JobList})
def list_jobs(query: JobListQuery):
    """Jobs, newest first, filtered by status and kind."""
    rows = jobs.find(status=query.status, kind=query.kind, limit=query.limit + 1,
                     before=parse_cursor(query.cursor))
    items = rows[: query.limit]
    following = None
    if len(rows) > query.limit:
        last = items[-1]
        following = f"{last['created_at'].isoformat()}|{last['id']}"
    return {"items": [dispatch.job_json(j) for j in items], "next": following}


@bp.delete("/<job_id>", responses={200: JobOut, 409: ErrorOut})
def cancel_job(path: JobPath):
    """Cancel a job that is still queued (a running job cannot be cancelled)."""
    job = jobs.cancel(str(path.job_id))
    if job is None:
        existing = jobs.get(str(path.job_id))
        if existing is None:
            raise not_found(f"job {str(path.job_id)}")
        raise ApiError(409, f"job {str(path.job_id)} is {existing['status']}; only a queued job "
                            "can be cancelled")
    if job["kind"] == "create_container":
        name = job["target"].split("/", 1)[1]
        if containers.abandon_request(name) is not None:
            events.add("create_cancelled", container=name, who=auth.caller_name(),
                       detail={"job": str(job["id"])})
    return dispatch.job_json(job)
