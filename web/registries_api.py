"""/api/registries: credentials for image registries (admin only, every method).

Stored apart like secret env (db.images' registry_credentials): the password is never
returned, logged, put in an event or sent in a message; the executor that pulls or pushes
reads it from Postgres and gives it to Docker only. A wrong password shows as the
registry's "unauthorized" on the next pull or push.
"""
from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from db import events, images
from web import auth
from web.errors import not_found
from web.image_schemas import RegistryBody, RegistryList, RegistryOut, RegistryPath
from web.schemas import BEARER, ErrorOut

tag = Tag(name="registries", description="Registry credentials for pulls and pushes (admin)")
bp = APIBlueprint("registries", __name__, url_prefix="/api/registries", abp_tags=[tag],
                  abp_security=BEARER,
                  abp_responses={401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut,
                                 503: ErrorOut})


def registry_json(row: dict) -> dict:
    """A registry's credentials as shown: never the password."""
    return {"registry": row["registry"], "username": row["username"],
            "created_by": row["created_by"], "created_at": row["created_at"].isoformat()}


def stored(registry: str) -> dict | None:
    return next((r for r in images.registries() if r["registry"] == registry), None)


@bp.get("", responses={200: RegistryList})
def list_registries():
    """The registries with credentials: registry, username, who stored them and when."""
    return {"items": [registry_json(r) for r in images.registries()], "next": None}


@bp.post("", responses={201: RegistryOut, 200: RegistryOut})
def put_registry(body: RegistryBody):
    """Store the credentials of a registry (host[:port]); they replace any stored before
    (200 then, 201 when new). Every pull and push of a reference naming it uses them."""
    replaced = stored(body.registry) is not None
    images.put_credentials(body.registry, body.username, body.password, auth.caller_name())
    events.add("registry_credentials_set", who=auth.caller_name(),
               detail={"registry": body.registry, "username": body.username})
    return registry_json(stored(body.registry)), 200 if replaced else 201


@bp.delete("/<registry>", responses={200: RegistryOut})
def delete_registry(path: RegistryPath):
    """Forget a registry's credentials."""
    row = stored(path.registry)
    if row is None or not images.delete_credentials(path.registry):
        raise not_found(f"credentials for registry {path.registry!r}")
    events.add("registry_credentials_removed", who=auth.caller_name(),
               detail={"registry": path.registry})
    return registry_json(row)
