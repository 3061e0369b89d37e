"""`harbormaster node ...`: the Docker hosts instances are placed on. List them with what is
reserved of each, show one with its containers, edit its labels as kubectl does (KEY=VALUE
sets, KEY- removes), pause, drain (a job, followed to its end) or activate it, and remove a
node that is down with nothing left."""
from __future__ import annotations

import click
from rich.text import Text

from cli import output
from cli.app import Context, followed, main, pass_ctx, ref_path, show_job_result, waiting
from cli.parse import duration, label_edits

STATUS_STYLE = {"ready": "green", "returning": "yellow", "down": "bold red"}
AVAILABILITY_STYLE = {"active": "", "pause": "yellow", "drain": "yellow"}


@main.group()
def node():
    """Nodes: the Docker hosts (each with its own worker and agent)."""


def status_cell(n: dict) -> Text:
    """The node's status, a down one in red and with how long it has been down (the word
    itself marks it where there is no colour)."""
    word = n["status"]
    if word == "down" and n.get("down_since"):
        word = f"down ({output.ago(n['down_since']).removesuffix(' ago')})"
    return Text(word, style=STATUS_STYLE.get(n["status"], ""))


def docker_cell(n: dict) -> Text:
    docker = n.get("docker") or {}
    if docker.get("ok"):
        return Text(docker.get("version") or "")
    return Text(f"unusable: {docker.get('error') or 'no report'}", style="red")


def used_of(reserved, capacity, shown=lambda v: f"{v:g}") -> str:
    """"0.5/2": what placement counts as reserved of what the node offers."""
    return f"{shown(reserved or 0)}/{shown(capacity or 0)}"


def labels_text(labels: dict | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


@node.command(name="ls")
@pass_ctx
def list_nodes(c: Context):
    """Every node: status, availability, CPU and memory reserved of capacity, instances,
    heartbeat age, Docker version."""
    output.listing(
        c.json, c.client.items("/api/nodes"),
        ["name", "status", "availability", "cpus", "memory", "instances", "heartbeat",
         "docker", "labels"],
        lambda n: [n["name"], status_cell(n),
                   Text(n["availability"], style=AVAILABILITY_STYLE.get(n["availability"], "")),
                   used_of(n["reserved"]["cpus"], n["capacity"]["cpus"]),
                   used_of(n["reserved"]["memory"], n["capacity"]["memory"], output.size),
                   n["instances"], output.age(n.get("heartbeat_age")), docker_cell(n),
                   labels_text(n.get("labels"))])


@node.command(name="get")
@click.argument("name")
@pass_ctx
def get_node(c: Context, name):
    """One node: its status, labels, capacity, and the containers on it."""
    n = c.client.get(f"/api/nodes/{ref_path(name)}")
    if c.json:
        return output.emit_json(n)
    head = Text.assemble((n["name"], "bold"), "  ", status_cell(n), f"  {n['availability']}",
                         f"  address {n['address']}  epoch {n['epoch']}")
    output.OUT.print(head)
    output.OUT.print(Text.assemble(f"heartbeat {output.age(n.get('heartbeat_age'))}  docker ",
                                   docker_cell(n)))
    overrides = n.get("label_overrides") or {}
    output.OUT.print(f"labels {labels_text(n.get('labels')) or '-'}"
                     + (f"  (set here: {', '.join(sorted(overrides))})" if overrides else ""),
                     highlight=False, markup=False)
    cap, res, free = n["capacity"], n["reserved"], n["free"]
    output.OUT.print(f"cpus {used_of(res['cpus'], cap['cpus'])} reserved, {free['cpus']:g} "
                     f"free  memory {used_of(res['memory'], cap['memory'], output.size)} "
                     f"reserved, {output.size(free['memory'])} free  instances "
                     f"{n['instances']}", highlight=False, markup=False)
    output.table(["container", "deployment", "slot", "role", "state", "health", "ports",
                  "started"],
                 [[i["name"], i.get("deployment"), i.get("slot"), i.get("role"), i["state"],
                   i.get("health"), output.ports(i.get("ports")), output.ago(i.get("started_at"))]
                  for i in n.get("containers") or []])


@node.command()
@click.argument("name")
@click.argument("labels", nargs=-1, required=True)
@pass_ctx
def label(c: Context, name, labels):
    """Set labels (KEY=VALUE) and remove them (KEY-), as kubectl label does; placement
    constraints read them (node.labels.KEY==VALUE)."""
    edits = label_edits(labels)
    n = c.client.request("PATCH", f"/api/nodes/{ref_path(name)}",
                         json={"labels": edits}).json()
    if c.json:
        return output.emit_json(n)
    click.echo(f"{n['name']} labels: {labels_text(n.get('labels')) or '-'}")
    kept = sorted(k for k, v in edits.items() if v is None and k in (n.get("labels") or {}))
    if kept:
        # removing takes away what was set here; the agent's own labels come back each beat
        click.echo(f"{', '.join(kept)}: reported by the node's agent (HARBORMASTER_NODE_LABELS),"
                   " not removable here", err=True)


def availability(verb: str, doc: str, done: str):
    """A command that POSTs /api/nodes/<name>/<verb> and shows the availability it left."""
    @click.argument("name")
    @pass_ctx
    def command(c: Context, name):
        n = c.client.request("POST", f"/api/nodes/{ref_path(name)}/{verb}").json()
        if c.json:
            return output.emit_json(n)
        click.echo(f"{n['name']} {done} (availability {n['availability']})")
    command.__doc__ = doc
    return node.command(name=verb)(command)


availability("pause", "Place no new instances on the node; the ones there stay.", "paused")
availability("activate", "Place new instances on the node again (`deploy rebalance` spreads "
             "a deployment onto it).", "active")


@node.command()
@click.argument("name")
@click.option("--deadline", default=None,
              help="after this long (90s, 10m, 1h) what is left is stopped [server: 10m]")
@waiting("every instance has moved off and the drained containers have exited, or exit 1 "
         "with the job's error")
@pass_ctx
def drain(c: Context, name, deadline, wait, timeout):
    """Move every instance off the node, start-first (each replacement is ready on another
    node before its old one stops); the node takes no new ones until `node activate`."""
    params = {"deadline": duration(deadline, "deadline")} if deadline else None
    job = c.client.request("POST", f"/api/nodes/{ref_path(name)}/drain", params=params).json()
    job = followed(c, job, wait, timeout, f"{name} draining")
    if job is None:
        return
    result = job.get("result") or {}
    late = result.get("stopped_past_deadline") or []
    show_job_result(c, job, f"{name} drained" + (
        f"; stopped at the deadline: {', '.join(late)}" if late else ""))


@node.command(name="rm")
@click.argument("name")
@pass_ctx
def remove_node(c: Context, name):
    """Forget a node that is down and has nothing left on it."""
    n = c.client.request("DELETE", f"/api/nodes/{ref_path(name)}").json()
    if c.json:
        return output.emit_json(n)
    click.echo(f"node {n['name']} removed")
