"""`harbormaster image ...` and `harbormaster registry ...`: the images each node's engine
holds (ls, pull and push with a progress bar of the bytes moved, tag, rm, prune: one job per
node, followed to its end) and the credentials of registries (login reads the password from
stdin or a hidden prompt, never from the command line)."""
from __future__ import annotations

import sys
import time
from urllib.parse import quote

import click
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn,
                           TransferSpeedColumn)

from cli import output
from cli.app import Context, main, pass_ctx, ref_path, waiting
from cli.client import TERMINAL, CliError

POLL = 0.5  # seconds between two reads of the jobs being followed


def image_path(ref: str) -> str:
    """/api/images/<ref> with the reference's slashes, colons and @ as they are (the route
    takes them, as the Engine API does)."""
    return f"/api/images/{quote(ref, safe='/:@')}"


@main.group()
def image():
    """Images on each node: list, pull and push (with progress), tag, remove, prune."""


def node_option(help_text: str):
    return click.option("--node", default=None, help=help_text)


def used_by(i: dict) -> str:
    """What uses an image: its deployments, else its standalone containers."""
    if i.get("deployments"):
        return ", ".join(i["deployments"])
    return ", ".join(i.get("containers") or [])


@image.command(name="ls")
@node_option("only this node's images")
@pass_ctx
def list_images(c: Context, node):
    """Every image of every node's engine, one row per tag as docker images shows them, with
    when this installation last used it and what uses it."""
    items = c.client.items("/api/images", {"node": node})
    if c.json:
        return output.emit_json(items)
    output.table(["node", "repository", "tag", "image id", "created", "size", "last used",
                  "used by"],
                 [[i["node"], *tag_name.rsplit(":", 1), i["short_id"],
                   output.ago(i.get("created")), output.size(i.get("size")),
                   output.ago(i.get("last_used")), used_by(i)]
                  for i in items for tag_name in (i["tags"] or ["<none>:<none>"])])
    return None


# --- following the jobs of one request (one per node) -------------------------------------

def describe(job: dict) -> str:
    """"pull on n2": the job's verb and the node its target names (nodes/<n>/images/...)."""
    parts = job["target"].split("/")
    node = parts[1] if len(parts) > 1 and parts[0] == "nodes" else "?"
    return f"{job['kind'].split('_')[0]} on {node}"


def follow_jobs(c: Context, made: list[dict], timeout: float | None) -> list[dict]:
    """Poll every job until it ends, a progress bar each (the bytes its ``progress`` says
    are done of the total); the ended jobs, or CliError naming each failed one."""
    deadline = None if timeout is None else time.monotonic() + timeout
    jobs = {job["id"]: job for job in made}
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TextColumn("{task.fields[message]}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True,
                  disable=c.json) as progress:
        tasks = {ident: progress.add_task(describe(job), total=None, message=job["status"])
                 for ident, job in jobs.items()}
        while any(job["status"] not in TERMINAL for job in jobs.values()):
            if deadline is not None and time.monotonic() > deadline:
                raise CliError(f"still running after {timeout:.0f}s; the jobs go on: "
                               + ", ".join(j["id"][:8] for j in jobs.values()))
            time.sleep(POLL)
            for ident, job in jobs.items():
                if job["status"] in TERMINAL:
                    continue
                job = jobs[ident] = c.client.get(f"/api/jobs/{ident}")
                shown = job.get("progress") or {}
                progress.update(tasks[ident], total=shown.get("total") or None,
                                completed=shown.get("done") or 0,
                                message=shown.get("message") or job["status"])
    failed = [job for job in jobs.values() if job["status"] != "succeeded"]
    if failed:
        raise CliError("; ".join(f"{describe(job)} {job['status']}: "
                                 f"{job.get('error') or 'no error recorded'}"
                                 for job in failed))
    return list(jobs.values())


def run_jobs(c: Context, path: str, body: dict, wait: bool, timeout: float | None,
             line, method: str = "POST", params: dict | None = None) -> None:
    """Send the request, follow its jobs (unless --no-wait) and print ``line(job)`` for
    each, or the jobs' JSON."""
    answer = c.client.request(method, path, json=body, params=params).json()
    made = answer["jobs"]
    if not wait:
        if c.json:
            return output.emit_json(made)
        for job in made:
            click.echo(f"{describe(job)}: job {job['id'][:8]} {job['status']} "
                       f"(`harbormaster job {job['id'][:8]} --wait` follows it)")
        return None
    ended = follow_jobs(c, made, timeout)
    if c.json:
        return output.emit_json(ended)
    for job in ended:
        click.echo(line(job))
    return None


def transferred(verb: str):
    def line(job: dict) -> str:
        result = job.get("result") or {}
        size = result.get("size_bytes") or result.get("bytes")
        digest = result.get("digest") or result.get("image_id") or ""
        shared = " (joined a pull already running)" if result.get("followed") else ""
        return (f"{result.get('image')} {verb} on {result.get('node')}: {digest}"
                + (f" {output.size(size)}" if size else "") + shared)
    return line


