"""The autoscaling loop's body (sent by the scheduler): gather each enabled policy's inputs,
call the pure decide(), record the decision, and scale when it says so."""
from __future__ import annotations

import time

import config
from db import deployments, events, pool, scaling
from core import autoscale
from workers import messages


def trigger_over_target(cfg: config.Config, observed: dict[str, tuple]) -> list[str]:
    """After a sweep: ask at once for the evaluation of each deployment whose instances it
    measured over its policy's target (``observed``: name -> (cpu %, memory %) averaged over
    the instances it sampled). Returns the deployments asked for."""
    asked = []
    for row in scaling.find(enabled_only=True):
        figures = observed.get(row["deployment"])
        if figures is None:
            continue
        dep = deployments.get(row["deployment"])
        if dep is None or dep["deleting"]:
            continue
        obs = autoscale.Observations(cpu=figures[0], memory=figures[1])
        why = autoscale.wants_more(autoscale.Policy.of(row, dep, cfg.max_replicas),
                                   dep["replicas"], obs)
        if why is not None:
            messages.send_or_leave(messages.EVALUATE_AUTOSCALING, messages.DEFAULT_QUEUE,
                                   (dep["name"], f"sweep: {why}"))
            asked.append(dep["name"])
    return asked


def evaluate_all(cfg: config.Config, only: str | None = None,
                 trigger: str = "tick") -> list[dict]:
    """Every enabled policy (``only``: one deployment's), each decision recorded with what
    asked for it (``trigger``: the tick, or why a sweep or a metric report did)."""
    out = []
    for row in scaling.find(enabled_only=True):
        if only is not None and row["deployment"] != only:
            continue
        dep = deployments.get(row["deployment"])
        if dep is None or dep["deleting"]:
            continue
        fresh = max(2 * cfg.sample_interval, 2 * cfg.autoscale_interval)
        util = scaling.utilisation(dep["name"], fresh)
        obs = autoscale.Observations(
            cpu=float(util["cpu"]) if util["cpu"] is not None else None,
            memory=float(util["memory"]) if util["memory"] is not None else None,
            custom=scaling.custom_metrics(dep["name"]),
            stale_after=2 * cfg.autoscale_interval)
        now = time.time()
        decision = autoscale.decide(
            autoscale.Policy.of(row, dep, cfg.max_replicas), dep["replicas"], obs,
            scaling.recent_recommendations(dep["name"], row["stabilization_window"]), now,
            row["last_scale_up_at"].timestamp() if row["last_scale_up_at"] else None,
            row["last_scale_down_at"].timestamp() if row["last_scale_down_at"] else None)
        scaling.record_decision(dep["name"], decision.current, decision.desired,
                                decision.recommendation, decision.applied, decision.reason,
                                {**decision.inputs, "trigger": trigger})
        if decision.applied:
            with pool.connection() as conn:
                scaled = deployments.set_replicas(dep["name"], decision.desired, conn)
                events.add("autoscale", deployment=dep["name"], conn=conn, who="autoscaler",
                           detail={"from": decision.current, "to": decision.desired,
                                   "reason": decision.reason,
                                   "desired_version": scaled["desired_version"] if scaled
                                   else None})
            scaling.mark_scaled(dep["name"], up=decision.desired > decision.current)
            messages.send(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE, (dep["name"],))
        out.append({"deployment": dep["name"], "current": decision.current,
                    "desired": decision.desired, "reason": decision.reason})
    return out
