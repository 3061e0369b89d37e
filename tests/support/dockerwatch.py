"""Follow Docker's event stream during a test: polling misses spikes, events do not.

The watch fails its test when the stream dies (the error is raised in the test's thread
when the watch stops), and it stops only after a marker of its own has come through the
stream (a tiny container created and removed): every event before the marker has then
been counted, with no sleep to guess how long that takes.
"""
from __future__ import annotations

import threading
import time
import uuid

import docker
import requests

MARKER_IMAGE = "harbormaster/busybox-httpd"
MARKER_LABEL = "harbormaster.test-marker"


class WatchFailed(AssertionError):
    """The event stream died or the marker never came through."""


class DockerWatch:
    """Counts a label's containers (existing, running) after every event, keeping maxima
    and minima over the whole watch. ``label`` is ``key=value``."""

    def __init__(self, label: str, marker_timeout: float = 60,
                 base_url: str = "unix:///var/run/docker.sock"):
        self.label = label
        self.key, _, self.value = label.partition("=")
        self.client = docker.DockerClient(base_url=base_url)
        self.existing: set[str] = set()
        self.running: set[str] = set()
        self.max_existing = self.max_running = 0
        self.min_running = None
        self.events: list[dict] = []
        self.marker_timeout = marker_timeout
        self._marker = uuid.uuid4().hex
        self._marker_seen = threading.Event()
        self._since = time.time()
        self._stopping = threading.Event()
        self._stream = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._follow, daemon=True,
                                        name=f"dockerwatch-{label}")

    def __enter__(self):
        # the plain list: docker-py's containers.list inspects each one, and raises when one
        # is removed in between
        for entry in self.client.api.containers(all=True, filters={"label": self.label}):
            self.existing.add(entry["Id"])
            if entry["State"] == "running":
                self.running.add(entry["Id"])
        self._update()
        # every container event: the marker does not carry the watched label (it must not
        # be counted); the label is matched here instead
        self._stream = self.client.api.events(since=self._since, decode=True,
                                              filters={"type": "container"})
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:  # the test failed already: stop quietly, its own error is the one to see
            self._close()

    def stop(self) -> None:
        """Wait for the marker to come through the stream, stop following, and raise
        WatchFailed when the stream died on the way."""
        marker_error = None
        try:
            if self._thread.is_alive():
                self._send_marker()
                deadline = time.monotonic() + self.marker_timeout
                while not self._marker_seen.wait(0.1):
                    if not self._thread.is_alive() or time.monotonic() > deadline:
                        break
        except (docker.errors.DockerException, requests.RequestException) as exc:
            marker_error = exc
        finally:
            self._close()
        if self.error is not None:
            raise WatchFailed(f"the docker event stream died: {self.error!r}") from self.error
        if marker_error is not None:
            raise WatchFailed(f"the marker container could not be made: {marker_error!r}")
        if not self._marker_seen.is_set():
            raise WatchFailed(f"the marker container's events did not arrive within "
                              f"{self.marker_timeout:.0f}s")

    def _send_marker(self) -> None:
        created = self.client.api.create_container(MARKER_IMAGE, command=["true"],
                                                   labels={MARKER_LABEL: self._marker})
        self.client.api.remove_container(created["Id"], force=True)

    def _close(self) -> None:
        self._stopping.set()
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing a broken stream may fail; nothing to do
            pass
        self._thread.join(timeout=10)

    def _update(self):
        self.max_existing = max(self.max_existing, len(self.existing))
        self.max_running = max(self.max_running, len(self.running))
        if self.min_running is None or len(self.running) < self.min_running:
            self.min_running = len(self.running)

    def _follow(self):
        try:
            for event in self._stream:
                self._handle(event)
                if self._marker_seen.is_set():
                    return
            if not self._stopping.is_set():
                self.error = EOFError("the engine ended the event stream")
        except Exception as exc:  # noqa: BLE001 - kept and raised in the test's thread
            if not self._stopping.is_set():
                self.error = exc

    def _handle(self, event: dict) -> None:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        action, cid = event.get("Action", ""), event.get("id")
        if attributes.get(MARKER_LABEL) == self._marker:
            if action == "destroy":
                self._marker_seen.set()
            return
        if attributes.get(self.key) != self.value:
            return
        self.events.append(event)
        if action == "create":
            self.existing.add(cid)
        elif action == "destroy":
            self.existing.discard(cid)
            self.running.discard(cid)
        elif action == "start":
            self.running.add(cid)
        elif action == "die":
            self.running.discard(cid)
        self._update()
