"""Authentication and roles: who is calling, and may they.

Every request carries ``Authorization: Bearer <token>`` except the public routes. A
route's required role comes from its blueprint and method: GETs need viewer, other
methods operator, the admin blueprints (tokens, audit, registries) admin, changes to nodes
admin, and a few routes of operator blueprints admin (image push, removal, prune, the cache
limit). The seed's root routes may be opened without a token to configured client networks.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from flask import g, request

from db import tokens
from db.pool import Unavailable
from web import token_cache
from web.errors import ApiError
from web.context import settings
from web.waiter import waiter

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


def install(cfg) -> None:
    """This process's token cache: its lifetime, and revocations from the listener, started
    now so that the cache is live by the first requests (gunicorn builds the app in each of
    its processes, after the fork)."""
    token_cache.cache.ttl = cfg.token_cache_ttl
    waiter.also(tokens.REVOKED, token_cache.cache.revoked, token_cache.cache.reset)
    waiter.start()


def verify(secret: str) -> dict | None:
    """The token's row: from this process's cache while it can be trusted, else from
    Postgres (a token verified recently still passes while Postgres is unreachable)."""
    cache = token_cache.cache
    key = tokens.hash_secret(secret)
    row = cache.fresh(key)
    if row is not None and not waiter.pending():  # a revocation may be on its way in
        return row
    mark = cache.mark()
    try:
        row = tokens.authenticate(secret)
    except Unavailable:
        row = cache.stale(key)
        if row is None:
            raise
        return row
    if row is None:
        cache.forget(key)
    else:
        cache.store(key, row, mark)
    return row


def revocation_heard(token_id: str, timeout: float = 2.0) -> bool:
    """Wait until this process's listener has delivered a revocation (the others hear it
    at the same moment): a revoke answers once it is in force."""
    return bool(waiter.wait_for(f"{tokens.REVOKED}:{token_id}",
                                lambda: token_cache.cache.heard(token_id), timeout))


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
