"""The reconcile runner: observe a deployment's instances, plan, act, repeat.

Each pass runs under a per-deployment Postgres advisory lock, re-reads desired state inside
it, observes Docker by label (the database may lag), calls the pure ``reconcile.plan`` and
applies its actions, creates and starts concurrently on a bounded pool. Instance names are
deterministic (``<deployment>-<slot>-g<generation>``), so a retry after a dead worker adopts
what that worker already created.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import config
from db import (containers, deployments, events, installation, jobs, pool, registry,
                secrets)
from workers import docker_ops, labels, messages, observe
from workers.docker_ops import DockerError, NotFound, Permanent
from workers.reconcile import Action, Desired, Instance, Plan, plan
from workers.record import record

log = logging.getLogger("harbormaster.deploy")
CFG = config.load()
POOL = ThreadPoolExecutor(max_workers=max(4, CFG.reconcile_concurrency),
                          thread_name_prefix="reconcile")


def instance_name(deployment: str, slot: int, generation: int) -> str:
    return f"{deployment}-{slot}-g{generation}"


def network_name(cluster: str) -> str:
    return f"harbormaster-{cluster[:12]}"


# --- observing ------------------------------------------------------------------

def observe_instances(dep: dict, cluster: str) -> list[Instance]:
    """Docker's view of the deployment's containers, merged with what we recorded."""
    listed = docker_ops.list_containers({labels.CLUSTER: cluster,
                                         labels.DEPLOYMENT: dep["name"]})
    rows = {r["name"]: r for r in containers.find(deployment=dep["name"], limit=10000)}
    out = []
    for entry in listed:
        name = observe.list_entry_name(entry)
        lab = entry.get("Labels") or {}
        row = rows.get(name)
        state = observe.DOCKER_STATES.get(entry.get("State", ""), "error")
        if row is None or row["docker_id"] != entry["Id"] or row["state"] != state:
            row = record(name, entry["Id"]) or row
        if row is None:
            continue
        out.append(Instance(
            name=name, slot=int(lab.get(labels.SLOT, -1)),
            generation=int(lab.get(labels.GENERATION, 0)), state=state,
            started_at=row["started_at"].timestamp() if row["started_at"] else None,
            health=row["health"], exit_code=row["exit_code"], draining=row["draining"]))
    # instances the table still lists but Docker no longer has are gone
    seen = {i.name for i in out}
    for name, row in rows.items():
        if name not in seen and row["docker_id"] and row["state"] != "removed":
            gone = containers.mark_gone(name, row["docker_id"])
            if gone is not None and gone["previous"] not in ("removing",):
                events.add("destroy", container=name, deployment=dep["name"],
                           detail={"observed": "missing at reconcile"})
    return out


def desired_of(dep: dict) -> Desired:
    strategy = dep["update_strategy"]
    backoff = deployments.backoff(dep["name"])
    return Desired(
        replicas=dep["replicas"], generation=dep["generation"],
        stable_generation=dep["stable_generation"], retired=frozenset(dep["retired_slots"]),
        max_surge=strategy.get("max_surge", 1), max_unavailable=strategy.get("max_unavailable", 0),
        order=strategy.get("order", "start-first"), monitor=strategy.get("monitor", 5),
        progress_deadline=strategy.get("progress_deadline", 600),
        rollout_started_at=float(dep["rollout_started_epoch"])
        if dep["rollout_started_epoch"] is not None else None,
        has_health_check=bool(dep["template"].get("health_check")),
        backoff_until={s: float(b["next_start"]) for s, b in backoff.items()
                       if b["next_start"] is not None},
        failures={s: b["failures"] for s, b in backoff.items()},
        deleting=dep["deleting"], paused=dep["paused"], rolling_back=dep["rolling_back"])


# --- acting ---------------------------------------------------------------------

def create_instance(dep: dict, slot: int, generation: int, cluster: str, reason: str) -> str:
    name = instance_name(dep["name"], slot, generation)
    template = dep["template"]
    env = dict(template.get("env") or {})
    env.update(secrets.get(deployments.secret_owner(dep["name"])))
    lab = labels.for_container(cluster, "deployment", dep["node"], name, template["image"],
                               template.get("labels"), deployment=dep["name"], slot=slot,
                               generation=generation)
    try:
        docker_id = docker_ops.create(
            name=name, image=template["image"], command=template.get("command"), env=env,
            labels=lab, ports=template.get("ports") or {}, resources=dep["resources"] or {},
            security=template.get("security") or {}, mounts=template.get("mounts") or [],
            restart_policy="no", network=network_name(cluster),
            aliases=[template["service"]["name"]] if template.get("service") else None)
        events.add("instance_created", container=name, deployment=dep["name"],
                   detail={"slot": slot, "generation": generation, "reason": reason})
        running = False
    except docker_ops.Conflict:
        # the name exists: a dead worker (or a concurrent pass) created it; adopt it if ours
        attrs = docker_ops.inspect(name)
        if attrs["Config"]["Labels"].get(labels.CLUSTER) != cluster:
            raise docker_ops.Permanent(f"a container named {name!r} exists outside this "
                                       "installation") from None
        docker_id, running = attrs["Id"], observe.state_of(attrs) == "running"
    if not running:
        docker_ops.start(docker_id)
    record(name, docker_id)
    return name


def remove_instance(dep: dict, name: str, graceful: bool, reason: str, keep: bool = False):
    """Take out of discovery, wait the drain delay, SIGTERM, SIGKILL after the grace period,
    and remove (or keep it stopped, for a retired slot)."""
    row = containers.by_name(name)
    if row is None or not row["docker_id"]:
        return
    strategy = dep["update_strategy"]
    if graceful:
        containers.set_draining(name, True)
        registry.sync_deployment(dep["name"])  # out of discovery before the drain delay
        delay = strategy.get("drain_delay")
        delay = CFG.drain_delay if delay is None else delay
        if delay > 0:
            time.sleep(delay)
        containers.set_state(name, "stopping")
        grace = strategy.get("grace_period")
        grace = CFG.grace_period if grace is None else grace
        try:
            docker_ops.stop(row["docker_id"], timeout=int(grace))
        except NotFound:
            pass
    if keep:
        record(name, row["docker_id"])
        events.add("instance_stopped", container=name, deployment=dep["name"],
                   detail={"reason": reason})
        return
    containers.set_state(name, "removing")
    docker_ops.remove(row["docker_id"], force=True)
    containers.mark_gone(name)
    events.add("instance_removed", container=name, deployment=dep["name"],
               detail={"reason": reason, "graceful": graceful})


def apply(dep: dict, actions: list[Action], cluster: str) -> list[tuple[Action, DockerError]]:
    """Apply a pass's actions: one task per slot (its actions in order), slots in parallel.
    Returns the actions Docker refused, with why (at most one per slot: a slot stops at its
    first failure)."""
    for action in actions:
        if action.kind == "record_failure":
            row = containers.by_name(action.name)
            uptime = None
            if row and row["started_at"] and row["finished_at"]:
                uptime = (row["finished_at"] - row["started_at"]).total_seconds()
            restart = dep["restart"]
            result = deployments.record_failure(
                dep["name"], action.slot, uptime, restart.get("backoff_initial", 10),
                restart.get("backoff_max", 300), restart.get("reset_after", 600))
            events.add("backoff", container=action.name, deployment=dep["name"],
                       detail={"slot": action.slot, "failures": result["failures"],
                               "delay": round(float(result["delay"]), 3),
                               "reason": action.reason})
    by_slot: dict = {}
    for action in actions:
        if action.kind in ("create", "start", "remove", "stop"):
            by_slot.setdefault(action.slot, []).append(action)

    def run_slot(slot_actions: list[Action]):
        for action in slot_actions:
            try:
                if action.kind == "create":
                    create_instance(dep, action.slot, action.generation, cluster, action.reason)
                elif action.kind == "start":
                    row = containers.by_name(action.name)
                    docker_ops.start(row["docker_id"])
                    record(action.name, row["docker_id"])
                elif action.kind in ("remove", "stop"):
                    remove_instance(dep, action.name, action.graceful, action.reason,
                                    keep=action.kind == "stop")
            except DockerError as exc:
                log.warning("%s %s of %s failed: %s", action.kind, action.name or action.slot,
                            dep["name"], exc)
                return action, exc
        return None

    return [failure for failure in POOL.map(run_slot, by_slot.values()) if failure]


def on_rollout_failed(dep: dict, action: Action) -> str:
    """Roll back (or pause) a failed rollout; returns what was done, for the job's error."""
    events.add("rollout_failed", container=action.name, deployment=dep["name"],
               detail={"generation": dep["generation"], "reason": action.reason})
    on_failure = dep["update_strategy"].get("on_failure", "rollback")
    stable = dep["stable_generation"]
    if on_failure == "rollback" and stable is not None:
        revision = deployments.revision(dep["name"], stable)
        with pool.connection() as conn:
            row = deployments.new_generation(dep["name"], revision["template"], "auto-rollback",
                                             None, conn, rolling_back=True)
        events.add("rollback", deployment=dep["name"],
                   detail={"from_generation": dep["generation"], "to_template_of": stable,
                           "generation": row["generation"] if row else None,
                           "reason": action.reason})
        return (f"rollout of generation {dep['generation']} failed ({action.reason}): "
                f"rolling back to the template of generation {stable}")
    deployments.pause(dep["name"], f"rollout paused: {action.reason}")
    events.add("rollout_paused", deployment=dep["name"], detail={"reason": action.reason})
    return f"rollout of generation {dep['generation']} paused: {action.reason}"


