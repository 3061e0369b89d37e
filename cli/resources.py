"""`harbormaster deploy ...`, `services`, `endpoints` and `tokens`: the declarative side of
the CLI. `deploy apply -f web.yaml` creates the deployment or PATCHes it to the manifest."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from cli import output
from cli.client import CliError
from cli.app import (Context, followed, main, pass_ctx, ref_path, show_job_result, submit,
                     waiting as app_waiting)
from cli.parse import manifest


def changed(c: Context, name: str, job: dict, wait: bool, timeout: float | None,
            line: str) -> None:
    """Report a deployment request's job: with ``wait``, once it has ended (it ends when the
    deployment has converged to what was asked, or fails saying why it cannot), with where
    its instances run."""
    job = followed(c, job, wait, timeout, line)
    if job is None:
        return
    deployment = c.client.get(f"/api/deployments/{ref_path(name)}")
    st = deployment["status"]
    pool = (f", warm {st.get('warm', 0)}/{deployment['warm_pool']}"
            if deployment.get("warm_pool") else "")
    show_job_result(c, job, f"{line}: {st['ready']}/{st['desired']} ready{pool} "
                            f"(generation {deployment['generation']})"
                            f"{on_nodes(deployment.get('instances') or [])}")


def on_nodes(instances: list[dict]) -> str:
    """"; 2 on local, 2 on n2": where a deployment's running replicas are."""
    counts = Counter(i.get("node") for i in instances
                     if i.get("state") == "running" and i.get("role", "active") == "active")
    return "; " + ", ".join(f"{k} on {n}" for n, k in sorted(counts.items())) if counts else ""


waiting = app_waiting("the deployment has converged, or exit 1 with why it cannot (rolled "
                      "back, crash loop, paused, ...)")


@main.group()
def deploy():
    """Deployments: desired state the reconciler keeps."""


@deploy.command()
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False),
              help="a YAML or JSON manifest (the body of POST /api/deployments); - for stdin")
@waiting
@pass_ctx
def apply(c: Context, path, wait, timeout):
    """Create the deployment, or update it to the manifest (a rollout when the template
    changes; replicas, bounds and warm_pool apply at once)."""
    text = click.get_text_stream("stdin").read() if path == "-" else Path(path).read_text()
    body = manifest(text, path)
    name = body["name"]
    exists = c.client.request("GET", f"/api/deployments/{ref_path(name)}", ok=(200, 404))
    if exists.status_code == 404:
        job = c.client.request("POST", "/api/deployments", json=body).json()
        verb = "created"
    else:
        job = c.client.request("PATCH", f"/api/deployments/{ref_path(name)}",
                               json={k: v for k, v in body.items() if k != "name"}).json()
        verb = "updated"
    changed(c, name, job, wait, timeout, f"deployment {name} {verb}")


@deploy.command(name="ls")
@pass_ctx
def list_deployments(c: Context):
    """Deployments with desired / running / ready, the warm pool apart (paused members /
    its size), and their state."""
    items = c.client.items("/api/deployments")
    output.listing(c.json, items,
                   ["name", "image", "desired", "running", "ready", "warm", "state",
                    "generation"],
                   lambda d: [d["name"], d["image"], d["status"]["desired"],
                              d["status"]["running"], d["status"]["ready"],
                              f"{d['status'].get('warm', 0)}/{d.get('warm_pool', 0)}",
                              d["status"]["state"], d.get("generation")])


@deploy.command(name="get")
@click.argument("name")
@pass_ctx
def get_deployment(c: Context, name):
    """One deployment, its status and instances."""
    d = c.client.get(f"/api/deployments/{ref_path(name)}")
    if c.json:
        return output.emit_json(d)
    st = d["status"]
    output.OUT.print(f"[bold]{d['name']}[/bold]  {d['image']}  generation {d.get('generation')}"
                     f"  {st['state']}{' (' + st['reason'] + ')' if st.get('reason') else ''}")
    output.OUT.print(f"desired {st['desired']}  running {st['running']}  ready {st['ready']}"
                     f"  healthy {st['healthy']}  updated {st['updated']}"
                     f"  warm {st.get('warm', 0)}/{d.get('warm_pool', 0)} (paused, apart)")
    where = placement_line(d)
    if where:
        output.OUT.print(where, highlight=False, markup=False)
    output.table(["instance", "role", "slot", "gen", "node", "state", "health", "ports",
                  "started"],
                 [[i["name"], i.get("role"), i.get("slot"), i.get("generation"), i.get("node"),
                   i["state"],
                   i.get("health"), output.ports(i.get("ports")), output.ago(i.get("started_at"))]
                  for i in d.get("instances") or []])
    for slot in d.get("slots") or []:
        if slot.get("pending"):
            output.OUT.print(f"slot {slot['slot']} pending: {slot['pending']}",
                             style="red", highlight=False, markup=False)


def placement_line(d: dict) -> str:
    """"placement: spread, node.labels.zone==b, at most 2 per node; mode global", or "" when
    the deployment says nothing of where it runs."""
    rules = d.get("placement") or {}
    parts = [rules["strategy"]] if rules.get("strategy") else []
    parts += rules.get("constraints") or []
    if rules.get("max_per_node"):
        parts.append(f"at most {rules['max_per_node']} per node")
    line = f"placement: {', '.join(parts)}" if parts else ""
    if d.get("mode") == "global":
        line = f"{line}; mode global" if line else "mode global: one instance on every node"
    return line


