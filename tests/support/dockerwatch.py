"""Follow Docker's event stream during a test: polling misses spikes, events do not."""
from __future__ import annotations

import threading
import time

import docker


class DockerWatch:
    """Counts a label's containers (existing, running) after every event, keeping maxima
    and minima over the whole watch."""

    def __init__(self, label: str):
        self.label = label
        self.client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
        self.existing: set[str] = set()
        self.running: set[str] = set()
        self.max_existing = self.max_running = 0
        self.min_running = None
        self.events: list[dict] = []
        self._since = time.time()
        self._stop = threading.Event()
        self._stream = None
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self):
        # the plain list: docker-py's containers.list inspects each one, and raises when one
        # is removed in between
        for entry in self.client.api.containers(all=True, filters={"label": self.label}):
            self.existing.add(entry["Id"])
            if entry["State"] == "running":
                self.running.add(entry["Id"])
        self._update()
        self._stream = self.client.api.events(since=self._since, decode=True,
                                              filters={"type": "container",
                                                       "label": self.label})
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        time.sleep(0.5)  # let the last events arrive
        self._stop.set()
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing a finished stream may fail; nothing to do
            pass

    def _update(self):
        self.max_existing = max(self.max_existing, len(self.existing))
        self.max_running = max(self.max_running, len(self.running))
        if self.min_running is None or len(self.running) < self.min_running:
            self.min_running = len(self.running)

    def _follow(self):
        try:
            for event in self._stream:
                if self._stop.is_set():
                    return
                self.events.append(event)
                action, cid = event.get("Action", ""), event.get("id")
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
        except Exception:  # noqa: BLE001 - the stream ends with an error when closed
            return
