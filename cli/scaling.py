"""`harbormaster scaling ...`: autoscaling policies (one per deployment) and the decisions
with their reasons. `scaling apply -f policy.yaml` creates the deployment's policy or
replaces it (PUT), the way `deploy apply` treats deployments."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from cli import output
from cli.app import Context, main, pass_ctx, ref_path
from cli.client import CliError
from cli.parse import document, since as parse_since


@main.group()
def scaling():
    """Autoscaling policies and their decisions."""


def policy_of(c: Context, deployment: str) -> dict | None:
    return next((p for p in c.client.items("/api/scaling/policies")
                 if p["deployment"] == deployment), None)


def targets(policy: dict) -> str:
    if policy.get("rules"):
        return "; ".join(f"{r['metric']} {'>' if r.get('above') is not None else '<'} "
                         f"{r.get('above', r.get('below'))} -> {r['action']}"
                         for r in policy["rules"])
    return ", ".join(f"{m.get('name') or m['type']} {m['target']:g}" for m in policy["metrics"])


@scaling.command(name="ls")
@pass_ctx
def list_policies(c: Context):
    """Policies: bounds, targets, cooldowns."""
    output.listing(c.json, c.client.items("/api/scaling/policies"),
                   ["deployment", "min", "max", "targets", "up/down cooldown", "window",
                    "enabled"],
                   lambda p: [p["deployment"], p["min_replicas"], p["max_replicas"], targets(p),
                              f"{p['scale_up_cooldown']:g}s/{p['scale_down_cooldown']:g}s",
                              f"{p['stabilization_window']:g}s", p["enabled"]])


@scaling.command()
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False),
              help="the body of POST /api/scaling/policies in YAML or JSON; - for stdin")
@pass_ctx
def apply(c: Context, path):
    """Create the deployment's policy, or replace it."""
    text = click.get_text_stream("stdin").read() if path == "-" else Path(path).read_text()
    body = document(text, path, key="deployment")
    existing = policy_of(c, body["deployment"])
    if existing is None:
        policy = c.client.request("POST", "/api/scaling/policies", json=body).json()
        verb = "created"
    else:
        policy = c.client.request("PUT", f"/api/scaling/policies/{ref_path(existing['id'])}",
                                  json=body).json()
        verb = "replaced"
    if c.json:
        return output.emit_json(policy)
    click.echo(f"policy for {policy['deployment']} {verb}: {policy['min_replicas']}.."
               f"{policy['max_replicas']} replicas, {targets(policy)}")


@scaling.command(name="rm")
@click.argument("deployment")
@pass_ctx
def remove_policy(c: Context, deployment):
    """Delete a deployment's policy (its replicas stay where they are)."""
    existing = policy_of(c, deployment)
    if existing is None:
        raise CliError(f"deployment {deployment!r} has no scaling policy")
    c.client.request("DELETE", f"/api/scaling/policies/{ref_path(existing['id'])}")
    click.echo(f"policy for {deployment} deleted")


@scaling.command()
@click.option("--deployment", default=None)
@click.option("--since", default=None,
              help="a duration back from now (10m, 1h30m), an RFC 3339 time or Unix seconds")
@click.option("-n", "--limit", type=int, default=20, show_default=True)
@pass_ctx
def decisions(c: Context, deployment, since, limit):
    """What the autoscaler decided and why, including the evaluations that kept the count."""
    if since:
        since = parse_since(since, datetime.now(timezone.utc)).isoformat()
    items = c.client.get("/api/scaling/decisions", params={
        k: v for k, v in (("deployment", deployment), ("since", since), ("limit", limit)) if v
    })["items"]
    output.listing(c.json, items, ["at", "deployment", "current", "desired", "applied", "reason"],
                   lambda d: [output.stamp(d["at"]), d["deployment"], d["current"],
                              d["desired"], d["applied"], d["reason"]])
