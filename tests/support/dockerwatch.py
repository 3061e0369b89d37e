"""Follow Docker's event streams during a test: polling misses spikes, events do not.

One watch follows every engine it is given (each node's), counting across all of them. It
fails its test when a stream dies (the error is raised in the test's thread when the watch
stops), and it stops only after a marker of its own has come through each stream (a tiny
container created and removed on that engine): every event before the markers has then
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
    """An event stream died or a marker never came through."""


class Stream:
    """One engine's event stream, followed in a thread of its own."""

    def __init__(self, node: str, client: docker.DockerClient, watch: "DockerWatch"):
        self.node, self.client, self.watch = node, client, watch
        self.marker = uuid.uuid4().hex
        self.marker_seen = threading.Event()
        self.error: BaseException | None = None
        self.stream = None
        self.thread = threading.Thread(target=self.follow, daemon=True,
                                       name=f"dockerwatch-{node}-{watch.label}")

    def listed(self) -> list[dict]:
        # the plain list: docker-py's containers.list inspects each one, and raises when one
        # is removed in between
        return self.client.api.containers(all=True, filters={"label": self.watch.label})

    def start(self, since: float) -> None:
        # every container event: the marker does not carry the watched label (it must not
        # be counted); the label is matched here instead
        self.stream = self.client.api.events(since=since, decode=True,
                                             filters={"type": "container"})
        self.thread.start()

    def send_marker(self) -> None:
        created = self.client.api.create_container(MARKER_IMAGE, command=["true"],
                                                   labels={MARKER_LABEL: self.marker})
        self.client.api.remove_container(created["Id"], force=True)

    def close(self) -> None:
        try:
            self.stream.close()
        except Exception:  # noqa: BLE001 - closing a broken stream may fail; nothing to do
            pass
        self.thread.join(timeout=10)

    def follow(self) -> None:
        try:
            for event in self.stream:
                attributes = (event.get("Actor") or {}).get("Attributes") or {}
                if attributes.get(MARKER_LABEL) == self.marker:
                    if event.get("Action") == "destroy":
                        self.marker_seen.set()
                        return
                    continue
                if attributes.get(self.watch.key) == self.watch.value:
                    self.watch.seen(event.get("id"), event.get("Action", ""), self.node, event)
            if not self.watch.stopping.is_set():
                self.error = EOFError(f"{self.node}'s engine ended the event stream")
        except Exception as exc:  # noqa: BLE001 - kept and raised in the test's thread
            if not self.watch.stopping.is_set():
                self.error = exc


class DockerWatch:
    """Counts a label's containers (existing, running) over every engine given, after every
    event, keeping maxima and minima over the whole watch. ``label`` is ``key=value``;
    ``engines`` is node name -> client (default: the machine's first engine)."""

    def __init__(self, label: str, engines: dict | None = None, marker_timeout: float = 60):
        self.label = label
        self.key, _, self.value = label.partition("=")
        engines = engines or {"local": docker.DockerClient(
            base_url="unix:///var/run/docker.sock")}
        self.existing: set[str] = set()
        self.running: set[str] = set()
        self.node_of: dict[str, str] = {}
        self.max_existing = self.max_running = 0
        self.min_running = None
        self.events: list[dict] = []
        self.marker_timeout = marker_timeout
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.streams = [Stream(node, client, self) for node, client in engines.items()]

    def __enter__(self):
        since = time.time()
        with self._lock:  # what exists now, counted once for every engine together
            for stream in self.streams:
                for entry in stream.listed():
                    self.existing.add(entry["Id"])
                    self.node_of[entry["Id"]] = stream.node
                    if entry["State"] == "running":
                        self.running.add(entry["Id"])
            self._count()
        for stream in self.streams:
            stream.start(since)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:  # the test failed already: stop quietly, its own error is the one to see
            self._close()

    def seen(self, cid: str, action: str, node: str, event: dict) -> None:
        with self._lock:
            self.events.append({**event, "node": node})
            if action == "create":
                self.existing.add(cid)
                self.node_of[cid] = node
            elif action == "destroy":
                self.existing.discard(cid)
                self.running.discard(cid)
            elif action == "start":
                self.running.add(cid)
            elif action == "die":
                self.running.discard(cid)
            self._count()

    def _count(self) -> None:
        self.max_existing = max(self.max_existing, len(self.existing))
        self.max_running = max(self.max_running, len(self.running))
        if self.min_running is None or len(self.running) < self.min_running:
            self.min_running = len(self.running)

    def stop(self) -> None:
        """Wait for every marker to come through its stream, stop following, and raise
        WatchFailed when a stream died on the way."""
        marker_error = None
        try:
            for stream in self.streams:
                if stream.thread.is_alive():
                    stream.send_marker()
            deadline = time.monotonic() + self.marker_timeout
            for stream in self.streams:
                while not stream.marker_seen.wait(0.1):
                    if not stream.thread.is_alive() or time.monotonic() > deadline:
                        break
        except (docker.errors.DockerException, requests.RequestException) as exc:
            marker_error = exc
        finally:
            self._close()
        for stream in self.streams:
            if stream.error is not None:
                raise WatchFailed(f"the docker event stream died ({stream.node}): "
                                  f"{stream.error!r}") from stream.error
        if marker_error is not None:
            raise WatchFailed(f"a marker container could not be made: {marker_error!r}")
        late = [s.node for s in self.streams if not s.marker_seen.is_set()]
        if late:
            raise WatchFailed(f"the marker container's events did not arrive within "
                              f"{self.marker_timeout:.0f}s on {', '.join(late)}")

    def _close(self) -> None:
        self.stopping.set()
        for stream in self.streams:
            stream.close()
