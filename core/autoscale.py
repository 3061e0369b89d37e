"""Pure autoscaling: decide(policy, replicas, observations, history, now) -> a decision
with its reason and inputs. Kubernetes' HPA is the reference for the arithmetic:

- cpu / memory: desired = ceil(current x utilisation / target), utilisation averaged over
  the ready instances; a custom metric is a total: desired = ceil(total / target);
- no change within a 10 % tolerance band; the largest recommendation wins;
- scale-up at most max(+100 %, +4) per evaluation; scale-down takes the highest
  recommendation within the stabilization window; cooldowns; clamp to min/max;
- a missing or stale metric never causes a scale-down.
Seed 004's rule form ("up when cpu > 80, down when cpu < 20") steps by one replica.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

TOLERANCE = 0.10


@dataclass(frozen=True)
class Policy:
    min_replicas: int
    max_replicas: int
    metrics: tuple = ()                 # ({"type": "cpu", "target": 60}, ...)
    rules: tuple = ()                   # ({"metric": "cpu", "above": 80, "action": ...}, ...)
    scale_up_cooldown: float = 300.0
    scale_down_cooldown: float = 600.0
    stabilization_window: float = 300.0


    @classmethod
    def of(cls, row: dict, dep: dict, cap: int) -> "Policy":
        """From a scaling_policies row and its deployment's row; unset bounds mean 0 and
        the server's cap."""
        return cls(
            min_replicas=dep["min_replicas"] if dep["min_replicas"] is not None else 0,
            max_replicas=dep["max_replicas"] if dep["max_replicas"] is not None else cap,
            metrics=tuple(row["metrics"] or ()), rules=tuple(row["rules"] or ()),
            scale_up_cooldown=row["scale_up_cooldown"],
            scale_down_cooldown=row["scale_down_cooldown"],
            stabilization_window=row["stabilization_window"])


@dataclass(frozen=True)
class Observations:
    cpu: float | None = None            # average % over ready instances
    memory: float | None = None
    custom: dict = field(default_factory=dict)   # name -> (total, age in seconds)
    stale_after: float = 30.0


@dataclass(frozen=True)
class Decision:
    current: int
    desired: int
    recommendation: int                 # before stabilization, cooldowns and bounds
    reason: str
    inputs: dict

    @property
    def applied(self) -> bool:
        return self.desired != self.current


def _value(obs: Observations, metric: dict) -> tuple[float | None, str | None]:
    """(value, why it is missing)."""
    kind = metric.get("type", metric.get("metric"))
    if kind in ("cpu", "memory"):
        value = getattr(obs, kind)
        return value, None if value is not None else f"no {kind} samples"
    name = metric.get("name", kind)
    if name not in obs.custom:
        return None, f"{name} not reported"
    value, age = obs.custom[name]
    if age > obs.stale_after:
        return None, f"{name} is stale ({age:.0f}s old)"
    return value, None


def _per_metric(policy: Policy, current: int, obs: Observations) -> tuple[list, list]:
    """[(recommendation, explanation)], [missing explanations]."""
    recs, missing = [], []
    for metric in policy.metrics:
        value, why = _value(obs, metric)
        label = metric.get("name", metric["type"]) if metric["type"] == "custom" else metric["type"]
        if value is None:
            missing.append(why)
            continue
        target = float(metric["target"])
        if metric["type"] == "custom":
            desired = math.ceil(value / target) if value > 0 else 0
            ratio = value / (target * max(current, 1))
            text = f"{label} {value:g} vs target {target:g}/instance -> ceil({value:g}/{target:g}) = {desired}"
        else:
            ratio = value / target
            desired = math.ceil(current * ratio)
            text = (f"{label} {value:.0f}% vs target {target:g}% -> ceil({current} x "
                    f"{value:.0f}/{target:g}) = {desired}")
        if abs(ratio - 1.0) <= TOLERANCE and current > 0:
            desired, text = current, f"{text}, within the 10% band: keep {current}"
        recs.append((desired, text))
    fired, seen = [], []
    for rule in policy.rules:
        value, why = _value(obs, rule)
        if value is None:
            missing.append(why)
            continue
        seen.append(f"{rule['metric']} {value:.0f}")
        if "above" in rule and value > rule["above"] and rule.get("action") == "scale_up":
            fired.append((current + 1, f"{rule['metric']} {value:.0f} > {rule['above']}: +1"))
        elif "below" in rule and value < rule["below"] and rule.get("action") == "scale_down":
            fired.append((current - 1, f"{rule['metric']} {value:.0f} < {rule['below']}: -1"))
    if fired:
        recs += fired
    elif seen:
        recs.append((current, f"{', '.join(seen)}: no rule fired, keep {current}"))
    return recs, missing