# --- one pass and the loop --------------------------------------------------------

@dataclass
class Pass:
    """One pass's plan and what happened when it was applied."""
    plan: Plan
    refused: list = field(default_factory=list)   # (action, DockerError) Docker refused
    rollout_failed: str | None = None               # what the failed rollout led to

    def failure(self) -> str | None:
        """Why a job waiting on this deployment must end failed now, or None.

        A permanent refusal that leaves the desired count unmet, a failed rollout (rolled
        back or paused), a paused rollout or a crash loop: the deployment will not reach
        what was asked by itself."""
        if self.rollout_failed:
            return self.rollout_failed
        permanent = [(a, e) for a, e in self.refused if isinstance(e, Permanent)]
        if permanent:
            creates = [a for a in self.plan.work if a.kind == "create"]
            failed = [a for a, _ in permanent if a.kind == "create"]
            if failed:
                return (f"{len(creates) - len(failed)} of {len(creates)} created: "
                        f"{permanent[0][1]}")
            action, exc = permanent[0]
            return f"{action.kind} {action.name or action.slot}: {exc}"
        if self.plan.state in ("crashloop", "paused"):
            return self.plan.reason
        return None


def one_pass(name: str, cluster: str) -> Pass | None:
    dep = deployments.get(name)
    if dep is None:
        return None
    docker_ops.ensure_network(network_name(cluster), {labels.CLUSTER: cluster})
    observed = observe_instances(dep, cluster)
    now = time.time()
    result = plan(desired_of(dep), observed, now)
    failed = [a for a in result.actions if a.kind == "rollout_failed"]
    if failed:
        return Pass(result, rollout_failed=on_rollout_failed(dep, failed[0]))
    refused = apply(dep, result.work, cluster) if result.work else []
    if refused:
        result.state = "degraded"
        result.reason = "; ".join(f"{a.kind} slot {a.slot}: {e}" for a, e in refused)[:500]
    if dep["deleting"] and not observed:
        deployments.delete_row(name)
        registry.sync_deployment(name)
        events.add("deployment_deleted", deployment=name)
        return Pass(result, refused)
    registry.sync_deployment(name)
    previous = dep["state"]
    deployments.set_status(name, result.state, result.reason, result.counts)
    if result.state != previous and result.state in ("crashloop", "steady", "degraded",
                                                      "rolling-back"):
        events.add(result.state, deployment=name,
                   detail={"reason": result.reason, "generation": dep["generation"]})
    if result.state == "steady" and dep["stable_generation"] != dep["generation"]:
        deployments.mark_stable(name, dep["generation"])
        if dep["stable_generation"] is not None:
            events.add("rollout_complete", deployment=name,
                       detail={"generation": dep["generation"]})
    return Pass(result, refused)


