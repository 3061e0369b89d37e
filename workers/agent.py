"""The per-node agent: Docker's event stream -> observed state, a full sync, the heartbeat.

Three loops in threads of one process:
- heartbeat: every 2 s ping Docker and write the node's row (latency or the error);
- events: follow Docker's container events for our cluster label and record each
  container's state (and an event row when the change is news);
- sync: every so often list our containers and reconcile the table with Docker, the
  backstop for events missed while Docker or the agent was down.
Run with ``python -m workers.agent``.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis

import config
from db import containers, deployments, events, installation, nodes, pool, registry
from db.pool import Unavailable
from core import health, naming as labels, observe
from workers import docker_ops, messages, probes
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

    # --- heartbeat ------------------------------------------------------------
    def heartbeat_once(self) -> None:
        try:
            latency = docker_ops.ping()
            if not self.static_info:
                info = docker_ops.info()
                self.static_info = {"version": info.get("ServerVersion"),
                                    "cpus": info.get("NCPU"), "memory_bytes": info.get("MemTotal")}
            nodes.heartbeat(self.cfg.node_name, True, latency * 1000.0, None,
                            self.static_info.get("version"), self.static_info.get("cpus"),
                            self.static_info.get("memory_bytes"), os.getpid())
        except DockerError as exc:
            nodes.heartbeat(self.cfg.node_name, False, None, str(exc)[:500], None, None, None,
                            os.getpid())

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
            return
        inspected = docker_ops.find(docker_id)
        if inspected is None:
            return  # destroyed meanwhile: the destroy event follows
        self.observe(inspected, action, attrs)
        if deployment and action in ("die", "oom", "start", "pause", "unpause"):
            registry.sync_deployment(deployment)  # discovery follows at once

    def trigger(self, deployment: str) -> None:
        try:
            messages.send(messages.CONVERGE_DEPLOYMENT, messages.node_queue(self.cfg.node_name),
                          (deployment,))
        except (redis.RedisError, OSError) as exc:
            log.warning("reconcile of %s not sent (the backstop will): %s", deployment, exc)

    def observe(self, attrs: dict, action: str, event_attrs: dict | None = None) -> None:
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

    # --- health probes ------------------------------------------------------------
    def probe_once(self, states: dict, probers: ThreadPoolExecutor) -> None:
        now = probes.now()
        due, seen = [], set()
        for dep in deployments.with_health_checks(self.cfg.node_name):
            check = dep["template"]["health_check"]
            for row in containers.find(deployment=dep["name"], state="running", role="active",
                                       limit=10000):
                if row["draining"] or not row["docker_id"]:
                    continue
                seen.add(row["docker_id"])
                state = states.setdefault(row["docker_id"], probes.ProbeState())
                if probes.due(state, check, now):
                    state.last_run = now
                    due.append((row, check, state))
        results = list(probers.map(lambda item: probes.run(item[1], item[0]), due))
        for (row, check, state), (passed, error) in zip(due, results):
            starting = probes.in_start_period(row, check, now)
            if passed:
                state.successes, state.failures, state.last_error = state.successes + 1, 0, None
            else:
                state.successes, state.last_error = 0, error
                if not starting:
                    state.failures += 1
            verdict = health.probe_transition(
                row["health"], state.successes, state.failures,
                int(check.get("healthy_threshold", 1)), int(check.get("unhealthy_threshold", 3)),
                starting)
            if verdict != row["health"]:
                changed = containers.set_health(row["name"], verdict, {
                    "failures": state.failures, "successes": state.successes,
                    "error": state.last_error})
                if changed is not None and changed["previous"] != verdict:
                    events.add("health_status", container=row["name"],
                               deployment=row["deployment"],
                               detail={"health": verdict, "previous": changed["previous"],
                                       "consecutive_failures": state.failures,
                                       "error": state.last_error})
                    registry.sync_deployment(row["deployment"])
                    self.trigger(row["deployment"])
        for key in list(states):
            if key not in seen:  # instance gone: forget its counts
                del states[key]

    def external_once(self, states: dict, probers: ThreadPoolExecutor) -> None:
        """Registered endpoints: TTLs expire; http and tcp checks (loopback only) run."""
        registry.expire_ttl()
        now = probes.now()
        due = []
        for ep in registry.probed_externals():
            state = states.setdefault(ep["id"], probes.ProbeState())
            if probes.due(state, ep["check_spec"], now):
                state.last_run = now
                due.append((ep, state))
        checks = [({**ep["check_spec"], "port": ep["port"]},
                   {"ports": {f"{ep['port']}/tcp": ep["port"]}}, ep["address"])
                  for ep, _ in due]
        results = probers.map(lambda c: probes.run(c[0], c[1], host=c[2]), checks)
        for (ep, state), (passed, _) in zip(due, results):
            state.failures = 0 if passed else state.failures + 1
            if passed:
                registry.set_health(ep["id"], "passing", "UP")
            elif state.failures >= int(ep["check_spec"].get("unhealthy_threshold", 1)):
                registry.set_health(ep["id"], "critical", "DOWN")

    def probe_loop(self) -> None:
        states: dict = {}
        externals: dict = {}
        last_external = 0.0
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe") as probers:
            while not self.stop.wait(self.cfg.probe_tick):
                try:
                    # TTLs count in seconds: registrations need no look every probe tick
                    if time.monotonic() - last_external >= 1.0:
                        last_external = time.monotonic()
                        self.external_once(externals, probers)
                    self.probe_once(states, probers)
                except (Unavailable, DockerError) as exc:
                    log.warning("probes skipped: %s", exc)

    def run(self) -> None:
        threads = [threading.Thread(target=fn, name=fn.__name__, daemon=True)
                   for fn in (self.heartbeat_loop, self.events_loop, self.sync_loop,
                              self.probe_loop)]
        for thread in threads:
            thread.start()
        self.stop.wait()
        if self.stream is not None:
            docker_ops.close_events(self.stream)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(levelname)s %(message)s")
    cfg = config.from_env()
    pool.configure(cfg)
    docker_ops.configure(cfg.docker_host, cfg.publish_host)
    messages.configure(cfg)
    while True:
        try:
            agent = Agent(cfg)
            break
        except Unavailable as exc:  # Postgres not up yet: the supervisor's start is early
            log.warning("waiting for postgres: %s", exc)
            time.sleep(1)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stop.set())
    log.info("agent for node %s, cluster %s", cfg.node_name, agent.cluster)
    agent.run()


if __name__ == "__main__":
    main()