def wants_more(policy: Policy, current: int, obs: Observations) -> str | None:
    """Why an evaluation now would recommend more replicas (by the same arithmetic and the
    same 10 % band as decide), or None. A sweep that measured this, or a custom metric
    report that says it, asks for the deployment's evaluation at once; decide then applies
    the stabilization window, the cooldowns and the bounds as at any tick."""
    if current >= policy.max_replicas:
        return None
    recs, _ = _per_metric(policy, current, obs)
    up = [rec for rec in recs if rec[0] > current]
    return max(up, key=lambda rec: rec[0])[1] if up else None


def decide(policy: Policy, current: int, obs: Observations,
           history: list[tuple[float, int]], now: float,
           last_scale_up: float | None = None, last_scale_down: float | None = None) -> Decision:
    """``history``: (time, recommendation) of earlier evaluations, for the window."""
    inputs = {"current": current, "cpu": obs.cpu, "memory": obs.memory,
              "custom": {k: v[0] for k, v in obs.custom.items()},
              "min": policy.min_replicas, "max": policy.max_replicas}
    recs, missing = _per_metric(policy, current, obs)
    inputs["missing"] = missing
    if not recs:
        target = min(max(current, policy.min_replicas), policy.max_replicas)
        why = "; ".join(missing) or "no metrics"
        return Decision(current, target, current, f"{why}: keep {current}" if target == current
                        else f"{why}; clamped to {target}", inputs)
    recommendation, text = max(recs, key=lambda r: r[0])
    reasons = [text]
    desired = recommendation
    if missing and desired < current:
        desired = current
        reasons.append(f"no scale-down while {'; '.join(missing)}")
    if desired > current:
        limit = max(current * 2, current + 4)
        if desired > limit:
            desired = limit
            reasons.append(f"scale-up limited to {limit} this evaluation")
        if last_scale_up is not None and now - last_scale_up < policy.scale_up_cooldown:
            reasons.append(f"scale-up cooldown ({policy.scale_up_cooldown:g}s) holds at {current}")
            desired = current
    elif desired < current:
        window = [r for t, r in history if now - t <= policy.stabilization_window]
        highest = max(window + [desired])
        if highest > desired:
            desired = min(highest, current)
            reasons.append(f"stabilization window ({policy.stabilization_window:g}s) keeps "
                           f"the highest recommendation {highest}")
        last = max(t for t in (last_scale_up, last_scale_down, -math.inf) if t is not None)
        if desired < current and now - last < policy.scale_down_cooldown:
            reasons.append(f"scale-down cooldown ({policy.scale_down_cooldown:g}s) holds at "
                           f"{current}")
            desired = current
    clamped = min(max(desired, policy.min_replicas), policy.max_replicas)
    if clamped != desired:
        reasons.append(f"clamped to {policy.min_replicas}..{policy.max_replicas}")
        desired = clamped
    if desired == current and "keep" not in reasons[-1] and len(reasons) == 1:
        reasons.append(f"keep {current}")
    return Decision(current, desired, recommendation, "; ".join(reasons), inputs)
