"""web.token_cache: when a cached token may be trusted, and what evicts it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from web.token_cache import TokenCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def row(token_id: str = "t1", expires_at=None) -> dict:
    return {"id": token_id, "name": "n", "role": "operator", "rate_limit": None,
            "expires_at": expires_at}


def live_cache(ttl: float = 5.0) -> tuple[TokenCache, Clock]:
    clock = Clock()
    cache = TokenCache(ttl=ttl, clock=clock)
    cache.reset(True)  # the listener connected
    return cache, clock


def test_a_stored_token_is_fresh_for_its_ttl_only():
    cache, clock = live_cache()
    assert cache.store("k", row(), cache.mark())
    assert cache.fresh("k")["id"] == "t1"
    clock.now += 5.1
    assert cache.fresh("k") is None


def test_nothing_is_fresh_while_the_listener_is_not_connected():
    clock = Clock()
    cache = TokenCache(clock=clock)
    cache.store("k", row(), cache.mark())  # stored before the listener ever connected
    assert cache.fresh("k") is None
    cache.reset(True)
    assert cache.fresh("k") is None        # an older epoch is never fresh
    cache.store("k", row(), cache.mark())
    assert cache.fresh("k") is not None
    cache.reset(False)                     # lost: revocations may be missed from now on
    assert cache.fresh("k") is None
    cache.reset(True)
    assert cache.fresh("k") is None


def test_a_revocation_evicts_every_entry_of_that_token_only():
    cache, _ = live_cache()
    cache.store("a", row("t1"), cache.mark())
    cache.store("b", row("t2"), cache.mark())
    cache.revoked("t1")
    assert cache.fresh("a") is None and cache.stale("a") is None
    assert cache.fresh("b") is not None
    assert cache.heard("t1") and not cache.heard("t2")


def test_a_lookup_that_raced_a_revocation_does_not_store_what_it_read():
    cache, _ = live_cache()
    mark = cache.mark()                    # before asking Postgres ...
    cache.revoked("t9")                    # ... a revocation lands meanwhile
    assert not cache.store("k", row("t1"), mark)
    assert cache.fresh("k") is None
    assert cache.store("k", row("t1"), cache.mark())


def test_an_expired_token_is_neither_fresh_nor_stale():
    cache, _ = live_cache()
    soon = datetime.now(timezone.utc) - timedelta(seconds=1)
    cache.store("k", row(expires_at=soon), cache.mark())
    assert cache.fresh("k") is None and cache.stale("k") is None


def test_while_postgres_is_down_a_recent_token_still_passes_as_stale():
    cache, clock = live_cache()
    cache.store("k", row(), cache.mark())
    cache.reset(False)                     # Postgres went away with the listener
    assert cache.fresh("k") is None
    clock.now += 299
    assert cache.stale("k")["id"] == "t1"
    clock.now += 2
    assert cache.stale("k") is None


def test_a_ttl_of_zero_trusts_nothing_but_keeps_the_stale_if_error_fallback():
    cache, _ = live_cache(ttl=0)
    cache.store("k", row(), cache.mark())
    assert cache.fresh("k") is None
    assert cache.stale("k") is not None
