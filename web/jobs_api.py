"""/api/jobs: read (by id or a unique prefix of it), list, wait for and cancel jobs."""
from __future__ import annotations

import uuid
from datetime import datetime

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from db import containers, events, jobs
from web import auth, dispatch
from web.errors import ApiError, not_found
from web.schemas import BEARER, ErrorOut, JobList, JobListQuery, JobOut, JobPath, WaitQuery

tag = Tag(name="jobs", description="Every requested Docker operation is a job")
bp = APIBlueprint("jobs", __name__, url_prefix="/api/jobs", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={404: ErrorOut, 422: ErrorOut, 503: ErrorOut})


class JobRefPath(BaseModel):
    job_id: str = Field(min_length=4, max_length=36, pattern=r"^[0-9A-Fa-f-]+$",
                        description="a job id, or a unique prefix of one (at least 4 hex "
                                    "digits, with or without its dashes), as docker takes "
                                    "container-id prefixes")


def resolve(ref: str) -> dict:
    """The job a full id or a unique id prefix names: 404 when none does, 409 when several
    do (saying how many), 422 when ``ref`` cannot begin a job id."""
    digits = ref.replace("-", "").lower()
    # with dashes, they must sit where a printed id has them ("3f2a1b2c-4d", not "3f-2a")
    if not 4 <= len(digits) <= 32 or ("-" in ref and not str(
            uuid.UUID(digits.ljust(32, "0"))).startswith(ref.lower())):
        raise ApiError(422, f"{ref!r} is neither a job id nor a prefix of one (at least 4 hex "
                            "digits)", fields={"job_id": "not a job id or id prefix"})
    job, count = jobs.find_by_prefix(digits)
    if count == 0:
        raise not_found(f"job {ref}")
    if job is None:
        raise ApiError(409, f"job id prefix {ref!r} matches {count} jobs; give more of the id",
                       fields={"job_id": "ambiguous"})
    return job


@bp.get("/<job_id>", responses={200: JobOut, 202: JobOut, 409: ErrorOut})
def get_job(path: JobRefPath, query: WaitQuery):
    """One job, by id or by a unique prefix of its id; with ?wait= the answer comes when the
    job ends (or the wait runs out)."""
    job = dispatch.wait_for_job(resolve(path.job_id), dispatch.wait_seconds(query.wait))
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
