"""Log follows, run by the agent of the container's node (never in a Dramatiq thread: a
follow lasts as long as its reader, and a worker thread held for minutes starves lifecycle
work).

Web pushes a follow's id on this node's request list and keeps its lease (core.streams).
For each follow a thread reads Docker's log stream (``docker logs -f --timestamps``) into
the follow's Redis Stream, bounded by MAXLEN: a start entry, one entry per line (stdout or
stderr, Docker's timestamp, a running number), and an end entry saying why when Docker
closes the stream (the container stopped). Once a second every lease is checked: a follow
whose lease lapsed (the client left) has its Docker stream closed and its lines dropped.
An agent that starts takes up the leases of its node already there, after their last line.
"""
from __future__ import annotations

import logging
import threading

import redis

import config
from core import streams
from core.streams import FollowAsk, LineSplitter
from workers import docker_ops
from workers.docker_ops import DockerError

log = logging.getLogger("harbormaster.follow")


class Follower(threading.Thread):
    """One follow: Docker's log stream of one container into one Redis Stream."""

    def __init__(self, follow_id: str, ask: FollowAsk, r: redis.Redis, cfg: config.Config,
                 first_number: int = 0):
        super().__init__(name=f"follow-{follow_id[:8]}", daemon=True)
        self.follow_id, self.ask, self.redis, self.cfg = follow_id, ask, r, cfg
        self.key = streams.lines_key(follow_id)
        self.number = first_number
        self.closing = threading.Event()
        self.stream = None
        self.ttl = max(30, int(cfg.follow_lease * 3))   # lines outlive a lapsed reader briefly

    def run(self) -> None:
        try:
            self.stream = docker_ops.follow_logs(self.ask.docker_id, self.ask.tail,
                                                 self.ask.since, follow=self.ask.follow)
        except DockerError as exc:
            self.end(f"docker: {exc}", None)
            return
        try:
            if self.closing.is_set():
                return
            self.write([{"k": streams.KIND_START}])
            self.copy()
            if not self.closing.is_set():
                self.end(*self.why_it_ended())
        except (redis.RedisError, OSError) as exc:
            if not self.closing.is_set():
                log.warning("follow of %s stopped: %s", self.ask.container, exc)
        finally:
            docker_ops.close_events(self.stream)

    def copy(self) -> None:
        splitter = LineSplitter()
        for stream, chunk in self.stream:
            self.add(splitter.feed(stream, chunk))
        self.add(splitter.flush())

    def add(self, lines: list) -> None:
        entries = []
        for line in lines:
            self.number += 1
            entries.append(streams.line_fields(line, self.number))
        if entries:
            self.write(entries)

    def write(self, entries: list[dict]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for fields in entries:
            pipe.xadd(self.key, fields, maxlen=self.cfg.follow_maxlen, approximate=True)
        pipe.expire(self.key, self.ttl)
        pipe.execute()

    def why_it_ended(self) -> tuple[str, int | None]:
        if not self.ask.follow:
            return "the end of the log", None
        try:
            found = docker_ops.find(self.ask.docker_id)
        except DockerError as exc:
            return f"docker: {exc}", None
        return streams.end_reason((found or {}).get("State") if found else None)

    def end(self, reason: str, exit_code: int | None) -> None:
        fields = {"k": streams.KIND_END, "r": reason}
        if exit_code is not None:
            fields["c"] = exit_code
        try:
            self.write([fields])
        except redis.RedisError as exc:
            log.warning("end of the follow of %s not written: %s", self.ask.container, exc)

    def close(self) -> None:
        """From another thread: the reader left; close Docker's stream (its connection)."""
        self.closing.set()
        if self.stream is not None:
            docker_ops.close_events(self.stream)


class Follows:
    """Every follow of this node's agent."""

    def __init__(self, cfg: config.Config, stop: threading.Event):
        self.cfg, self.stop = cfg, stop
        self.redis = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=2,
                                          socket_timeout=10, health_check_interval=30)
        self.running: dict[str, Follower] = {}

    def loop(self) -> None:
        taken_up = False
        while not self.stop.is_set():
            try:
                if not taken_up:
                    self.take_up()
                    taken_up = True
                popped = self.redis.brpop([streams.requests_key(self.cfg.node_name)], timeout=1)
                if popped:
                    self.begin(popped[1].decode())
                self.check_leases()
            except redis.RedisError as exc:
                log.warning("log follows: redis unavailable: %s", exc)
                self.stop.wait(1.0)
        for follower in list(self.running.values()):
            follower.close()

    def begin(self, follow_id: str, resume: bool = False) -> None:
        if follow_id in self.running:
            return
        raw = self.redis.get(streams.lease_key(self.cfg.node_name, follow_id))
        if raw is None:
            return   # the reader left before we came to it
        ask, first = FollowAsk.decode(raw), 0
        if resume:
            ask, first = self.resumed(follow_id, ask)
            if ask is None:
                return
        follower = Follower(follow_id, ask, self.redis, self.cfg, first)
        self.running[follow_id] = follower
        follower.start()

    def resumed(self, follow_id: str, ask: FollowAsk) -> tuple[FollowAsk | None, int]:
        """A follow an earlier agent of this node served: after its last line (None: it
        had ended)."""
        last = self.redis.xrevrange(streams.lines_key(follow_id), count=1)
        if not last:
            return ask, 0
        item = streams.decode_fields(last[0][1])
        if item["kind"] == "end":
            return None, 0
        if item["kind"] != "line":
            return ask, 0
        since = streams.stamp_seconds(item["time"] or "")
        if since is None:
            return ask, item["number"]
        return FollowAsk(**{**ask.__dict__, "since": since + 1e-6, "tail": None}), \
            item["number"]

    def take_up(self) -> None:
        for lease in self.redis.scan_iter(match=streams.lease_pattern(self.cfg.node_name)):
            self.begin(streams.follow_id_of(lease.decode()), resume=True)

    def check_leases(self) -> None:
        """Close the followers whose reader left; forget those that ended by themselves."""
        if not self.running:
            return
        ids = list(self.running)
        pipe = self.redis.pipeline(transaction=False)
        for follow_id in ids:
            pipe.exists(streams.lease_key(self.cfg.node_name, follow_id))
        for follow_id, held in zip(ids, pipe.execute()):
            follower = self.running[follow_id]
            if not held:
                follower.close()
                self.redis.delete(streams.lines_key(follow_id))
                del self.running[follow_id]
            elif not follower.is_alive():
                del self.running[follow_id]
