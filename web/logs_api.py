"""Followed logs: one container's (``GET /api/containers/<ref>/logs?follow=true``, served
from containers_api) and a deployment's, every instance on every node merged and new
instances followed as they appear (``GET /api/deployments/<name>/logs``).

Server-Sent Events by default: ``event: stdout`` or ``stderr`` with ``{"line", "time"?,
"instance"?, "node"?}``; ``event: dropped`` when lines went before they were read;
``event: end`` (``{"reason", "exit_code"}``) when a container's follow ends; in a
deployment's stream ``event: instance`` when one is followed or ends. ``Accept:
text/plain`` gives the raw lines (``<instance> | <line>`` for a deployment).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Optional

import redis
from flask_openapi3 import APIBlueprint, Tag
from pydantic import Field

from core import streams
from core.eventfeed import matches
from core.streams import FollowAsk
from db import containers, events
from web import dispatch, lookups, sse
from web.context import settings
from web.deploy_schemas import DeploymentPath
from web.errors import ApiError, unavailable
from web.event_hub import hub
from web.log_relay import Follow, Relay
from web.schemas import BEARER, ErrorOut, Strict

tag = Tag(name="logs", description="Followed logs of containers and deployments")
bp = APIBlueprint("logs", __name__, url_prefix="/api/deployments", abp_tags=[tag],
                  abp_security=BEARER,
                  abp_responses={404: ErrorOut, 422: ErrorOut, 503: ErrorOut})
FOLLOWED_STATES = ("running", "created", "starting", "paused", "stopped", "error")


class DeploymentLogsQuery(Strict):
    follow: bool = Field(False, description="keep following (new instances too)")
    tail: Optional[int] = Field(None, ge=0, le=100000,
                                description="lines of each instance there now")
    since: Optional[int] = Field(None, ge=0, description="unix seconds")
    timestamps: bool = False


def emitter(plain: bool, timestamps: bool, merged: bool):
    """How one follow's item is written out."""
    def emit(follow: Follow, item: dict) -> Iterator[str]:
        instance = follow.ask.instance if merged else None
        kind = item["kind"]
        if kind == "line":
            if plain:
                yield streams.plain_line(item["line"], item["time"], timestamps, instance)
                return
            data = {"line": item["line"]}
            if timestamps:
                data["time"] = item["time"]
            if merged:
                data.update(instance=instance, node=follow.node)
            yield streams.sse(data, event=item["stream"])
        elif kind == "dropped" and not plain:
            yield streams.sse({"lines": item["lines"], "instance": instance}, event="dropped")
        elif kind == "end" and merged:
            if plain:
                yield f"{instance} | -- {item['reason']}\n"
            else:
                yield streams.sse({"instance": instance, "node": follow.node,
                                   "state": "ended", "reason": item["reason"],
                                   "exit_code": item["exit_code"]}, event="instance")
        elif kind == "end" and not plain:
            yield streams.sse({"reason": item["reason"], "exit_code": item["exit_code"]},
                              event="end")
    return emit


def ask_of(row: dict, tail: int | None, since: int | None, follow: bool = True) -> FollowAsk:
    return FollowAsk(container=row["name"], docker_id=row["docker_id"], tail=tail,
                     since=float(since) if since is not None else None,
                     instance=row["name"], follow=follow)


def pump(relay: Relay, plain: bool, heartbeat: float, more=None) -> Iterator[str]:
    """Everything the relay reads until it is done, a comment when it is quiet; ``more``
    is called between reads (a deployment's new instances)."""
    quiet_since = time.monotonic()
    if not plain:
        yield streams.sse_comment("following")
    while not relay.done():
        wrote = False
        for text in relay.read():
            wrote = True
            yield text
        if more is not None:
            for text in more():
                wrote = True
                yield text
        if wrote:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat:
            quiet_since = time.monotonic()
            if not plain:
                yield streams.sse_comment("heartbeat")


