"""Converging one deployment: the planner. It runs on the default queue, from what is
recorded (the agents' and executors' observed state of every node) and each slot's node
(workers.placing); it plans (core.plan) and sends each node's Docker work to that node's
queue as a job (workers.executor runs it there), then waits for those jobs.

Each pass runs under the deployment's Postgres advisory lock (db.locks). A user's request
(a job) waits until the deployment has converged or cannot by itself; a trigger (agent,
scheduler, backoff timer) does what is due now and schedules itself for what is due later.
Work for a node that is not ready is not sent: its slots are placed elsewhere, and a
message to a node that is gone never holds the rest of the deployment.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import config
from core.plan import plan
from core.plan_types import Action, Desired, Instance, Plan
from db import deployments, events, jobs, locks, pool, registry, slots
from workers import instances, messages, placing, prepare
from workers.node_jobs import outcome, submit_node_job, wait_for_node_job
from workers.docker_ops import Permanent, Transient



def desired_of(dep: dict, placed: placing.Placed) -> Desired:
    strategy = dep["update_strategy"]
    backoff = slots.backoff(dep["name"])
    is_global = (dep["template"].get("mode") or "replicated") == "global"
    return Desired(
        # placed.slots holds the warm pool's slots too (core.pool): the replicas are the
        # deployment's count, a global deployment's one per node
        replicas=len(placed.slots) if is_global else dep["replicas"],
        generation=dep["generation"], warm_pool=0 if is_global else dep["warm_pool"],
        stable_generation=dep["stable_generation"], retired=frozenset(dep["retired_slots"]),
        max_surge=strategy.get("max_surge", 1), max_unavailable=strategy.get("max_unavailable", 0),
        order=strategy.get("order", "start-first"), monitor=strategy.get("monitor", 5),
        progress_deadline=strategy.get("progress_deadline", 600),
        rollout_started_at=float(dep["rollout_started_epoch"])
        if dep["rollout_started_epoch"] is not None else None,
        has_health_check=bool(dep["template"].get("health_check")),
        backoff_until={s: float(b["next_start"]) for s, b in backoff.items()},
        failures={s: b["failures"] for s, b in backoff.items()},
        deleting=dep["deleting"], paused=dep["paused"], rolling_back=dep["rolling_back"],
        assignment=placed.assignment, pending=placed.pending,
        slots=tuple(placed.slots) if is_global else None, resources=dep["resources"] or {})


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
        if self.plan.state in ("crashloop", "paused", "pending"):
            return self.plan.reason
        return None


def one_pass(name: str, cfg: config.Config, background: bool = True) -> Pass | None:
    """One pass; the warm pool's upkeep is sent only in a ``background`` one (a trigger's):
    a job's passes wait for the replicas alone."""
    dep = deployments.get(name)
    if dep is None:
        return None
    fleet = placing.fleet(cfg)
    placed = placing.place_slots(dep, fleet, cfg) if not dep["deleting"] \
        else placing.Placed([])
    if len(placed.slots) != dep["replicas"] and dep["template"].get("mode") == "global":
        deployments.set_global_replicas(name, len(placed.slots))
    observed = on_ready_nodes(dep, instances.observed(dep, placed.slots, cfg), placed, fleet)
    desired, now = desired_of(dep, placed), time.time()
    result = plan(desired, observed, now)
    instances.record_ready(dep, desired, observed, now, cfg)   # startup phases (issue 16)
    failed = [a for a in result.actions if a.kind == "rollout_failed"]
    if failed:
        return Pass(result, rollout_failed=on_rollout_failed(dep, failed[0]))
    work = result.work + (result.pool_work if background else [])
    creates = [a for a in work if a.kind == "create"]
    image_problem = prepare_images(dep, creates, placed, fleet, cfg) if creates else None
    if image_problem:
        return image_refused(dep, result, creates, image_problem)
    refused = dispatch(dep, work, fleet, cfg) if work else []
    if refused:
        result.state = "degraded"
        result.reason = "; ".join(f"{a.kind} slot {a.slot}: {e}" for a, e in refused)[:500]
    if dep["deleting"] and not observed:
        deployments.delete_row(name)
        registry.sync_deployment(name)
        events.add("deployment_deleted", deployment=name)
        return Pass(result, refused)
    registry.sync_deployment(name)
    record_status(dep, result)
    return Pass(result, refused)


