"""The node's probes (a thread of its agent): http / tcp / command checks of the replicas
on this node, their verdicts turned into health (core.health.probe_transition), discovery
following at once; and external registrations: the ones this node probes (named for it,
or unnamed while this node runs the scheduler's leader), TTLs expired there too.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import config
from core import health
from db import containers, deployments, events, installation, registry
from db.pool import Unavailable
from workers import probes
from workers.docker_ops import DockerError

log = logging.getLogger("harbormaster.prober")


class Prober:
    def __init__(self, cfg: config.Config, stop: threading.Event, trigger):
        self.cfg, self.stop, self.trigger = cfg, stop, trigger

    def probe_once(self, states: dict, probers: ThreadPoolExecutor) -> None:
        now = probes.now()
        due, seen = [], set()
        for row in deployments.probe_targets(self.cfg.node_name):
            check = row["health_check"]
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
        """Registered endpoints: TTLs expire; http and tcp checks (loopback only) run. Each
        is probed by one node only: the one it names, else the scheduler leader's."""
        leading = installation.leader_node() == self.cfg.node_name
        if leading:
            registry.expire_ttl()
        now = probes.now()
        due = []
        for ep in registry.probed_externals(self.cfg.node_name, leading):
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

    def loop(self) -> None:
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

