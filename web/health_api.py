"""Liveness: GET /health answers {"status": "OK"} while the web process serves."""
from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

tag = Tag(name="health", description="Liveness and component health")
bp = APIBlueprint("health", __name__, abp_tags=[tag])


class Liveness(BaseModel):
    status: str


@bp.get("/health", responses={200: Liveness})
def liveness():
    """The seed's liveness probe (public)."""
    return {"status": "OK"}
