"""Wake ``?wait=`` requests when their job ends: one LISTEN connection per web process.

A daemon thread LISTENs on ``job_ended`` (the jobs table's trigger) and sets the event of
each waiter of that job. A waiter registers before it re-reads the job, so an end that
lands in between is never missed. If the connection drops, the thread reconnects and wakes
everyone (they re-read their job and wait again).

Other channels can ride on the same connection (``also``): each gets its payloads, and a
reset when the connection is (re)made or lost, since notifications may have been missed;
``wait_for("<channel>:<payload>", ...)`` wakes once the handler has run.
"""
from __future__ import annotations

import logging
import select
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import psycopg

from db import notify, pool

log = logging.getLogger("harbormaster.waiter")


class Waiter:
    def __init__(self, channel: str = "job_ended"):
        self.channel = channel
        self._waiters: dict[str, set[threading.Event]] = defaultdict(set)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._others: dict[str, tuple[Callable[[str], None], Callable[[bool], None]]] = {}
        self.connected = threading.Event()
        self._socket: int | None = None

    def also(self, channel: str, on_payload: Callable[[str], None],
             on_reset: Callable[[bool], None]) -> None:
        """Hand ``channel``'s payloads to ``on_payload``; ``on_reset(True)`` runs when the
        connection is made, ``on_reset(False)`` when it is lost. A new channel must come
        before the listener starts (its LISTEN is issued at connect)."""
        with self._lock:
            if self._thread is not None and channel not in self._others:
                raise RuntimeError(f"listener already started without channel {channel!r}")
            self._others[channel] = (on_payload, on_reset)

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-listener",
                                                daemon=True)
                self._thread.start()

    def _listening(self, socket: int) -> None:
        self._socket = socket
        self._reset_others(True)
        self.connected.set()
        self._wake_all()  # anything that ended while we were not listening

    def _reset_others(self, connected: bool) -> None:
        for _, on_reset in self._others.values():
            on_reset(connected)

    def _run(self) -> None:
        channels = (self.channel, *self._others)
        while True:
            try:
                for channel, payload in notify.listen(channels, self._listening):
                    if channel == self.channel:
                        self._wake(payload)
                    else:
                        self._others[channel][0](payload)
                        self._wake(f"{channel}:{payload}")  # for wait_for(channel:payload)
            except (psycopg.Error, pool.Unavailable) as exc:
                log.warning("listener lost (%s); reconnecting", exc)
            self.connected.clear()
            self._socket = None
            self._reset_others(False)
            self._wake_all()
            time.sleep(1.0)

    def pending(self) -> bool:
        """Whether a notification has reached this process's socket and is not handled yet
        (or there is no listener): what is cached may be out of date."""
        socket = self._socket
        if socket is None:
            return True
        try:
            return bool(select.select([socket], [], [], 0)[0])
        except (OSError, ValueError):
            return True

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
