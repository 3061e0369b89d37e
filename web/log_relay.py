"""Relaying followed logs: web asks the agent of each container's node for a follow through
Redis, keeps its lease while the client stays, and relays the lines the agent writes into
the follow's Redis Stream as Server-Sent Events (or raw lines).

One relay reads any number of follows (one container; every instance of a deployment) with
one blocking XREAD. It holds no database connection: what it follows was read before it
started, and a deployment's new instances come from this process's event feed
(``web.event_hub``), each looked up once.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import redis

import config
from core import streams
from core.streams import FollowAsk

BLOCK_MS = 1000     # the longest a read waits: the client's leaving is checked this often


class Follow:
    """One follow this relay asked for."""

    def __init__(self, node: str, ask: FollowAsk):
        self.id = uuid.uuid4().hex
        self.node, self.ask = node, ask
        self.key = streams.lines_key(self.id)
        self.lease = streams.lease_key(node, self.id)
        self.position = "0-0"
        self.lines = 0           # the number of the last line read (gaps: lines dropped)
        self.started = False     # the agent took it
        self.ended = False
        self.asked_at = time.monotonic()


class Relay:
    """Follows read together until the client leaves (or, for one container, it ends)."""

    def __init__(self, r: redis.Redis, cfg: config.Config, gone: Callable[[], bool],
                 emit: Callable[[Follow, dict], Iterator[str]], keep_open: bool):
        self.redis, self.cfg, self.gone, self.emit = r, cfg, gone, emit
        self.keep_open = keep_open        # a deployment's stream outlives its instances
        self.follows: list[Follow] = []
        self.lease_ms = int(cfg.follow_lease * 1000)
        self.renewed = time.monotonic()

    def add(self, node: str, ask: FollowAsk) -> Follow:
        """Ask the agent of ``node`` to follow ``ask``; its lines come with the others'."""
        follow = Follow(node, ask)
        pipe = self.redis.pipeline()
        pipe.set(follow.lease, ask.encode(), px=self.lease_ms)
        pipe.lpush(streams.requests_key(node), follow.id)
        pipe.execute()
        self.follows.append(follow)
        return follow

    def active(self) -> list[Follow]:
        return [f for f in self.follows if not f.ended]

    def renew(self) -> None:
        """Every lease, a third of a lease after the last renewal."""
        if time.monotonic() - self.renewed < self.cfg.follow_lease / 3:
            return
        self.renewed = time.monotonic()
        pipe = self.redis.pipeline()
        for follow in self.active():
            pipe.pexpire(follow.lease, self.lease_ms)
        pipe.execute()

    def read(self) -> Iterator[str]:
        """One blocking read of every active follow: what it gives, as text to send."""
        self.renew()
        active = self.active()
        if not active:
            time.sleep(BLOCK_MS / 1000)
            return
        answer = self.redis.xread({f.key: f.position for f in active}, count=500,
                                  block=BLOCK_MS) or []
        by_key = {f.key: f for f in active}
        for key, entries in answer:
            follow = by_key[key.decode() if isinstance(key, bytes) else key]
            for entry_id, fields in entries:
                follow.position = entry_id
                yield from self.entry(follow, streams.decode_fields(fields))
        yield from self.unanswered()

    def entry(self, follow: Follow, item: dict) -> Iterator[str]:
        if item["kind"] == "start":
            follow.started = True
        elif item["kind"] == "line":
            if item["number"] > follow.lines + 1:
                yield from self.emit(follow, {"kind": "dropped",
                                              "lines": item["number"] - follow.lines - 1})
            follow.lines = item["number"]
        elif item["kind"] == "end":
            follow.ended = True
        if item["kind"] != "start":
            yield from self.emit(follow, item)

    def unanswered(self) -> Iterator[str]:
        """A follow no agent took within two leases ends, saying so."""
        for follow in self.active():
            if not follow.started and \
                    time.monotonic() - follow.asked_at > 2 * self.cfg.follow_lease:
                follow.ended = True
                yield from self.emit(follow, {
                    "kind": "end", "exit_code": None,
                    "reason": f"the agent of node {follow.node} did not take the follow"})

    def done(self) -> bool:
        return self.gone() or (not self.keep_open and not self.active())

    def close(self) -> None:
        """The client left (or everything ended): the leases go at once, so the agents
        close Docker's streams without waiting for them to lapse."""
        if self.follows:
            self.redis.delete(*[f.lease for f in self.follows])
