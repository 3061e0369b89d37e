"""The newest events for this web process's event streams: one LISTEN connection, one read.

A daemon thread LISTENs on ``events`` (the events trigger notifies once per committing
transaction) and, on each notification, reads the events after the last cursor it holds
(``core.eventfeed.Feed``), then wakes every stream. However many streams are open, an event
costs one query per web process, and while nothing happens no query runs at all: streams
never poll the table. Streams that resume from further back than the feed holds read those
events from the table themselves, once.
"""
from __future__ import annotations

import logging
import threading
import time

import psycopg

from core.eventfeed import Feed
from db import events, notify, pool

log = logging.getLogger("harbormaster.events")
READ_PAGE = 500


class Hub:
    def __init__(self, channel: str = "events", capacity: int = 2000):
        self.channel = channel
        self.capacity = capacity
        self.changed = threading.Condition()
        self.feed: Feed | None = None      # None until the first LISTEN is in place
        self.generation = 0                # bumped at each change (streams wait for it)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-listener",
                                                daemon=True)
                self._thread.start()

    def _listening(self, _socket: int) -> None:
        if self.feed is None:
            # everything committed before the LISTEN is the table's; what follows, ours
            with self.changed:
                self.feed = Feed(events.newest_cursor(), self.capacity)
                self.generation += 1
                self.changed.notify_all()
        self._read()  # anything committed while we were not listening

    def _read(self) -> None:
        while True:
            rows = events.after_cursor(self.feed.last, READ_PAGE)
            if rows:
                with self.changed:
                    self.feed.extend(rows)
                    self.generation += 1
                    self.changed.notify_all()
            if len(rows) < READ_PAGE:
                return

    def _run(self) -> None:
        while True:
            try:
                for _ in notify.listen((self.channel,), self._listening):
                    self._read()
            except (psycopg.Error, pool.Unavailable) as exc:
                log.warning("event listener lost (%s); reconnecting", exc)
            time.sleep(1.0)

    def wait_ready(self, timeout: float) -> bool:
        """Until the LISTEN is in place (a stream that starts before would miss events)."""
        self.start()
        with self.changed:
            return self.changed.wait_for(lambda: self.feed is not None, timeout)

    def position(self) -> int:
        """The newest cursor this process has read (a stream that starts now reads after
        it)."""
        with self.changed:
            return self.feed.last if self.feed is not None else 0

    def read(self, position: int, seen_generation: int, timeout: float
             ) -> tuple[list[dict] | None, int]:
        """The events after ``position`` this process holds, waiting up to ``timeout`` for
        a change after ``seen_generation``; None when some are older than the feed holds
        (read them from the table). Returns them with the generation they were read at."""
        with self.changed:
            self.changed.wait_for(lambda: self.generation != seen_generation, timeout)
            rows = self.feed.after(position) if self.feed is not None else []
            return rows, self.generation


hub = Hub()