def streamed(relay: Relay, release, plain: bool, heartbeat: float, more=None):
    """The response around a relay: its leases go and its slot is freed however it ends."""
    def body():
        try:
            yield from pump(relay, plain, heartbeat, more)
        except redis.RedisError as exc:
            if not plain:
                yield streams.sse({"reason": f"redis is unavailable: {exc}",
                                   "exit_code": None}, event="end")
        finally:
            try:
                relay.close()
            except redis.RedisError:
                pass   # the leases lapse by themselves
    return sse.respond(body(), release, plain)


def start_relay(keep_open: bool, emit) -> tuple[Relay, object]:
    """A stream slot and a relay; 503 when the slots are taken or Redis is down."""
    release = sse.claim()
    relay = Relay(sse.redis_client(), settings(), sse.client_gone_check(), emit, keep_open)
    return relay, release


def follow_container(row: dict, tail: int | None, since: int | None,
                     timestamps: bool):
    """One container's log, followed until the client leaves or the container stops."""
    dispatch.require_docker(row["node"])
    if not row["docker_id"]:
        raise ApiError(409, f"container {row['name']!r} is not created yet")
    plain = sse.wants_plain()
    relay, release = start_relay(False, emitter(plain, timestamps, merged=False))
    try:
        relay.add(row["node"], ask_of(row, tail, since))
    except redis.RedisError as exc:
        release()
        raise unavailable("redis", str(exc)) from None
    return streamed(relay, release, plain, settings().stream_heartbeat)


@bp.get("/<name>/logs", responses={200: sse.RESPONSE, 404: ErrorOut})
def deployment_logs(path: DeploymentPath, query: DeploymentLogsQuery):
    """Every instance's log on every node, merged, each line with its instance; with
    ``follow``, new instances (replacements, scale-out, rollouts) are followed as they
    appear, until the client leaves."""
    lookups.deployment_or_404(path.name)
    plain = sse.wants_plain()
    if query.follow and not hub.wait_ready(10):
        raise unavailable("postgres", "the event listener is not connected")
    position = hub.position()
    rows = [r for r in containers.find(deployment=path.name, role="active", limit=10000)
            if r["docker_id"] and r["state"] in FOLLOWED_STATES]
    relay, release = start_relay(query.follow, emitter(plain, query.timestamps, merged=True))
    try:
        for row in rows:
            relay.add(row["node"], ask_of(row, query.tail, query.since, query.follow))
    except redis.RedisError as exc:
        release()
        raise unavailable("redis", str(exc)) from None
    more = NewInstances(path.name, relay, position, plain).more if query.follow else None
    return streamed(relay, release, plain, settings().stream_heartbeat, more)


class NewInstances:
    """A deployment's instances created after its stream began, from the event feed."""

    def __init__(self, deployment: str, relay: Relay, position: int, plain: bool):
        self.deployment, self.relay, self.plain = deployment, relay, plain
        self.position, self.generation = position, -1
        self.followed = {f.ask.container for f in relay.follows}

    def more(self) -> Iterator[str]:
        rows, self.generation = hub.read(self.position, self.generation, 0)
        if rows is None:   # further back than the feed holds: from the table, once
            rows, self.generation = events.after_cursor(self.position), -1
        for event in rows:
            self.position = event["cursor"]
            if matches(event, self.deployment, "deployment_deleted", None):
                self.relay.keep_open = False
                for follow in self.relay.active():
                    follow.ended = True
                yield from self.say("the deployment was deleted")
            elif matches(event, self.deployment, "instance_created", None):
                yield from self.follow(event["container"])

    def follow(self, name: str) -> Iterator[str]:
        row = containers.by_name(name)
        if row is None or name in self.followed or not row["docker_id"]:
            return
        self.followed.add(name)
        follow = self.relay.add(row["node"], ask_of(row, None, None))
        if not self.plain:
            yield streams.sse({"instance": name, "node": follow.node, "state": "following"},
                              event="instance")

    def say(self, reason: str) -> Iterator[str]:
        if self.plain:
            yield f"-- {reason}\n"
        else:
            yield streams.sse({"reason": reason, "exit_code": None}, event="end")
