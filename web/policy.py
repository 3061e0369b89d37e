"""Container policy: which widening options a request may use (privileged, bind mounts,
host namespaces, capabilities beyond the default set).

The server's configuration can forbid each option even for an admin (422).
"""
from __future__ import annotations

from web.errors import ApiError
from web.schemas import MountSpec, Security  # noqa: F401 - re-exported for callers
from web.context import settings


def widening_options(security: Security, mounts: list[MountSpec]) -> dict[str, str]:
    """field -> what it widens, for every option beyond the safe defaults."""
    found = {}
    if security.privileged:
        found["security.privileged"] = "privileged"
    if security.network_mode == "host":
        found["security.network_mode"] = "host_namespaces"
    if security.pid_mode == "host":
        found["security.pid_mode"] = "host_namespaces"
    if security.extra_capabilities():
        found["security.cap_add"] = "extra_capabilities"
    if "ALL" not in security.cap_drop:
        found["security.cap_drop"] = "extra_capabilities"
    if not security.no_new_privileges:
        found["security.no_new_privileges"] = "privileged"
    for index, mount in enumerate(mounts):
        if mount.type == "bind":
            found[f"mounts.{index}.type"] = "bind_mounts"
    return found


def check_allowed_by_server(found: dict[str, str]) -> None:
    cfg = settings()
    allowed = {"privileged": cfg.allow_privileged, "bind_mounts": cfg.allow_bind_mounts,
               "host_namespaces": cfg.allow_host_namespaces,
               "extra_capabilities": cfg.allow_extra_capabilities}
    refused = {field: f"{what} is disabled by the server's configuration"
               for field, what in found.items() if not allowed[what]}
    if refused:
        raise ApiError(422, "; ".join(f"{k}: {v}" for k, v in refused.items()),
                       code="validation_failed", fields=refused)


def fields_set(body, names) -> dict:
    """The JSON of the fields of ``body`` a request set (None: not set), security with its
    effective capabilities: what a spec or template stores."""
    out = {}
    for name in names:
        value = getattr(body, name, None)
        if value is None:
            continue
        if name == "security":
            value = normalised_security(value)
        elif name == "resources":
            value = value.normalised()
        elif isinstance(value, list):
            value = [v.model_dump() if hasattr(v, "model_dump") else v for v in value]
        elif hasattr(value, "model_dump"):
            value = value.model_dump()
        out[name] = value
    return out


def normalised_security(security: Security) -> dict:
    data = security.model_dump()
    data["cap_add"] = security.effective_cap_add()
    return data
