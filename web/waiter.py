"""Wake ``?wait=`` requests when their job ends: one LISTEN connection per web process.

A daemon thread LISTENs on ``job_ended`` (the jobs table's trigger) and sets the event of
each waiter of that job. A waiter registers before it re-reads the job, so an end that
lands in between is never missed. If the connection drops, the thread reconnects and wakes
everyone (they re-read their job and wait again).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import psycopg

from db import notify, pool

log = logging.getLogger("harbormaster.waiter")


class Waiter:
    def __init__(self, channel: str = "job_ended"):
        self.channel = channel
        self._waiters: dict[str, set[threading.Event]] = defaultdict(set)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-listener",
                                                daemon=True)
                self._thread.start()

    def _listening(self) -> None:
        self.connected.set()
        self._wake_all()  # anything that ended while we were not listening

    def _run(self) -> None:
        while True:
            try:
                for payload in notify.listen(self.channel, self._listening):
                    self._wake(payload)
            except (psycopg.Error, pool.Unavailable) as exc:
                log.warning("listener lost (%s); reconnecting", exc)
            self.connected.clear()
            self._wake_all()
            time.sleep(1.0)

    def _wake(self, key: str) -> None:
        with self._lock:
            for event in self._waiters.get(key, ()):
                event.set()

    def _wake_all(self) -> None:
        with self._lock:
            for events in self._waiters.values():
                for event in events:
                    event.set()

    def wait_for(self, key: str, done, timeout: float):
        """Call ``done()`` until it returns a truthy value or ``timeout`` runs out.

        ``done`` is re-evaluated only when a notification (or a reconnect) arrives.
        Returns its last value.
        """
        self.start()
        event = threading.Event()
        with self._lock:
            self._waiters[key].add(event)
        try:
            deadline = time.monotonic() + timeout
            while True:
                value = done()
                remaining = deadline - time.monotonic()
                if value or remaining <= 0:
                    return value
                # without a live listener, re-check once a second rather than miss the end
                event.wait(remaining if self.connected.is_set() else min(remaining, 1.0))
                event.clear()
        finally:
            with self._lock:
                self._waiters[key].discard(event)
                if not self._waiters[key]:
                    del self._waiters[key]


waiter = Waiter()
