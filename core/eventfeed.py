"""The event stream's cursor, the pure parts: whether a client may resume after a cursor,
and the feed of newest events one web process keeps for its streams.

Cursors follow commit order (db/migrations/0015_streams.sql gives each event its cursor as
its transaction commits, under one lock): once an event with cursor C is visible, every
event with a lower cursor is visible too. So a reader that has seen up to C only ever needs
``cursor > C``, and a feed that read every event after ``base`` holds all of them.
"""
from __future__ import annotations

import bisect
from collections import deque


def resume_problem(after: int, pruned_through: int, newest: int) -> str | None:
    """Why a client cannot resume after ``after`` (then it must resync: 410), or None.

    ``pruned_through`` is the highest cursor retention removed (0: none), ``newest`` the
    highest cursor given so far."""
    if after < 0:
        return f"cursor {after} is not a cursor"
    if after < pruned_through:
        return (f"cursor {after} is older than the retention: events up to {pruned_through}"
                " were removed; read GET /api/events again and resume from its newest")
    if after > newest:
        return f"cursor {after} was never given (the newest is {newest})"
    return None


class Feed:
    """Every event after ``base``, oldest first, at most ``capacity`` of them (the oldest
    go, and ``base`` moves up to the last one dropped). Rows are dicts with "cursor"."""

    def __init__(self, base: int, capacity: int = 2000):
        self.base = base
        self.capacity = capacity
        self.rows: deque = deque()
        self._cursors: deque = deque()

    @property
    def last(self) -> int:
        """The highest cursor read (``base`` when nothing was)."""
        return self._cursors[-1] if self._cursors else self.base

    def extend(self, rows: list[dict]) -> None:
        """Append rows read with ``cursor > last``, in cursor order."""
        for row in rows:
            if row["cursor"] <= self.last:
                raise ValueError(f"cursor {row['cursor']} is not after {self.last}")
            self.rows.append(row)
            self._cursors.append(row["cursor"])
        while len(self.rows) > self.capacity:
            self.rows.popleft()
            self.base = self._cursors.popleft()

    def after(self, position: int) -> list[dict] | None:
        """The rows after ``position``; None when some of them are older than the feed
        holds (the caller reads those from the table)."""
        if position < self.base:
            return None
        start = bisect.bisect_right(self._cursors, position)
        return [self.rows[i] for i in range(start, len(self.rows))]


def matches(row: dict, deployment: str | None, kind: str | None,
            container: str | None) -> bool:
    """An event stream's filters (each unset one matches everything)."""
    return ((deployment is None or row.get("deployment") == deployment)
            and (kind is None or row.get("kind") == kind)
            and (container is None or row.get("container") == container))