@image.command()
@click.argument("ref")
@node_option("pull on this node only [default: every ready node]")
@waiting("the image is on the node(s), or exit 1 with the registry's reason")
@pass_ctx
def pull(c: Context, ref, node, wait, timeout):
    """Pull an image (with the credentials stored for its registry), a progress bar per node."""
    run_jobs(c, "/api/images/pull", {"image": ref, "node": node}, wait, timeout,
             transferred("pulled"))


@image.command()
@click.argument("ref")
@node_option("push from this node [default: a ready node holding it]")
@waiting("the registry has it, or exit 1 with the registry's reason")
@pass_ctx
def push(c: Context, ref, node, wait, timeout):
    """Push an image to its registry (admin), with a progress bar."""
    run_jobs(c, "/api/images/push", {"image": ref, "node": node}, wait, timeout,
             transferred("pushed"))


@image.command()
@click.argument("source")
@click.argument("target")
@node_option("on this node only [default: every node holding SOURCE]")
@waiting("the new reference exists")
@pass_ctx
def tag(c: Context, source, target, node, wait, timeout):
    """Give an image another reference, as docker tag does."""
    run_jobs(c, "/api/images/tag", {"source": source, "target": target, "node": node}, wait,
             timeout, lambda job: f"tagged {source} as {target} on "
                                  f"{(job.get('result') or {}).get('node')}")


@image.command(name="rm")
@click.argument("refs", nargs=-1, required=True)
@node_option("from this node only [default: every node holding it]")
@click.option("-f", "--force", is_flag=True,
              help="also a reference other tags share or stopped containers use (never an "
                   "image a running container uses)")
@waiting("the image is removed")
@pass_ctx
def remove(c: Context, refs, node, force, wait, timeout):
    """Remove images by tag, digest or id (admin); refused naming what uses them."""
    for ref in refs:
        params = {"node": node, "force": "true" if force else None}
        run_jobs(c, image_path(ref), None, wait, timeout,
                 lambda job, ref=ref: f"{ref} removed from "
                                      f"{(job.get('result') or {}).get('node')}",
                 method="DELETE", params={k: v for k, v in params.items() if v})


@image.command()
@node_option("on this node only [default: every ready node]")
@waiting("the unused images are removed")
@pass_ctx
def prune(c: Context, node, wait, timeout):
    """Remove the dangling images and the images this installation pulled that no container
    uses (admin); never an image it did not pull."""
    run_jobs(c, "/api/images/prune", {"node": node}, wait, timeout,
             lambda job: f"{(job.get('result') or {}).get('node')}: removed "
                         f"{len((job.get('result') or {}).get('removed') or [])} images")


# --- registries -----------------------------------------------------------------------------

@main.group()
def registry():
    """Credentials for image registries (admin): used by every pull and push to them."""


NOT_AN_ARGUMENT = ("the password is not taken from the command line (shells and ps keep "
                   "it): pipe it to --password-stdin or answer the prompt")


@registry.command(context_settings={"allow_extra_args": True})
@click.argument("server")
@click.option("-u", "--username", prompt=True, help="the registry user")
@click.option("--password-stdin", is_flag=True,
              help="read the password from stdin (else a hidden prompt)")
@click.option("-p", "--password", "given", hidden=True, default=None)
@click.pass_context
def login(ctx: click.Context, server, username, password_stdin, given):
    """Store the credentials of a registry (host[:port]). The password is never an argument:
    it is read from stdin or a prompt, and never shown again."""
    if ctx.args or given is not None:  # refused without repeating it
        raise click.UsageError(NOT_AN_ARGUMENT, ctx=ctx)
    c = ctx.find_object(Context)
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, err=True)
    if not password:
        raise CliError("no password given")
    stored = c.client.request("POST", "/api/registries", json={
        "registry": server, "username": username, "password": password}).json()
    if c.json:
        return output.emit_json(stored)
    click.echo(f"credentials for {stored['registry']} stored (user {stored['username']})")
    return None


@registry.command(name="ls")
@pass_ctx
def list_registries(c: Context):
    """The registries with stored credentials (never their passwords)."""
    output.listing(c.json, c.client.items("/api/registries"),
                   ["registry", "username", "stored by", "stored"],
                   lambda r: [r["registry"], r["username"], r.get("created_by"),
                              output.ago(r.get("created_at"))])


@registry.command(name="rm")
@click.argument("server")
@pass_ctx
def remove_registry(c: Context, server):
    """Forget a registry's credentials."""
    gone = c.client.request("DELETE", f"/api/registries/{ref_path(server)}").json()
    if c.json:
        return output.emit_json(gone)
    click.echo(f"credentials for {gone['registry']} removed")
    return None