def prepare_images(dep: dict, creates: list[Action], placed: placing.Placed,
                   fleet: placing.Fleet, cfg: config.Config) -> str | None:
    """Each generation's image pulled where it will run and pinned, before any create of it
    is sent; returns why not."""
    for generation in prepare.unresolved(dep, creates):
        of_generation = [a for a in creates if a.generation == generation]
        problem = prepare.resolve(dep, generation,
                                  prepare.nodes_for(of_generation, placed, fleet), fleet, cfg,
                                  wait_for_node_job)
        if problem:
            return problem
    return None


def image_refused(dep: dict, result: Plan, creates: list[Action], reason: str) -> Pass:
    """A rollout pauses with the reason (nothing running touched, the stable generation
    kept); a deployment with nothing to roll back to is degraded and tries again."""
    if dep["stable_generation"] not in (None, dep["generation"]) and not dep["rolling_back"]:
        return Pass(result, rollout_failed=prepare.refuse_rollout(dep, reason))
    result.state, result.reason = "degraded", reason[:500]
    record_status(dep, result)
    return Pass(result, refused=[(a, Permanent(reason)) for a in creates])


def on_ready_nodes(dep: dict, observed: list[Instance], placed: placing.Placed,
                   fleet: placing.Fleet) -> list[Instance]:
    """What the planner plans over: nobody knows what an instance on a node declared down
    does; once its slot is placed on another node (or the deployment goes) it is stale,
    removed by its node's worker when the node comes back. (A node only late with its
    heartbeat keeps its instances as last seen: nothing moves before it is declared down.)"""
    out = []
    for inst in observed:
        if fleet.holds(inst.node) or inst.state == "removed":
            out.append(inst)
        elif inst.role in ("active", "warm") and (dep["deleting"]
                                        or placed.assignment.get(inst.slot) != inst.node):
            instances.mark_stale(dep, inst)
    return out


def dispatch(dep: dict, actions: list[Action], fleet: placing.Fleet,
             cfg: config.Config) -> list[tuple[Action, Exception]]:
    """Failures are counted here; every other action goes to its node's executor as a job
    (ready nodes only). Returns what was refused, with why."""
    for action in actions:
        if action.kind == "record_failure":
            instances.record_failure(dep, action)
    by_node: dict = {}
    for action in actions:
        if action.kind in ("create", "start", "update", "remove", "stop", "keep", "wake",
                           "to_pool", "pause"):
            by_node.setdefault(action.node, []).append(action)
    refused, sent = [], []
    for node, node_actions in by_node.items():
        if not fleet.ready(node):
            refused += [(a, Transient(f"node {node} is not ready")) for a in node_actions]
            continue
        sent.append((submit_node_job(dep, node, fleet.rows[node]["epoch"], node_actions),
                     node, node_actions))
    for job, node, node_actions in sent:
        refused += outcome(wait_for_node_job(job, node), node_actions)
    return refused


def record_status(dep: dict, result: Plan) -> None:
    name = dep["name"]
    if result.state == "paused" and (dep["state_reason"] or "").startswith("rollout paused:"):
        result.reason = dep["state_reason"]   # why it paused, not only that it did
    deployments.set_status(name, result.state, result.reason, result.counts)
    if result.state != dep["state"] and result.state in ("crashloop", "steady", "degraded",
                                                         "rolling-back"):
        events.add(result.state, deployment=name,
                   detail={"reason": result.reason, "generation": dep["generation"]})
    if result.state == "steady" and dep["stable_generation"] != dep["generation"]:
        deployments.mark_stable(name, dep["generation"])
        if dep["stable_generation"] is not None:
            events.add("rollout_complete", deployment=name,
                       detail={"generation": dep["generation"]})


def locked_pass(name: str, wait: bool, cfg: config.Config) -> Pass | None:
    with locks.deployment(name, wait):
        deployments.take_dirty(name)
        return one_pass(name, cfg, background=not wait)


class NotConverged(Permanent):
    """A deployment job ends failed: the deployment will not reach what was asked by
    itself (the reason says what was done and why)."""


