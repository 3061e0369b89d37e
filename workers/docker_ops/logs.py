"""Container logs: one read of them, and a followed stream that another thread can close.

The followed stream keeps which stream each frame came from (Docker multiplexes stdout and
stderr on one connection, an 8-byte header before each frame: docker-py's own helpers
drop the stream's number). The containers of this platform never have a TTY, so their
logs are always multiplexed.
"""
from __future__ import annotations

import struct

from docker.types.daemon import CancellableStream

from workers.docker_ops.engine import call, client

HEADER = 8
STREAMS = {1: "stdout", 2: "stderr"}


def logs(ref: str, tail: int | None = None, timestamps: bool = False,
         since: int | float | None = None) -> str:
    data = call(client().api.logs, ref, stdout=True, stderr=True,
                tail=tail if tail is not None else "all", timestamps=timestamps, since=since)
    return data.decode("utf-8", errors="replace")


def follow_logs(ref: str, tail: int | None = None, since: float | None = None,
                follow: bool = True) -> CancellableStream:
    """Docker's log stream of a container (``docker logs -f --timestamps``): an iterator of
    (stream, bytes), each Docker frame as it comes; ``close()`` from any thread ends it and
    closes its connection. It ends by itself when the container stops (at once, after the
    lines there now, without ``follow``)."""
    api = client().api
    params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow),
              "tail": "all" if tail is None else str(tail)}
    if since is not None:
        params["since"] = f"{since:.9f}"
    # a connection of its own, closed with the stream (never back in the pool)
    response = call(api._get, api._url("/containers/{0}/logs", ref), params=params,
                    stream=True, headers={"Connection": "close"})
    call(api._raise_for_status, response)
    sock = api._get_raw_response_socket(response)
    api._disable_socket_timeout(sock)   # a quiet container is not an error
    return CancellableStream(_frames(response), response)


def _frames(response):
    while True:
        header = response.raw.read(HEADER)
        if len(header) < HEADER:
            return
        kind, length = struct.unpack(">BxxxL", header)
        data = response.raw.read(length) if length else b""
        if length and not data:
            return
        yield STREAMS.get(kind, "stdout"), data
