"""/api/tokens: create, list and revoke bearer tokens (admin only, synchronous)."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, Optional

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, field_validator

from db import events, pool, tokens
import validation
from web import auth
from web.errors import ApiError, not_found
from web.schemas import BEARER, ErrorOut, Strict

tag = Tag(name="tokens", description="Bearer tokens (admin)")
bp = APIBlueprint("tokens", __name__, url_prefix="/api/tokens", abp_tags=[tag], abp_security=BEARER,
                  abp_responses={401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
                                 422: ErrorOut, 503: ErrorOut})
RATE_RE = r"^\d{1,7}\s*(/|per)\s*\d{0,6}\s*(second|minute|hour|day)s?$"


class TokenCreate(Strict):
    name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.@-]{0,62}$")
    role: Literal["viewer", "operator", "admin"]
    expires_in: Optional[int | str] = Field(None, description="seconds or 30s, 5m, 12h")
    rate_limit: Optional[str] = Field(None, pattern=RATE_RE, description="e.g. 100/minute")

    @field_validator("expires_in")
    @classmethod
    def _expires(cls, value):
        if value is None:
            return None
        seconds = validation.parse_duration(value)
        if seconds <= 0:
            raise ValueError("expires_in must be positive")
        return seconds


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    prefix: str
    rate_limit: Optional[str] = None
    expires_at: Optional[datetime] = None
    created_at: datetime
    created_by: Optional[str] = None
    revoked_at: Optional[datetime] = None
    last_used_at: Optional[datetime] = None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret: shown once, in this answer only")


class TokenList(BaseModel):
    items: list[TokenOut]
    next: Optional[str] = None


class TokenPath(BaseModel):
    token_id: uuid.UUID


def token_json(row: dict) -> dict:
    out = {k: row[k] for k in ("name", "role", "prefix", "rate_limit", "created_by")}
    out["id"] = str(row["id"])
    for key in ("expires_at", "created_at", "revoked_at", "last_used_at"):
        out[key] = row[key].isoformat() if row[key] else None
    return out


@bp.post("", responses={201: TokenCreated})
def create_token(body: TokenCreate):
    """Create a token; the secret is in this answer and nowhere else."""
    who = auth.caller_name()
    try:
        with pool.connection() as conn:
            row, secret = tokens.create(body.name, body.role, who, body.expires_in,
                                        body.rate_limit, conn=conn)
            events.add("token_created", who=who, conn=conn,
                       detail={"token_id": str(row["id"]), "name": row["name"],
                               "role": row["role"]})
    except tokens.NameTaken:
        raise ApiError(409, f"an active token named {body.name!r} exists") from None
    return {**token_json(row), "token": secret}, 201


@bp.get("", responses={200: TokenList})
def list_tokens():
    """Active tokens (never their secrets)."""
    return {"items": [token_json(r) for r in tokens.find()], "next": None}


@bp.delete("/<token_id>", responses={200: TokenOut})
def revoke_token(path: TokenPath):
    """Revoke a token: it stops working at once."""
    row = tokens.revoke(str(path.token_id))
    if row is None:
        raise not_found(f"active token {path.token_id}")
    auth.revocation_heard(str(row["id"]))
    events.add("token_revoked", who=auth.caller_name(),
               detail={"token_id": str(row["id"]), "name": row["name"]})
    return token_json(row)
