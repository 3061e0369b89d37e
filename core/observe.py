"""Pure translation of Docker's inspect documents into our container states and fields."""
from __future__ import annotations

from datetime import datetime

# Docker's status -> the state machine of DESIGN.md (seed 003's states plus paused)
DOCKER_STATES = {
    "created": "created",
    "running": "running",
    "paused": "paused",
    "restarting": "starting",
    # Docker removing it: for us it is stopped until gone ("removing" means we asked)
    "removing": "stopped",
    "exited": "stopped",
    "dead": "error",
}
LABEL_PREFIX = "harbormaster."
TRANSITIONAL = {"creating", "starting", "stopping", "removing"}


def state_of(attrs: dict) -> str:
    return DOCKER_STATES.get(attrs.get("State", {}).get("Status", ""), "error")


def _time(text: str | None):
    if not text or text.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python wants at most microseconds
    head, _, rest = text.partition(".")
    if rest:
        frac = rest.rstrip("Z")
        tz = ""
        for sep in ("+", "-"):
            if sep in frac:
                frac, tz = frac.split(sep, 1)
                tz = sep + tz
        text = f"{head}.{frac[:6]}{tz or '+00:00'}"
    else:
        text = head.rstrip("Z") + "+00:00"
    return datetime.fromisoformat(text)


def published_ports(attrs: dict) -> dict:
    """{"80/tcp": 32768}: the first host port bound for each container port."""
    out = {}
    bound = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for spec, bindings in bound.items():
        if bindings:
            out[spec] = int(bindings[0]["HostPort"])
    if not out:
        # a created (never started) container has no bindings yet: report the requested ones
        for spec in ((attrs.get("HostConfig") or {}).get("PortBindings") or {}):
            out[spec] = None
    return out


def resources_of(host_config: dict) -> dict:
    """The limits a container runs with, in our resources block's units."""
    out = {}
    if host_config.get("NanoCpus"):
        out["cpus"] = host_config["NanoCpus"] / 1e9
    if host_config.get("CpuShares"):
        out["cpu_shares"] = host_config["CpuShares"]
    if host_config.get("Memory"):
        out["memory"] = host_config["Memory"]
    if (host_config.get("PidsLimit") or 0) > 0:
        out["pids_limit"] = host_config["PidsLimit"]
    return out


def fields(attrs: dict) -> dict:
    """Everything we record about one container from its inspect document."""
    state = attrs.get("State", {})
    labels = attrs.get("Config", {}).get("Labels") or {}
    status = state_of(attrs)
    return {
        "name": attrs.get("Name", "").lstrip("/"),
        "docker_id": attrs["Id"],
        "state": status,
        "ports": published_ports(attrs),
        "pid": state.get("Pid") or None,
        "exit_code": state.get("ExitCode") if status in ("stopped", "error") else None,
        "restarts": attrs.get("RestartCount", 0),
        "started_at": _time(state.get("StartedAt")),
        "finished_at": _time(state.get("FinishedAt")),
        "labels": labels,
        "resources": resources_of(attrs.get("HostConfig") or {}),
        "image": labels.get("harbormaster.image") or attrs.get("Config", {}).get("Image", ""),
        # the id it was created from (a tag moves; image GC and the image list read this)
        "image_id": attrs.get("Image") or None,
        "kind": labels.get("harbormaster.kind", "standalone"),
        "node": labels.get("harbormaster.node", "local"),
    }


def list_entry_name(entry: dict) -> str:
    """The name of a container from a /containers/json list entry."""
    return (entry.get("Names") or ["/"])[0].lstrip("/")


def event_is_news(previous: str | None, current: str, action: str) -> bool:
    """Whether an observed Docker event deserves an event row.

    die and oom always do (they carry exit codes). Other changes do when nobody of ours
    was in the middle of causing them: the actor that stops a container marks it
    ``stopping`` first and records its own event.
    """
    if action in ("die", "oom"):
        return True
    if previous is None or previous in TRANSITIONAL or previous == "created":
        # "created" only lasts between our create and our start: whether the agent saw the
        # create event before the worker recorded the start is a race, not news
        return False
    return previous != current