@deploy.command()
@click.argument("name")
@click.argument("replicas", type=int)
@waiting
@pass_ctx
def scale(c: Context, name, replicas, wait, timeout):
    """Set the number of instances (within the deployment's min/max)."""
    job = c.client.request("POST", f"/api/deployments/{ref_path(name)}/scale",
                           json={"replicas": replicas}).json()
    changed(c, name, job, wait, timeout, f"{name} scaled to {replicas}")


def _deployment_verb(verb: str, path_suffix: str, doc: str, done: str):
    @click.argument("name")
    @waiting
    @pass_ctx
    def command(c: Context, name, wait, timeout):
        job = c.client.request("POST", f"/api/deployments/{ref_path(name)}{path_suffix}").json()
        changed(c, name, job, wait, timeout, f"{name} {done}")
    command.__doc__ = doc
    return deploy.command(name=verb)(command)


_deployment_verb("restart", "/restart", "Replace every instance, rolling.", "restarted")
_deployment_verb("rollback", "/rollback", "Go back to the previous generation.", "rolled back")
_deployment_verb("rebalance", "/rebalance", "Spread the instances evenly over the nodes they "
                 "may use again (start-first: each moved one is ready before the old goes), "
                 "as after a node joins or is activated.", "rebalanced")


@deploy.command(name="rm")
@click.argument("name")
@pass_ctx
def remove_deployment(c: Context, name):
    """Delete the deployment and every instance (gracefully)."""
    job = submit(c, "DELETE", f"/api/deployments/{ref_path(name)}")
    show_job_result(c, job, f"{name} deleted")


@deploy.command()
@click.argument("name")
@pass_ctx
def history(c: Context, name):
    """The deployment's generations (revisions)."""
    items = c.client.items(f"/api/deployments/{ref_path(name)}/history")
    output.listing(c.json, items, ["generation", "image", "cause", "by", "created"],
                   lambda r: [r["generation"], r["image"], r["cause"], r.get("who"),
                              output.ago(r.get("created_at"))])


# --- discovery ----------------------------------------------------------------------

@main.command()
@click.option("--healthy", is_flag=True, help="only UP and passing endpoints")
@pass_ctx
def services(c: Context, healthy):
    """Every registered endpoint, by service."""
    items = c.client.items("/api/services", {"healthy": "true" if healthy else None})
    items.sort(key=lambda e: (e["service"], e["address"], e["port"]))
    output.listing(c.json, items,
                   ["service", "version", "address", "internal", "status", "health", "source"],
                   lambda e: [e["service"], e["version"], f"{e['address']}:{e['port']}",
                              e.get("internal"), e["status"], e["health"], e["source"]])


@main.command()
@click.argument("service")
@click.option("--all", "show_all", is_flag=True, help="also endpoints that are not healthy")
@pass_ctx
def endpoints(c: Context, service, show_all):
    """A service's endpoints as a client would look them up (healthy ones by default);
    exits 1 saying why when there is none to give."""
    path = f"/api/services/{ref_path(service)}/endpoints"
    answer = c.client.get(path, params=None if show_all else {"healthy": "true"})
    if not answer["endpoints"]:
        # the API answers an empty list for an unknown name too (a blocking query may wait
        # for a service to appear), so tell "none registered" from "none healthy" here
        registered = answer if show_all else c.client.get(path)
        count = len(registered["endpoints"])
        if not count:
            raise CliError(f"no endpoints registered for service {service} "
                           "(`harbormaster services` lists what is registered)")
        raise CliError(f"service {service}: {count} endpoint{'s' if count > 1 else ''} "
                       "registered, none healthy (--all lists them)")
    if c.json:
        return output.emit_json(answer)
    for e in answer["endpoints"]:
        click.echo(f"{e['address']}:{e['port']}")


# --- tokens -------------------------------------------------------------------------

@main.group()
def tokens():
    """API tokens (admin only)."""


@tokens.command(name="ls")
@pass_ctx
def list_tokens(c: Context):
    """Tokens (never their secrets)."""
    items = c.client.items("/api/tokens")
    output.listing(c.json, items,
                   ["id", "name", "role", "prefix", "expires", "revoked", "last used"],
                   lambda t: [t["id"], t["name"], t["role"], t["prefix"], t.get("expires_at"),
                              t.get("revoked_at"), output.ago(t.get("last_used_at"))])


@tokens.command(name="create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["viewer", "operator", "admin"]))
@click.option("--expires-in", default=None, help="e.g. 3600, 12h, 30d")
@pass_ctx
def create_token(c: Context, name, role, expires_in):
    """Create a token; its secret is printed once, here only."""
    body = {"name": name, "role": role}
    if expires_in:
        body["expires_in"] = expires_in
    created = c.client.request("POST", "/api/tokens", json=body).json()
    if c.json:
        return output.emit_json(created)
    click.echo(created["token"])
    click.echo(f"token {created['name']} ({created['role']}) id {created['id']}: store the "
               "secret now, it is not shown again", err=True)


@tokens.command(name="revoke")
@click.argument("token_id")
@pass_ctx
def revoke_token(c: Context, token_id):
    """Revoke a token (by id, from `tokens ls`); it stops working at once."""
    revoked = c.client.request("DELETE", f"/api/tokens/{ref_path(token_id)}").json()
    if c.json:
        return output.emit_json(revoked)
    if not revoked.get("revoked_at"):
        raise CliError(f"token {token_id} was not revoked")
    click.echo(f"token {revoked['name']} revoked")
