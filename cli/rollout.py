"""Following a deployment until a change has landed (as `kubectl rollout status` does).

A deployment job ends when only long waits remain (an instance in its `monitor` period or
waiting for its health check), so "the job succeeded" is not yet "every instance is ready".
``verdict`` is the pure judgement of one GET of the deployment; ``await_ready`` polls it.
"""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli.client import CliError, Client

DONE, WAIT, FAILED = "done", "wait", "failed"


def verdict(deployment: dict, generation: int | None) -> tuple[str, str]:
    """(DONE | WAIT | FAILED, why) for a deployment that should run ``generation``."""
    st = deployment["status"]
    name, state, reason = deployment["name"], st["state"], st.get("reason") or ""
    if generation is not None and deployment["generation"] != generation:
        # an automatic rollback (or somebody else's change) replaced what we applied
        return FAILED, (f"{name}: generation {generation} was replaced by generation "
                        f"{deployment['generation']} ({state}{': ' + reason if reason else ''});"
                        f" see `harbormaster events --deployment {name}`")
    if state in ("crashloop", "paused", "rolling-back"):
        return FAILED, f"{name} is {state}{': ' + reason if reason else ''}"
    if state == "steady" and st["ready"] == st["desired"] == st["updated"] \
            and st["running"] == st["desired"]:
        return DONE, f"{name}: {st['ready']}/{st['desired']} ready"
    return WAIT, f"{state} {reason}".strip()


def await_ready(client: Client, name: str, generation: int | None, timeout: float,
                quiet: bool = False, interval: float = 1.0) -> dict:
    """GET the deployment every ``interval`` until ``verdict`` is DONE; CliError otherwise."""
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.fields[message]}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True, disable=quiet) as progress:
        task = progress.add_task(f"{name} ready", total=None, message="")
        while True:
            deployment = client.get(f"/api/deployments/{name}")
            outcome, why = verdict(deployment, generation)
            st = deployment["status"]
            progress.update(task, total=st["desired"] or None, completed=st["ready"],
                            message=why)
            if outcome == DONE:
                return deployment
            if outcome == FAILED:
                raise CliError(why)
            if time.monotonic() > deadline:
                raise CliError(f"{name}: not ready after {timeout:.0f}s ({why}); "
                               "--timeout waits longer")
            time.sleep(interval)
