"""Live streams on the command line: `logs` (`-f` follows, `--previous` reads the slot's last
dead container), `deploy logs NAME [-f]` (every instance merged, each line with its
instance) and the following part of `events -f`.

The API streams Server-Sent Events; sseclient-py reads them. Lines of a container's stdout
go to stdout and its stderr to stderr, as `docker logs` does. `events -f` resumes after
the last event it printed (Last-Event-ID) when its connection drops.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone

import click
import requests
import sseclient

from cli import output
from cli.app import Context, main, pass_ctx, ref_path
from cli.client import CliError, describe_error
from cli.parse import since as parse_since
from cli.resources import deploy


def open_stream(c: Context, path: str, params: dict, headers: dict | None = None
                ) -> requests.Response:
    try:
        response = c.client.session.get(c.client.url + path, params=params, stream=True,
                                         headers={"Accept": "text/event-stream",
                                                  **(headers or {})}, timeout=(10, None))
    except requests.ConnectionError:
        raise CliError(f"cannot reach Harbormaster at {c.client.url}") from None
    if response.status_code != 200:
        raise CliError(describe_error(response))
    return response


def print_line(c: Context, event, prefix: bool) -> None:
    """One log event: stdout or stderr as it came, an instance's prefix when merged."""
    data = json.loads(event.data)
    if c.json:
        print(json.dumps({"event": event.event, **data}), flush=True)
        return
    if event.event in ("stdout", "stderr"):
        text = f"{data['time']} {data['line']}" if data.get("time") else data["line"]
        if prefix:
            text = f"{data['instance']} | {text}"
        stream = sys.stderr if event.event == "stderr" else sys.stdout
        print(text, file=stream, flush=True)
    elif event.event == "dropped":
        click.echo(f"-- {data['lines']} lines dropped before they were read", err=True)
    elif event.event == "instance":
        state = data["state"] if data["state"] != "ended" else f"ended: {data['reason']}"
        click.echo(f"-- {data['instance']} on {data['node']}: {state}", err=True)
    elif event.event == "end":
        click.echo(f"-- {data['reason']}", err=True)


def relay(c: Context, path: str, params: dict, prefix: bool) -> None:
    response = open_stream(c, path, params)
    try:
        for event in sseclient.SSEClient(response).events():
            print_line(c, event, prefix)
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        raise CliError("the connection to Harbormaster was lost") from None
    finally:
        response.close()


def log_params(tail, since, timestamps) -> dict:
    params = {"timestamps": "true" if timestamps else None, "tail": tail,
              "since": int(parse_since(since, datetime.now(timezone.utc)).timestamp())
              if since else None}
    return {k: v for k, v in params.items() if v is not None}


@main.command()
@click.argument("ref")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines (Ctrl-C stops)")
@click.option("--previous", is_flag=True,
              help="the slot's last dead container (kept for this), as kubectl logs -p")
@click.option("--tail", type=int, default=None, help="only the last N lines")
@click.option("--since", default=None, help="a duration back from now (10m), a time or "
                                               "Unix seconds")
@click.option("-t", "--timestamps", is_flag=True, help="Docker's time before each line")
@pass_ctx
def logs(c: Context, ref, follow, previous, tail, since, timestamps):
    """A container's logs (stdout to stdout, stderr to stderr)."""
    params = log_params(tail, since, timestamps)
    if previous:
        params["previous"] = "true"
    path = f"/api/containers/{ref_path(ref)}/logs"
    if follow:
        return relay(c, path, {**params, "follow": "true"}, prefix=False)
    answer = c.client.get(path, params=params)
    if c.json:
        return output.emit_json(answer)
    sys.stdout.write(answer.get("logs", ""))


@deploy.command(name="logs")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True,
              help="keep following, new instances too (Ctrl-C stops)")
@click.option("--tail", type=int, default=None, help="only the last N lines of each")
@click.option("--since", default=None, help="a duration back from now (10m), a time or "
                                               "Unix seconds")
@click.option("-t", "--timestamps", is_flag=True, help="Docker's time before each line")
@pass_ctx
def deploy_logs(c: Context, name, follow, tail, since, timestamps):
    """Every instance's log on every node, merged, each line with its instance."""
    params = log_params(tail, since, timestamps)
    if follow:
        params["follow"] = "true"
    relay(c, f"/api/deployments/{ref_path(name)}/logs", params, prefix=True)


def follow_events(c: Context, params: dict, cursor: str | None, show) -> None:
    """Events after ``cursor`` as they happen, resuming after the last one shown when the
    connection drops (a 410 says events were removed meanwhile: start again)."""
    while True:
        headers = {"Last-Event-ID": cursor} if cursor else {}
        try:
            response = open_stream(c, "/api/events/stream", params, headers)
            for event in sseclient.SSEClient(response).events():
                show(json.loads(event.data))
                cursor = event.id or cursor
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            click.echo("-- connection lost; resuming", err=True)
            time.sleep(2.0)
