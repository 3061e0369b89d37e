"""The per-node agent: Docker's event stream -> observed state, a full sync, the heartbeat.

Loops in threads of one process (one agent per node: a second one claiming the same
node name finds the claim held in Postgres and does not start):
- heartbeat: every 2 s ping Docker and write the node's row (latency or the error);
- events: follow Docker's container events for our cluster label and record each
  container's state (and an event row when the change is news);
- sync: every so often list our containers and reconcile the table with Docker, the
  backstop for events missed while Docker or the agent was down;
- probes (workers.prober) and log follows (workers.logfollow: Docker's log streams of
  this node's containers into Redis, while web's readers hold their leases).
Run with ``python -m workers.agent``.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

import config
from db import containers, events, images, installation, locks, nodes, pool, registry
from db.pool import Unavailable
from core import naming as labels, observe
from workers import docker_ops, messages, usage_recorder
from workers.logfollow import Follows
from workers.prober import Prober
from workers.docker_ops import DockerError

log = logging.getLogger("harbormaster.agent")
LIFECYCLE = {"create", "start", "die", "oom", "kill", "stop", "destroy", "pause", "unpause",
             "restart"}


class Agent:
    def __init__(self, cfg: config.Config):
        self.cfg = cfg
        self.stop = threading.Event()
        self.cluster = installation.cluster_id()
        self.static_info: dict = {}
        self.stream = None
        self.image_stream = None
        self.meter = usage_recorder.Recorder(cfg.node_name, self.stop)

    # --- heartbeat ------------------------------------------------------------
    def heartbeat_once(self) -> None:
        """The node's registration and beat: Docker's health and what `docker info` says,
        its labels and the address its published ports answer on."""
        labels, address = dict(self.cfg.node_labels), self.cfg.node_address
        try:
            latency = docker_ops.ping()
            if not self.static_info:
                info = docker_ops.info()
                self.static_info = {"version": info.get("ServerVersion"),
                                    "cpus": info.get("NCPU"), "memory_bytes": info.get("MemTotal")}
            nodes.heartbeat(self.cfg.node_name, True, latency * 1000.0, None, self.static_info,
                            address, labels, os.getpid(), docker_ops.volume_names())
        except DockerError as exc:
            nodes.heartbeat(self.cfg.node_name, False, None, str(exc)[:500], {}, address,
                            labels, os.getpid())

    def heartbeat_loop(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.heartbeat_once()
            except Unavailable as exc:
                log.warning("heartbeat not written: %s", exc)
            self.stop.wait(max(0.0, self.cfg.heartbeat_interval - (time.monotonic() - started)))

    # --- events ---------------------------------------------------------------
    def handle_event(self, event: dict) -> None:
        action = (event.get("Action") or event.get("status") or "").split(":")[0]
        if action not in LIFECYCLE:
            return
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        name, docker_id = attrs.get("name"), event.get("id")
        if not name or attrs.get(labels.NODE, self.cfg.node_name) != self.cfg.node_name:
            return
        at = usage_recorder.event_time(event)
        if action in usage_recorder.FINAL_READS:
            # first: its cgroup goes with its process (metering's last counters)
            self.meter.final_read(docker_id, action, at)
        deployment = attrs.get(labels.DEPLOYMENT)
        if deployment and action in ("die", "oom", "destroy", "stop", "kill"):
            # level-triggered: only "look at deployment X"; the reconciler decides
            self.trigger(deployment)
        if action == "destroy":
            gone = containers.mark_gone(name, docker_id)
            # news only when nobody of ours was removing it (the actor records its own)
            if gone is not None and gone["previous"] != "removing":
                events.add("destroy", container=name, deployment=gone["deployment"],
                           detail={"docker_id": docker_id, "observed": "docker event"})
            self.meter.gone(docker_id, at)  # usage metering: a run whose end was missed
            return
        inspected = docker_ops.find(docker_id)
        if inspected is None:
            return  # destroyed meanwhile: the destroy event follows
        self.observe(inspected, action, attrs, at)
        if deployment and action in ("die", "oom", "start", "pause", "unpause"):
            registry.sync_deployment(deployment)  # discovery follows at once

    def images_loop(self) -> None:
        """The engine's images as GET /api/images shows them, recorded again on each of its
        image events (a pull, a tag, a removal made by anyone: docker's CLI too)."""
        while not self.stop.is_set():
            try:
                self.image_stream = docker_ops.image_events(since=time.time())
                self.record_images()
                for _ in self.image_stream:
                    self.record_images()
            except (DockerError, Unavailable, OSError) as exc:
                log.warning("image events interrupted: %s", exc)
            except Exception:  # noqa: BLE001 - a broken stream raises many kinds; keep following
                log.exception("image event stream failed")
            self.stop.wait(1.0)

    def record_images(self) -> None:
        images.replace_engine_images(self.cfg.node_name, docker_ops.list_images())

    def trigger(self, deployment: str) -> None:
        """Level-triggered: only "look at deployment X" (its planner decides)."""
        messages.send_or_leave(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE,
                               (deployment,))

    def observe(self, attrs: dict, action: str, event_attrs: dict | None = None,
                at=None) -> None:
        f = observe.fields(attrs)
        row, previous = containers.observe(f)
        if observe.event_is_news(previous, f["state"], action):
            detail = {"docker_id": f["docker_id"], "state": f["state"]}
            if action == "die":
                code = (event_attrs or {}).get("exitCode")
                detail["exit_code"] = int(code) if code is not None else f["exit_code"]
            events.add(action if action in LIFECYCLE else f["state"], container=f["name"],
                       deployment=row["deployment"] if row else None, detail=detail)
            if action == "die" and previous == "running":
                # nobody of ours was stopping it (seed 003's "unexpected stop" alert)
                events.add("unexpected_stop", container=f["name"],
                           deployment=row["deployment"] if row else None, detail=detail)
        self.meter.observed(f, action, at)  # usage metering, after what the platform records

    def events_loop(self) -> None:
        since = time.time()
        while not self.stop.is_set():
            try:
                self.stream = docker_ops.events({labels.CLUSTER: self.cluster}, since=since)
                # events since the last one seen, then live; resync what may have been missed
                self.sync_once()
                for event in self.stream:
                    since = event.get("time", since)
                    try:
                        self.handle_event(event)
                    except (DockerError, Unavailable) as exc:
                        log.warning("event %s not recorded: %s", event.get("Action"), exc)
            except (DockerError, Unavailable, OSError) as exc:
                log.warning("event stream interrupted: %s", exc)
            except Exception:  # noqa: BLE001 - a broken stream raises many kinds; keep following
                log.exception("event stream failed")
            self.stop.wait(1.0)

    # --- full sync ------------------------------------------------------------
    def sync_once(self) -> None:
        self.record_images()   # also on each image event (images_loop)
        listed = docker_ops.list_containers({labels.CLUSTER: self.cluster,
                                             labels.NODE: self.cfg.node_name})
        seen = set()
        for entry in listed:
            attrs = docker_ops.find(entry["Id"])
            if attrs is None:
                continue
            seen.add(observe.list_entry_name(entry))
            self.observe(attrs, "sync")
        for row in containers.live_on_node(self.cfg.node_name):
            if row["name"] not in seen and row["docker_id"]:
                gone = containers.mark_gone(row["name"], row["docker_id"])
                if gone is not None:
                    events.add("destroy", container=row["name"], deployment=row["deployment"],
                               detail={"docker_id": row["docker_id"], "observed": "full sync"})

    def sync_loop(self) -> None:
        while not self.stop.wait(self.cfg.agent_full_sync_interval):
            try:
                self.sync_once()
            except (DockerError, Unavailable) as exc:
                log.warning("full sync skipped: %s", exc)

    def run(self) -> None:
        prober = Prober(self.cfg, self.stop, self.trigger)
        follows = Follows(self.cfg, self.stop)   # log follows web asks for (issue 16)
        threads = [threading.Thread(target=fn, name=fn.__name__, daemon=True)
                   for fn in (self.heartbeat_loop, self.events_loop, self.images_loop,
                              self.sync_loop, prober.loop, self.meter.loop, follows.loop)]
        for thread in threads:
            thread.start()
        self.stop.wait()
        for stream in (self.stream, self.image_stream):
            if stream is not None:
                docker_ops.close_events(stream)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(levelname)s %(message)s")
    cfg = config.from_env()
    pool.configure(cfg)
    docker_ops.configure(cfg.docker_host, cfg.publish_host)
    messages.configure(cfg)
    while True:
        try:
            claim = locks.agent_session(cfg.node_name)
            agent = Agent(cfg)
            break
        except Unavailable as exc:  # Postgres not up yet: the supervisor's start is early
            log.warning("waiting for postgres: %s", exc)
            time.sleep(1)
    if claim is None:
        log.error("another live agent claims node %r: this one does not start (give each "
                  "node its own HARBORMASTER_NODE)", cfg.node_name)
        sys.exit(2)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stop.set())
    log.info("agent for node %s, cluster %s", cfg.node_name, agent.cluster)
    agent.run()


if __name__ == "__main__":
    main()
