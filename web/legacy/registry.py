"""The seed's registry routes, on the same records /api/services shows (one registry, two
surfaces)."""
from __future__ import annotations

from typing import Optional

from flask import jsonify, request
from pydantic import BaseModel, Field

from db import registry
from web.legacy.common import Fail, body_json, bp


class EndpointBody(BaseModel):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")
    image_id: str = Field(min_length=1, max_length=255)
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    caps: Optional[dict] = None


class StatusBody(BaseModel):
    status: str = Field(pattern=r"^(UP|DOWN)$")


def legacy_endpoint(row: dict) -> dict:
    return {"id": row["id"], "image_id": row["service"], "host": row["address"],
            "port": row["port"], "caps": (row["metadata"] or {}).get("caps"),
            "status": row["status"], "last_heartbeat": row["last_heartbeat"].isoformat()}


@bp.post("/registry/endpoints")
def register_endpoint():
    body = EndpointBody.model_validate(body_json())
    existing = registry.get(body.id)
    if existing is not None and existing["source"] == "deployment":
        raise Fail(409, f"Endpoint '{body.id}' belongs to a deployment")
    metadata = {"caps": body.caps} if body.caps is not None else {}
    row = registry.register(body.id, body.image_id, "1.0.0", body.host, body.port, metadata,
                            [], None, "legacy", status="UP")
    return jsonify(legacy_endpoint(row))


@bp.put("/registry/endpoints/<endpoint_id>/status")
def endpoint_status(endpoint_id: str):
    raw = body_json() or {"status": request.args.get("status")}
    body = StatusBody.model_validate(raw)
    if registry.get(endpoint_id) is None:
        raise Fail(404, f"Endpoint '{endpoint_id}' not found")
    row = registry.set_status(endpoint_id, body.status)
    return jsonify(legacy_endpoint(row))


@bp.delete("/registry/endpoints/<endpoint_id>")
def delete_endpoint(endpoint_id: str):
    if registry.delete(endpoint_id) is None:
        raise Fail(404, f"Endpoint '{endpoint_id}' not found")
    return jsonify({"ok": True})

