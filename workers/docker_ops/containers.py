"""Containers: created from their spec (one translation into Docker's arguments), the
lifecycle verbs, reads, listings by label and the event stream. Every verb is idempotent
where Docker allows it (removing what is gone succeeds)."""
from __future__ import annotations

from docker.types import LogConfig, Mount

from core.spec import ContainerSpec
from workers.docker_ops.engine import NotFound, call, client, publish_host


# every container's json-file log is bounded (HARBORMASTER_LOG_MAX_SIZE, _MAX_FILE): a chatty
# container cannot fill the node's disk; None keeps the engine's default
_log_config: LogConfig | None = None


def configure_logs(max_size: str, max_file: int) -> None:
    """The log bound of the containers this process creates ("" size: the engine's
    default, unbounded)."""
    global _log_config
    _log_config = LogConfig(type=LogConfig.types.JSON, config={
        "max-size": max_size, "max-file": str(max_file)}) if max_size else None


def create(name: str, spec: ContainerSpec, labels: dict, network: str | None = None,
           aliases: list[str] | None = None) -> str:
    """Create a container (not started) from its spec and return its id.

    The low-level call is one POST; docker-py's high-level create follows it with an
    inspect nobody here needs (the caller records the container after starting it).
    """
    api = client().api
    kwargs = create_args(spec, publish_host())
    network_mode = spec.security.network_mode
    networking_config = None
    if network and not network_mode:
        network_mode = network
        if aliases:
            # the service name resolves to its instances on the installation's network
            networking_config = api.create_networking_config(
                {network: api.create_endpoint_config(aliases=aliases)})
    host_config = api.create_host_config(network_mode=network_mode, log_config=_log_config,
                                         **kwargs.pop("host"))
    host_config.update(engine_resources(spec.resources.as_dict()))
    created = call(api.create_container, name=name, labels=labels, detach=True,
                   host_config=host_config, networking_config=networking_config, **kwargs)
    return created["Id"]


def create_args(spec: ContainerSpec, publish_host: str) -> dict:
    """The one translation of a spec into docker-py's create_container arguments (and the
    host config's, under "host")."""
    security = spec.security
    host = dict(
        # a tiny init as PID 1 forwards SIGTERM and reaps zombies: stops are graceful
        init=True,
        port_bindings={port: (publish_host, host_port)
                       for port, host_port in spec.ports.items()} or None,
        cap_drop=list(security.cap_drop) or None, cap_add=list(security.cap_add) or None,
        security_opt=["no-new-privileges:true"] if security.no_new_privileges else None,
        privileged=security.privileged, read_only=security.read_only,
        pid_mode=security.pid_mode,
        mounts=[Mount(target=m.target, source=m.source, type=m.type, read_only=m.read_only)
                for m in spec.mounts] or None,
        restart_policy={"Name": spec.restart_policy}
        if spec.restart_policy and spec.restart_policy != "no" else None)
    command = spec.command
    return dict(image=spec.image, command=list(command) if isinstance(command, tuple)
                else command or None,
                environment=spec.env or None, user=security.user,
                working_dir=spec.working_dir, stop_signal=spec.stop_signal,
                ports=[_exposed(port) for port in spec.ports] or None, host=host)


def _exposed(port: str):
    """"80/tcp" -> (80, "tcp"), "80" -> 80: the exposed-port form create_container takes."""
    number, _, proto = str(port).partition("/")
    return (int(number), proto) if proto else int(number)


def engine_resources(resources: dict) -> dict:
    """Our resources block (numbers) in the Engine API's HostConfig names: one translation
    for create and for live updates (docker-py's update_container has no NanoCpus, and
    CpuQuota conflicts with the NanoCpus set at create)."""
    out = {}
    for ours, theirs, kind in (("cpus", "NanoCpus", lambda v: int(float(v) * 1e9)),
                               ("cpu_shares", "CpuShares", int), ("memory", "Memory", int),
                               ("pids_limit", "PidsLimit", int)):
        if resources.get(ours) is not None:
            out[theirs] = kind(resources[ours])
    return out


def inspect(ref: str) -> dict:
    return call(client().api.inspect_container, ref)


def find(name: str) -> dict | None:
    try:
        return inspect(name)
    except NotFound:
        return None


def start(ref: str) -> None:
    call(client().api.start, ref)


def stop(ref: str, timeout: int = 10) -> None:
    call(client().api.stop, ref, timeout=timeout)


def restart(ref: str, timeout: int = 10) -> None:
    call(client().api.restart, ref, timeout=timeout)


def kill(ref: str, signal: str = "SIGKILL") -> None:
    call(client().api.kill, ref, signal=signal)


def pause(ref: str) -> None:
    call(client().api.pause, ref)


def unpause(ref: str) -> None:
    call(client().api.unpause, ref)


def remove(ref: str, force: bool = False) -> None:
    """Remove a container; a container already gone counts as removed."""
    try:
        call(client().api.remove_container, ref, force=force, v=False)
    except NotFound:
        pass


def update(ref: str, resources: dict) -> None:
    """Change resources of a live container (POST /containers/<id>/update), sent as the
    Engine API documents it."""
    body = engine_resources(resources)
    if "Memory" in body:
        body["MemorySwap"] = -1  # no swap beyond the memory limit
    if body:
        api = client().api
        call(lambda: api._result(api._post_json(api._url("/containers/{0}/update", ref),
                                                data=body), True))


def stats(ref: str) -> dict:
    return call(client().api.stats, ref, stream=False)


def list_containers(labels: dict, all: bool = True) -> list[dict]:
    filters = {"label": [f"{k}={v}" if v is not None else k for k, v in labels.items()]}
    return call(client().api.containers, all=all, filters=filters)


def list_sizes(labels: dict) -> list[dict]:
    """Running containers with their writable layer's size (SizeRw); slow on purpose."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    return call(client().api.containers, filters=filters, size=True)


def events(labels: dict, since: float | None = None):
    """A blocking generator of container events for our label."""
    filters = {"type": "container",
               "label": [f"{k}={v}" for k, v in labels.items()]}
    return call(client().api.events, since=since, filters=filters, decode=True)


def close_events(stream) -> None:
    try:
        stream.close()
    except Exception:  # noqa: BLE001 - the stream may already be broken; closing is best effort
        pass
