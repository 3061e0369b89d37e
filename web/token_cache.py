"""Verified bearer tokens, cached briefly in each web process; a revocation evicts at once.

Authenticating against Postgres costs a round trip per request. A verified token is kept
here for ``ttl`` seconds, keyed by its secret's hash, and trusted only while this process's
listener (web.waiter's connection) is connected: db.tokens.revoke NOTIFYs the token's id
when it commits and the listener evicts it; a connection made or lost starts a new epoch
(a revocation may have been missed meanwhile), in which nothing older is fresh. An expiry
is checked at each use. A lookup that raced a revocation or a reset does not store what it
read before it (``mark`` / ``store``).

Entries of past epochs are kept for one purpose: while Postgres is unreachable, a token
verified within ``stale_if_error`` still passes (``stale``), so health and compatibility
routes answer during an outage.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime, timezone


class TokenCache:
    def __init__(self, ttl: float = 5.0, stale_if_error: float = 300.0, clock=time.monotonic):
        self.ttl = ttl
        self.stale_if_error = stale_if_error
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (token row, verified at, epoch)
        self._entries: dict[str, tuple[dict, float, int]] = {}
        self._epoch = 0      # raised when the listener connects or is lost
        self._changes = 0    # raised by every eviction and reset
        self._live = False   # revocations reach this process (the listener is connected)
        self._seen: deque[str] = deque(maxlen=256)  # ids of the latest revocations heard

    # --- reading -------------------------------------------------------------------
    def fresh(self, key: str) -> dict | None:
        """The cached row when it can be trusted without asking Postgres."""
        with self._lock:
            entry = self._entries.get(key)
            if not self._live or entry is None or entry[2] != self._epoch:
                return None
            row, at, _ = entry
        if self.ttl <= 0 or self._clock() - at > self.ttl or expired(row):
            return None
        return row

    def stale(self, key: str) -> dict | None:
        """A row verified within ``stale_if_error`` (for use while Postgres is down)."""
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[1] > self.stale_if_error or expired(entry[0]):
            return None
        return entry[0]

    # --- writing -------------------------------------------------------------------
    def mark(self) -> int:
        """Taken before asking Postgres; ``store`` refuses if anything changed since."""
        with self._lock:
            return self._changes

    def store(self, key: str, row: dict, mark: int) -> bool:
        with self._lock:
            if mark != self._changes:
                return False
            self._entries[key] = (row, self._clock(), self._epoch)
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    # --- what the listener says ----------------------------------------------------------
    def revoked(self, token_id: str) -> None:
        """A token was revoked (its id, as NOTIFYed): forget every entry of it."""
        with self._lock:
            self._changes += 1
            self._seen.append(token_id)
            for key in [k for k, (row, _, _) in self._entries.items()
                        if str(row["id"]) == token_id]:
                del self._entries[key]

    def heard(self, token_id: str) -> bool:
        """Whether this process's listener has delivered the revocation of ``token_id``."""
        with self._lock:
            return token_id in self._seen

    def reset(self, live: bool) -> None:
        """The listener connected (``live``) or was lost: a new epoch, nothing older fresh."""
        with self._lock:
            self._epoch += 1
            self._changes += 1
            self._live = live


def expired(row: dict) -> bool:
    expires = row.get("expires_at")
    return expires is not None and expires <= datetime.now(timezone.utc)


cache = TokenCache()
