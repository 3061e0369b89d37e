"""Authentication and roles: who is calling, and may they.

Every request carries ``Authorization: Bearer <token>`` except the public routes. A
route's required role comes from its blueprint and method: GETs need viewer, other
methods operator, the admin blueprints (tokens, audit, registries) admin, changes to nodes
admin, and a few routes of operator blueprints admin (image push, removal, prune, the cache
limit). The seed's root routes may be opened without a token to configured client networks.
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from flask import g, request

from db import tokens
from db.pool import Unavailable
from web.errors import ApiError
from web.context import settings

RANK = {"viewer": 0, "operator": 1, "admin": 2}
ADMIN_BLUEPRINTS = {"tokens", "audit", "registries"}  # every method
ADMIN_CHANGES = {"nodes"}                        # viewers read, admins change
# routes of an operator blueprint that need admin (operators pull and tag images)
ADMIN_ENDPOINTS = {"images.push_image", "images.remove_image", "images.prune_images",
                   "images.put_settings"}
PUBLIC_PATHS = {"/health", "/api/openapi.json", "/favicon.ico"}
PUBLIC_PREFIXES = ("/static/", "/ui/")
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    token_id: str | None = None
    rate_limit: str | None = None


def client_in(networks) -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in net for net in networks)


def is_public() -> bool:
    path = request.path
    if path in PUBLIC_PATHS or path == "/" or path.startswith(PUBLIC_PREFIXES):
        return True
    if path == "/metrics":
        return client_in(settings().metrics_networks)
    return False


def is_legacy_route() -> bool:
    return not request.path.startswith("/api/") and request.path != "/api"


def required_role() -> str:
    blueprint = request.blueprint or ""
    reading = request.method in READ_METHODS
    if blueprint in ADMIN_BLUEPRINTS or (blueprint in ADMIN_CHANGES and not reading) \
            or request.endpoint in ADMIN_ENDPOINTS:
        return "admin"
    return "viewer" if reading else "operator"


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate() -> None:
    """before_request: set g.caller or refuse with 401 / 403."""
    g.caller = None
    if is_public():
        return
    secret = bearer()
    if secret is None:
        cfg = settings()
        if is_legacy_route() and cfg.legacy_open and client_in(cfg.legacy_open_networks):
            g.caller = Caller(name=f"legacy@{request.remote_addr}", role="operator")
            return
        raise ApiError(401, "a bearer token is required (Authorization: Bearer <token>)",
                       headers={"WWW-Authenticate": "Bearer"})
    row = verify(secret) if len(secret) < 200 else None
    if row is None:
        raise ApiError(401, "the token is unknown, revoked or expired",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    g.caller = Caller(name=row["name"], role=row["role"], token_id=str(row["id"]),
                      rate_limit=row["rate_limit"])
    needed = required_role()
    if RANK[row["role"]] < RANK[needed]:
        raise ApiError(403, f"this needs the {needed} role; token {row['name']!r} is "
                            f"{row['role']}")


# Tokens verified recently, used only while Postgres is unreachable (stale-if-error), so
# health and compatibility routes still answer during a database outage. While Postgres
# is up every request is checked against it: a revocation takes effect at once.
_verified: dict[str, tuple[dict, float]] = {}
STALE_IF_ERROR = 300.0


def verify(secret: str) -> dict | None:
    key = tokens.hash_secret(secret)
    try:
        row = tokens.authenticate(secret)
    except Unavailable:
        cached = _verified.get(key)
        if cached is not None and time.monotonic() - cached[1] < STALE_IF_ERROR:
            return cached[0]
        raise
    if row is None:
        _verified.pop(key, None)
    else:
        _verified[key] = (row, time.monotonic())
    return row


def current() -> Caller | None:
    return g.get("caller")


def caller_name() -> str | None:
    caller = current()
    return caller.name if caller else None


def require_admin_for(found: dict[str, str]) -> None:
    """Options that widen access (privileged, bind mounts, ...) need an admin token."""
    caller = current()
    if found and (caller is None or RANK[caller.role] < RANK["admin"]):
        fields = {field: f"{what} needs the admin role" for field, what in found.items()}
        raise ApiError(403, "; ".join(f"{k}: {v}" for k, v in fields.items()), fields=fields)
