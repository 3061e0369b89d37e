"""The engine this process drives: the client, and every Docker error mapped to
``Permanent`` (retrying cannot help: bad image, conflict, not found) or ``Transient`` (engine
unreachable, 5xx): actors let Dramatiq retry the latter only."""
from __future__ import annotations

import threading
import time

import docker
import docker.errors
import requests.exceptions


class DockerError(Exception):
    """Base of the errors this module raises."""


class Permanent(DockerError):
    """Retrying will not help (bad request, missing image, name taken...)."""


class NotFound(Permanent):
    """The container (or image) does not exist."""


class Conflict(Permanent):
    """The name is taken (409)."""


class Transient(DockerError):
    """The engine could not be reached or failed; a retry may succeed."""


_client = None
_lock = threading.Lock()
_base_url = "unix:///var/run/docker.sock"
_publish_host = "127.0.0.1"


def publish_host() -> str:
    """Where this node's published ports bind (and answer)."""
    return _publish_host


def base_url() -> str:
    """The engine's address (a pull opens a client of its own with its own timeout)."""
    return _base_url


def configure(docker_host: str | None, publish_host: str) -> None:
    """Which engine this process drives and where published ports bind (the node's)."""
    global _client, _base_url, _publish_host
    with _lock:
        _client, _base_url = None, docker_host or "unix:///var/run/docker.sock"
        _publish_host = publish_host


def client() -> docker.DockerClient:
    global _client
    with _lock:
        if _client is None:
            # "auto" asks the engine its API version; a failure leaves _client unset so the
            # next call tries again (the engine may come back)
            _client = call(docker.DockerClient, base_url=_base_url, timeout=60,
                           max_pool_size=64, version="auto")
        return _client


def translate(exc: Exception) -> DockerError:
    """docker-py's or the connection's failure as Permanent / Transient / NotFound / Conflict."""
    if isinstance(exc, docker.errors.NotFound):
        return NotFound(_explain(exc))
    if isinstance(exc, docker.errors.APIError):
        code = exc.status_code or 500
        if code == 409 and "is already in use" in _explain(exc):
            return Conflict(_explain(exc))
        if code >= 500:
            return Transient(_explain(exc))
        return Permanent(_explain(exc))
    if isinstance(exc, docker.errors.DockerException):
        return Transient(str(exc))
    return Transient(f"docker engine unreachable: {exc}")


def _explain(exc) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


def call(fn, *args, **kwargs):
    """Run one docker-py call, mapping every failure to Permanent / Transient."""
    try:
        return fn(*args, **kwargs)
    except (docker.errors.DockerException, requests.exceptions.RequestException,
            ConnectionError, OSError) as exc:
        raise translate(exc) from exc


# --- engine -----------------------------------------------------------------

def ping() -> float:
    """Seconds one ping took; raises Transient when the engine does not answer."""
    started = time.monotonic()
    call(client().api.ping)
    return time.monotonic() - started


def info() -> dict:
    return call(client().api.info)


def volume_names() -> list[str]:
    """The names of the engine's volumes (placement keeps a deployment where its named
    volumes are)."""
    found = call(client().api.volumes) or {}
    return sorted(v["Name"] for v in found.get("Volumes") or ())