def rollout_failure(name: str, generation: int) -> str | None:
    """Why the rollout of ``generation`` failed, if it did: a job that asked for it fails
    even when the failure was seen by another pass (a trigger's) and the rollback it started
    has converged since."""
    revision = deployments.revision(name, generation)
    if revision is None:
        return None
    # since the revision was made: a deployment deleted and made again by the same name
    # has events of its earlier life
    since = revision["created_at"]
    failed = [e for e in events.find(deployment=name, kind="rollout_failed", since=since)
              if e["detail"].get("generation") == generation]
    if not failed:
        return None
    said = f"rollout of generation {generation} failed ({failed[-1]['detail'].get('reason')})"
    for event in events.find(deployment=name, kind="rollback", since=since):
        if event["detail"].get("from_generation") == generation:
            return (f"{said}: rolling back to the template of generation "
                    f"{event['detail'].get('to_template_of')}")
    return f"{said}: paused"


def converge(name: str, cfg: config.Config, job_id: str | None = None) -> dict:
    """Passes until the deployment is steady, or (for a trigger) only long waits remain.

    A job (a user's request) waits for the lock and ends only when the deployment has
    converged (steady) or cannot by itself: then it raises NotConverged with the reason, so
    every wait on the job (the API's ?wait=, the CLI) ends with the outcome. A trigger
    without a job (agent, scheduler) that finds the lock busy marks the deployment dirty and
    returns: the holder looks again before it leaves.
    """
    deadline = time.monotonic() + cfg.job_time_limit * 0.9
    while True:
        try:
            done = locked_pass(name, job_id is not None, cfg)
        except locks.Busy:
            deployments.mark_dirty(name)
            return {"deployment": name, "coalesced": True}
        if done is None:
            return {"deployment": name, "deleted": True}
        if job_id:
            if job_pass_ends(name, done, job_id, deadline, cfg):
                break
            continue
        if not trigger_pass_continues(name, done, deadline, cfg):
            break
    return summary(name)


def job_pass_ends(name: str, done: Pass, job_id: str, deadline: float,
                  cfg: config.Config) -> bool:
    """After a pass for a job: True when converged; raises NotConverged when it cannot."""
    result = done.plan
    counts = result.counts
    jobs.set_progress(job_id, counts["updated"], counts["desired"],
                      f"{counts['updated']}/{counts['desired']} instances ready")
    failure = done.failure()
    if failure:
        if done.rollout_failed:  # the rollback (or nothing, if paused) goes on by itself
            trigger(name, cfg)
        raise NotConverged(failure)
    if result.state == "steady" and not deployments.take_dirty(name):
        if result.pool:   # the warm pool is refilled in the background, after the job
            trigger(name, cfg)
        return True
    if time.monotonic() >= deadline:
        raise NotConverged(f"not converged in {cfg.job_time_limit * 0.9:.0f}s: {result.reason}")
    # Docker refused for a passing reason (engine restarting): a second is plenty
    time.sleep(1.0 if done.refused else 0.0 if result.work else 0.3)
    return False


def trigger_pass_continues(name: str, done: Pass, deadline: float, cfg: config.Config) -> bool:
    """After a pass without a job: whether to make another one now."""
    result = done.plan
    if done.refused:
        return False  # Docker refused something: the backstop pass retries
    work = result.work + result.pool_work
    waits = result.waits + [a for a in result.pool if a.kind == "wait"]
    short = [a for a in waits if a.until - time.time() < 2.0]
    if (work or short) and time.monotonic() < deadline:
        if not work:
            time.sleep(max(0.05, min(0.5, min(a.until for a in short) - time.time())))
        return True
    long_waits = [a.until for a in waits]
    if long_waits:
        trigger(name, cfg, delay_ms=int(max(0.0, min(long_waits) - time.time()) * 1000) + 50)
    return deployments.take_dirty(name)


def trigger(name: str, cfg: config.Config, delay_ms: int | None = None) -> None:
    messages.send(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE, (name,), delay=delay_ms)


def summary(name: str) -> dict:
    dep = deployments.get(name)
    if dep is None:
        return {"deployment": name, "deleted": True}
    return {"deployment": name, "desired_version": dep["desired_version"],
            "generation": dep["generation"], "replicas": dep["replicas"],
            "state": dep["state"], "reason": dep["state_reason"], "counts": dep["counts"]}
