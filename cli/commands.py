"""`harbormaster`: the command-line client of the HTTP API (click).

Global options, the platform's status, containers, jobs and events live here; deployments,
services and tokens in cli.resources. Every command exits 0 on success and 1 with one line
on stderr otherwise; --json (anywhere on the line) prints the API's answer as it is, for
scripts.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from cli import output, streams
from cli.app import Context, main, pass_ctx, ref_path, show_job_result, submit
from cli.parse import pairs, ports, since as parse_since


@main.command()
@pass_ctx
def status(c: Context):
    """Each component's health (Postgres, Redis, workers, scheduler, agents, Docker)."""
    report = c.client.get("/api/health")
    if c.json:
        return output.emit_json(report)
    output.OUT.print(f"platform: [bold]{report['status']}[/bold]")
    output.table(["component", "status", "latency ms", "detail"],
                 [[name, comp["status"],
                   f"{comp['latency_ms']:.1f}" if comp.get("latency_ms") is not None else "",
                   comp.get("detail")]
                  for name, comp in sorted(report["components"].items())])


# --- containers -------------------------------------------------------------------

@main.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="also stopped and removed ones")
@click.option("--deployment", default=None, help="only this deployment's instances")
@pass_ctx
def ps(c: Context, show_all, deployment):
    """List containers, with the node each runs on."""
    items = c.client.items("/api/containers", {"deployment": deployment,
                                               "state": None if show_all else "running"})
    output.listing(c.json, items,
                   ["name", "image", "state", "health", "node", "deployment", "ports",
                    "started"],
                   lambda i: [i["name"], i["image"], i["state"], i.get("health"), i.get("node"),
                              i.get("deployment"), output.ports(i.get("ports")),
                              output.ago(i.get("started_at"))])


NO_INTERACTIVE = ("an interactive session (-i/-t) is not offered yet: give the command to "
                  "run, e.g. harbormaster exec web-1 -- sh -c 'ls /www'")


def refuse_option(word: str) -> None:
    """A usage error for an option click let through as a positional (run keeps unknown
    options for the container's command, so one before the image lands there)."""
    letters = set(word.lstrip("-"))
    interactive = word in ("--interactive", "--tty") or (
        not word.startswith("--") and letters & {"i", "t"} and letters <= {"i", "t", "d"})
    raise click.UsageError(NO_INTERACTIVE if interactive else f"no such option: {word}",
                           ctx=click.get_current_context())


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-d", "--detach", is_flag=True, expose_value=False,
              help="accepted as docker takes it: run always returns once the container runs")
@click.option("--name", default=None, help="container name (default: generated)")
@click.option("-p", "--publish", multiple=True, help="80, 80/udp or HOST:80 (on 127.0.0.1)")
@click.option("-e", "--env", multiple=True, help="KEY=VALUE")
@click.option("--secret-env", multiple=True, help="KEY=VALUE stored apart, never shown")
@click.option("-l", "--label", multiple=True, help="KEY=VALUE")
@click.option("--cpus", type=float, default=None)
@click.option("--memory", default=None, help="e.g. 256m, 1g")
@click.option("--restart", "restart_policy", default=None,
              type=click.Choice(["no", "on-failure", "always", "unless-stopped"]))
@click.option("-w", "--workdir", "working_dir", default=None,
              help="the directory the command runs in")
@click.option("--stop-signal", default=None, help="the signal a stop sends first (SIGTERM)")
@click.option("--pull", "pull_policy", default=None,
              type=click.Choice(["if-not-present", "always", "never"]),
              help="when the node pulls the image (default if-not-present)")
@pass_ctx
def run(c: Context, image, command, name, publish, env, secret_env, label, cpus, memory,
        restart_policy, working_dir, stop_signal, pull_policy):
    """Create and start a standalone container (not replaced when it dies)."""
    if image.startswith("-"):
        refuse_option(image)
    body = {"image": image, "env": pairs(env, "env"), "secret_env": pairs(secret_env, "env"),
            "labels": pairs(label, "label"), "ports": ports(publish)}
    if name:
        body["name"] = name
    if command:
        body["command"] = list(command)
    resources = {k: v for k, v in (("cpus", cpus), ("memory", memory)) if v is not None}
    if resources:
        body["resources"] = resources
    for key, value in (("restart_policy", restart_policy), ("working_dir", working_dir),
                       ("stop_signal", stop_signal), ("pull_policy", pull_policy)):
        if value:
            body[key] = value
    job = submit(c, "POST", "/api/containers", json=body)
    result = job.get("result") or {}
    show_job_result(c, job, f"{result.get('name')} running  {output.ports(result.get('ports'))}")


def lifecycle(verb: str, doc: str):
    """A command that POSTs /api/containers/<ref>/<verb> for each container named."""
    @click.argument("refs", nargs=-1, required=True)
    @pass_ctx
    def command(c: Context, refs):
        for ref in refs:
            job = submit(c, "POST", f"/api/containers/{ref_path(ref)}/{verb}")
            show_job_result(c, job, f"{ref}: {verb} done")
    command.__doc__ = doc
    return main.command(name=verb)(command)