class Busy(Exception):
    """Another reconcile holds the deployment's lock."""


def locked_pass(name: str, cluster: str, wait: bool) -> Pass | None:
    conn = pool.direct_connect(autocommit=True)
    try:
        if wait:
            conn.execute("SET lock_timeout = '120s'")
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"deploy:{name}",))
        elif not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS got",
                              (f"deploy:{name}",)).fetchone()["got"]:
            raise Busy(name)
        deployments.take_dirty(name)
        return one_pass(name, cluster)
    finally:
        conn.close()  # closing the session releases the lock


class NotConverged(Permanent):
    """A deployment job ends failed: the deployment will not reach what was asked by
    itself (the reason says what was done and why)."""


def reconcile(name: str, job_id: str | None = None, deadline: float | None = None) -> dict:
    """Passes until the deployment is steady, or (for a trigger) only long waits remain.

    A job (a user's request) waits for the lock and ends only when the deployment has
    converged (steady) or cannot by itself: then it raises NotConverged with the reason, so
    every wait on the job (the API's ?wait=, the CLI) ends with the outcome. A trigger
    without a job (agent, scheduler) that finds the lock busy marks the deployment dirty and
    returns: the holder looks again before it leaves.
    """
    cluster = installation.cluster_id()
    deadline = deadline or time.monotonic() + CFG.job_time_limit * 0.9
    while True:
        try:
            done = locked_pass(name, cluster, wait=job_id is not None)
        except Busy:
            deployments.mark_dirty(name)
            return {"deployment": name, "coalesced": True}
        if done is None:
            return {"deployment": name, "deleted": True}
        result = done.plan
        if job_id:
            counts = result.counts
            jobs.set_progress(job_id, counts["updated"], counts["desired"],
                              f"{counts['updated']}/{counts['desired']} instances ready")
            failure = done.failure()
            if failure:
                if done.rollout_failed:  # the rollback (or nothing, if paused) goes on
                    messages.send(messages.RECONCILE, messages.node_queue(CFG.node_name),
                                  (name,))
                raise NotConverged(failure)
            if result.state == "steady" and not deployments.take_dirty(name):
                break
            if time.monotonic() >= deadline:
                raise NotConverged(f"not converged in {CFG.job_time_limit * 0.9:.0f}s: "
                                   f"{result.reason}")
            # Docker refused for a passing reason (engine restarting): a second is plenty
            time.sleep(1.0 if done.refused else 0.0 if result.work else 0.3)
            continue
        if done.refused:
            break  # Docker refused something: the backstop pass retries
        short = [a for a in result.waits if a.until - time.time() < 2.0]
        if (result.work or short) and time.monotonic() < deadline:
            if not result.work:
                time.sleep(max(0.05, min(0.5, min(a.until for a in short) - time.time())))
            continue
        long_waits = [a.until for a in result.waits]
        if long_waits:
            delay_ms = int(max(0.0, min(long_waits) - time.time()) * 1000) + 50
            messages.send(messages.RECONCILE, messages.node_queue(CFG.node_name), (name,),
                          delay=delay_ms)
        if not deployments.take_dirty(name):
            break
    dep = deployments.get(name)
    if dep is None:
        return {"deployment": name, "deleted": True}
    return {"deployment": name, "desired_version": dep["desired_version"],
            "generation": dep["generation"], "replicas": dep["replicas"],
            "state": dep["state"], "reason": dep["state_reason"], "counts": dep["counts"]}
