"""The autoscaling loop's body (sent by the scheduler): gather each enabled policy's inputs,
call the pure decide(), record the decision, and scale when it says so."""
from __future__ import annotations

import time

import config
from db import deployments, events, pool, scaling
from core import autoscale
from workers import messages


def policy_of(row: dict, dep: dict, cap: int) -> autoscale.Policy:
    """The pure policy; a deployment's unset bounds mean 0 and the server's cap."""
    return autoscale.Policy(
        min_replicas=dep["min_replicas"] if dep["min_replicas"] is not None else 0,
        max_replicas=dep["max_replicas"] if dep["max_replicas"] is not None else cap,
        metrics=tuple(row["metrics"] or ()), rules=tuple(row["rules"] or ()),
        scale_up_cooldown=row["scale_up_cooldown"],
        scale_down_cooldown=row["scale_down_cooldown"],
        stabilization_window=row["stabilization_window"])


def evaluate_all(cfg: config.Config) -> list[dict]:
    out = []
    for row in scaling.find(enabled_only=True):
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
            policy_of(row, dep, cfg.max_replicas), dep["replicas"], obs,
            scaling.recent_recommendations(dep["name"], row["stabilization_window"]), now,
            row["last_scale_up_at"].timestamp() if row["last_scale_up_at"] else None,
            row["last_scale_down_at"].timestamp() if row["last_scale_down_at"] else None)
        scaling.record_decision(dep["name"], decision.current, decision.desired,
                                decision.recommendation, decision.applied, decision.reason,
                                decision.inputs)
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
