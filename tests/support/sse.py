"""A Server-Sent Events reader for tests: sseclient-py over a streamed requests response,
read by a thread into a queue, each event with the moment it arrived.

``close()`` shuts the connection's socket (as a client that leaves), so the server sees
the client gone at once. A reader thread that fails for any other reason keeps its
traceback, and every later call on the reader raises it: a dying helper fails its test.
"""
from __future__ import annotations

import json
import queue
import socket
import threading
import time
import traceback

import requests
import sseclient


class SseReader:
    def __init__(self, url: str, token: str | None, params: dict | None = None,
                 headers: dict | None = None):
        sent = {"Accept": "text/event-stream", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        self.response = requests.get(url, params=params, headers=sent, stream=True,
                                     timeout=(10, None))
        self.status = self.response.status_code
        self.events: queue.Queue = queue.Queue()
        self.received: list = []          # every event taken so far, with its arrival
        self.error: str | None = None
        self.closing = threading.Event()
        self.thread = None
        if self.status == 200:
            self.thread = threading.Thread(target=self._read, daemon=True, name="sse-reader")
            self.thread.start()

    def _read(self) -> None:
        try:
            for event in sseclient.SSEClient(self.response).events():
                self.events.put((time.time(), event))
        except Exception:  # noqa: BLE001 - kept, and raised in the test's thread
            if not self.closing.is_set():
                self.error = traceback.format_exc()
        finally:
            self.events.put((time.time(), None))   # the stream ended

    def check(self) -> None:
        if self.error:
            raise AssertionError(f"the SSE reader thread failed:\n{self.error}")

    def next(self, timeout: float):
        """The next (arrival, event); event None when the stream ended."""
        self.check()
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout:.0f}s") from None
        self.check()
        if item[1] is not None:
            self.received.append(item)
        return item

    def until(self, predicate, timeout: float, what: str) -> list:
        """Events (arrival, event) until one satisfies ``predicate`` (included)."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise AssertionError("the deadline passed")
                arrival, event = self.next(left)
            except AssertionError as exc:
                self.check()
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what} ({exc}); "
                    f"got {[(e.event, e.data[:80]) for _, e in got][-10:]}") from None
            if event is None:
                raise AssertionError(f"the stream ended before {what}")
            got.append((arrival, event))
            if predicate(event):
                print(f"[sse] {what}: {len(got)} events")
                return got

    def ended(self, timeout: float) -> list:
        """Every event until the server ends the stream."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            arrival, event = self.next(max(0.1, deadline - time.monotonic()))
            if event is None:
                return got
            got.append((arrival, event))

    def close(self) -> None:
        """Leave: shut the socket so the server's next look finds the client gone."""
        self.closing.set()
        sock = _socket_of(self.response)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.response.close()
        if self.thread is not None:
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "the SSE reader thread did not stop"
        self.check()


def _socket_of(response: requests.Response):
    fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
    raw = getattr(fp, "raw", None)
    return getattr(raw, "_sock", None)


def data(event) -> dict:
    return json.loads(event.data)
