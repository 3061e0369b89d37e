"""What every stream of this web process shares: the cap on open streams, the response,
the client's leaving, and the Redis client the log relays read from.

A stream holds one of gunicorn's threads for as long as its client stays, and no database
connection (it reads Postgres only before it starts). The web process runs
``HARBORMASTER_WEB_THREADS`` threads for ordinary requests plus ``HARBORMASTER_STREAM_CAP``
for streams (Procfile); this module keeps streams to that cap, so ordinary requests always
find a thread, and answers 503 with Retry-After beyond it. Streams are not subject to the
``?wait`` cap: they last as long as their client.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import redis
from flask import Response, request

from web.context import settings
from web.errors import ApiError

RETRY_AFTER = 5   # seconds a client refused at the cap waits before trying again
# the OpenAPI description of a stream's answer
RESPONSE = {"description": "Server-Sent Events, as long as the client stays (Accept: "
                           "text/plain gives raw lines where offered)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}}}
PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT

_open = 0
_lock = threading.Lock()
_redis: redis.Redis | None = None


def open_streams() -> int:
    return _open


def claim() -> Callable[[], None]:
    """One of this process's stream slots, or 503 (Retry-After) when all are taken.
    Returns the release function (call it once)."""
    global _open
    cap = settings().stream_cap
    with _lock:
        if _open >= cap:
            raise ApiError(503, f"this web process serves {cap} streams already; try again",
                           headers={"Retry-After": str(RETRY_AFTER)})
        _open += 1
    released = threading.Event()

    def release() -> None:
        global _open
        if not released.is_set():
            released.set()
            with _lock:
                _open -= 1
    return release


def client_gone_check() -> Callable[[], bool]:
    """A function telling whether the client closed its connection, without writing to it
    (gunicorn hands its socket in the environ; elsewhere only a failed write tells)."""
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        return lambda: False

    def gone() -> bool:
        try:
            return sock.recv(1, PEEK) == b""
        except BlockingIOError:
            return False   # nothing to read: still there
        except OSError:
            return True
    return gone


def wants_plain() -> bool:
    """``Accept: text/plain`` (and not event-stream) asks for raw lines."""
    accept = request.accept_mimetypes
    return accept.best_match(["text/event-stream", "text/plain"]) == "text/plain" \
        and accept["text/event-stream"] < accept["text/plain"]


def respond(body: Iterator[str], release: Callable[[], None], plain: bool = False) -> Response:
    """The streaming response; the slot is released when the body ends or is closed (the
    client left: gunicorn closes the iterator)."""
    def guarded():
        try:
            for text in body:
                yield text.encode()
        finally:
            release()
    mimetype = "text/plain" if plain else "text/event-stream"
    response = Response(guarded(), mimetype=mimetype, direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"   # a proxy in front must not buffer it
    return response


def redis_client() -> redis.Redis:
    """This process's client for the follows' leases and lines (a blocking read takes a
    connection of the pool for up to a second)."""
    global _redis
    with _lock:
        if _redis is None:
            _redis = redis.Redis.from_url(settings().redis_url, socket_connect_timeout=2,
                                          socket_timeout=10, health_check_interval=30)
        return _redis