for _verb, _doc in (("start", "Start containers."), ("stop", "Stop containers (SIGTERM, then "
                    "SIGKILL). A deployment's instance is replaced, as in Kubernetes."),
                    ("restart", "Restart containers."), ("kill", "Send SIGKILL."),
                    ("pause", "Pause containers."), ("unpause", "Unpause containers.")):
    lifecycle(_verb, _doc)


@main.command()
@click.argument("refs", nargs=-1, required=True)
@pass_ctx
def rm(c: Context, refs):
    """Remove containers (forcibly). A deployment's instance is replaced."""
    for ref in refs:
        job = submit(c, "DELETE", f"/api/containers/{ref_path(ref)}", params={"force": "true"})
        show_job_result(c, job, f"{ref}: rm done")


# options go before the container, as with docker exec: what follows it is the command's
# (`exec web-1 grep -i x f` passes -i to grep)
@main.command(name="exec", context_settings={"allow_interspersed_args": False})
@click.argument("ref")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-i", "--interactive", is_flag=True, help="not offered yet (a usage error)")
@click.option("-t", "--tty", is_flag=True, help="not offered yet (a usage error)")
@pass_ctx
def exec_(c: Context, ref, command, interactive, tty):
    """Run a command in a container; exits with the command's exit code."""
    if interactive or tty:
        raise click.UsageError(NO_INTERACTIVE, ctx=click.get_current_context())
    if command[0] == "--":  # `exec web-1 -- cmd`: the separator is not part of the command
        command = command[1:]
    if not command:
        raise click.UsageError("give the command to run after the container",
                               ctx=click.get_current_context())
    answer = c.client.request("POST", f"/api/containers/{ref_path(ref)}/exec",
                              json={"command": list(command)}).json()
    if answer.get("status") in ("queued", "running"):  # the read outlived the server's wait
        answer = c.client.follow(answer, quiet=True)["result"]
    if c.json:
        return output.emit_json(answer)
    sys.stdout.write(answer.get("output", ""))
    sys.exit(answer.get("exit_code") or 0)


# --- jobs and events --------------------------------------------------------------

@main.command()
@click.option("--status", default=None,
              type=click.Choice(["queued", "running", "succeeded", "failed", "cancelled"]))
@click.option("--kind", default=None)
@click.option("-n", "--limit", type=int, default=20, show_default=True)
@pass_ctx
def jobs(c: Context, status, kind, limit):
    """Recent jobs, newest first."""
    items = c.client.items("/api/jobs", {"status": status, "kind": kind, "limit": limit}, limit)
    output.listing(c.json, items, ["id", "kind", "target", "status", "progress", "by", "created"],
                   lambda j: [j["id"][:8], j["kind"], j.get("target"), j["status"],
                              (j.get("progress") or {}).get("message"), j.get("requested_by"),
                              output.ago(j.get("created_at"))])


@main.command()
@click.argument("job_id")
@click.option("--wait", "wait", is_flag=True, help="follow it to its end")
@pass_ctx
def job(c: Context, job_id, wait):
    """One job (id from a 202 answer or `harbormaster jobs`)."""
    found = c.client.get(f"/api/jobs/{ref_path(job_id)}", ok=(200, 202))
    if wait:
        found = c.client.follow(found, quiet=c.json)
    output.emit_json(found)


@main.command()
@click.option("--deployment", default=None)
@click.option("--container", default=None)
@click.option("--kind", default=None, help="e.g. die, backoff, high_cpu")
@click.option("--since", default="10m", show_default=True,
              help="a duration back from now (10m, 1h30m), an RFC 3339 time or Unix seconds")
@click.option("-f", "--follow", is_flag=True, help="keep printing new events (Ctrl-C stops)")
@pass_ctx
def events(c: Context, deployment, container, kind, since, follow):
    """What happened: lifecycle, self-healing, alerts, scaling (oldest first)."""
    since = parse_since(since, datetime.now(timezone.utc)).isoformat()
    params = {k: v for k, v in (("deployment", deployment), ("container", container),
                                ("kind", kind), ("since", since)) if v}
    def show(event: dict) -> None:
        if c.json:
            print(json.dumps(event, default=str), flush=True)
        else:
            where = event.get("container") or event.get("deployment") or ""
            output.OUT.print(f"{output.stamp(event['at'])}  {event['kind']:<18} {where}  "
                             f"{output.detail(event.get('detail'))}", highlight=False,
                             markup=False)

    cursor = None
    while True:
        page = c.client.get("/api/events", params={**params, "limit": 500,
                                                   **({"cursor": cursor} if cursor else {})})
        for event in page["items"]:
            show(event)
            cursor = str(event["cursor"])  # pages and the stream go on after this cursor
        if not page.get("next"):
            # nothing matched: the stream goes on from the newest cursor the page saw
            cursor = cursor or page.get("newest")
            break
    if follow:   # then live, from the event stream (cli.streams), after the last shown
        params.pop("since", None)
        streams.follow_events(c, params, cursor, show)
