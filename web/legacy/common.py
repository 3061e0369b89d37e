"""What the seed's routes share: the blueprint, the seed's error form ``{"detail": ...}``,
resources in the seed's units, and awaiting a job (bounded) so the answer has the seed's
shape; past the wait the answer is 202 with the job."""
from __future__ import annotations

from typing import Optional

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ValidationError

import validation
from db import containers, jobs
from web import dispatch
from web.errors import ApiError
from web.schemas import ByteSize, CpuCount

bp = Blueprint("legacy", __name__)
WAIT = 60.0


class Fail(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@bp.errorhandler(Fail)
def _fail(exc: Fail):
    return jsonify({"detail": exc.detail}), exc.status


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return jsonify({"detail": exc.detail}), exc.status


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError):
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return jsonify({"detail": detail}), 422


class LegacyResources(BaseModel):
    cpu_limit: Optional[CpuCount] = None
    memory_limit: Optional[ByteSize] = None

    def ours(self) -> dict:
        out = {}
        if self.cpu_limit is not None:
            out["cpus"] = self.cpu_limit
        if self.memory_limit is not None:
            out["memory"] = self.memory_limit
        return out


def body_json() -> dict:
    data = request.get_json(silent=True) if request.data else None
    return data if isinstance(data, dict) else {}


def image_of(image: str) -> str:
    try:
        return validation.check_image(image)
    except ValueError as exc:
        raise Fail(422, str(exc)) from None


def legacy_resources(resources: dict) -> dict:
    out = {}
    if resources.get("cpus") is not None:
        out["cpu_limit"] = f"{float(resources['cpus']):g}"
    if resources.get("memory") is not None:
        out["memory_limit"] = docker_size(int(resources["memory"]))
    return out


def docker_size(size: int) -> str:
    for unit, factor in (("g", 1024 ** 3), ("m", 1024 ** 2), ("k", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def resources_of(row: dict) -> dict:
    return legacy_resources(row["resources"] or {})


def seed_status(state: str) -> str:
    return "running" if state == "running" else "stopped"


def awaited(job: dict):
    """The job once it ended (bounded); None when it is still running (202 then)."""
    job = dispatch.wait_for_job(job, WAIT)
    return job if job["status"] in jobs.TERMINAL else None


def pending(job: dict):
    return jsonify(dispatch.job_json(job)), 202, {"Location": f"/api/jobs/{job['id']}"}


def find_instance(ref: str) -> dict:
    row = containers.get(ref)
    if row is None or row["state"] == "removed":
        raise Fail(404, f"Instance '{ref}' not found")
    return row


