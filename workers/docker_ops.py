"""The one place that imports docker: idempotent verbs over the Engine API.

Every Docker error leaves this module as ``Permanent`` (retrying cannot help: bad
image, conflict, not found) or ``Transient`` (engine unreachable, 5xx): actors let Dramatiq
retry the latter only.
"""
from __future__ import annotations

import io
import os
import signal
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import docker
import docker.errors
import requests.exceptions
from docker.types import Mount

import config


class DockerError(Exception):
    """Base of the errors this module raises."""


class Permanent(DockerError):
    """Retrying will not help (bad request, missing image, name taken...)."""


class NotFound(Permanent):
    """The container (or image) does not exist."""


class Conflict(Permanent):
    """The name is taken (409)."""


class Transient(DockerError):
    """The engine could not be reached or failed; a retry may succeed."""


_client = None
_lock = threading.Lock()


def client() -> docker.DockerClient:
    global _client
    with _lock:
        if _client is None:
            cfg = config.load()
            base_url = cfg.docker_host or "unix:///var/run/docker.sock"
            # "auto" asks the engine its API version; a failure leaves _client unset so the
            # next call tries again (the engine may come back)
            _client = call(docker.DockerClient, base_url=base_url, timeout=60,
                           max_pool_size=64, version="auto")
        return _client


def _translate(exc: Exception) -> DockerError:
    if isinstance(exc, docker.errors.NotFound):
        return NotFound(_explain(exc))
    if isinstance(exc, docker.errors.APIError):
        code = exc.status_code or 500
        if code == 409 and "is already in use" in _explain(exc):
            return Conflict(_explain(exc))
        if code >= 500:
            return Transient(_explain(exc))
        return Permanent(_explain(exc))
    if isinstance(exc, docker.errors.DockerException):
        return Transient(str(exc))
    return Transient(f"docker engine unreachable: {exc}")


def _explain(exc) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)


def call(fn, *args, **kwargs):
    """Run one docker-py call, mapping every failure to Permanent / Transient."""
    try:
        return fn(*args, **kwargs)
    except (docker.errors.DockerException, requests.exceptions.RequestException,
            ConnectionError, OSError) as exc:
        raise _translate(exc) from exc


# --- engine -----------------------------------------------------------------

def ping() -> float:
    """Seconds one ping took; raises Transient when the engine does not answer."""
    started = time.monotonic()
    call(client().api.ping)
    return time.monotonic() - started


def info() -> dict:
    return call(client().api.info)


# --- images -----------------------------------------------------------------

def inspect_image(ref: str) -> dict:
    return call(client().api.inspect_image, ref)


def image_exists(ref: str) -> bool:
    try:
        inspect_image(ref)
        return True
    except NotFound:
        return False


def ensure_image(ref: str) -> None:
    """Make sure an image is local: pull it if missing, fail fast with a clear error."""
    if image_exists(ref):
        return
    repo, tag = _split_ref(ref)
    try:
        call(client().api.pull, repo, tag=tag)
    except DockerError as exc:
        raise Permanent(f"image {ref!r} is not present locally and could not be pulled: {exc}")


def _split_ref(ref: str) -> tuple[str, str]:
    name, _, digest = ref.partition("@")
    if digest:
        return name, digest
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = name.rsplit(":", 1)
        return repo, tag
    return name, "latest"


def import_rootfs(files: dict[str, tuple[bytes | str, int]], symlinks: dict[str, str],
                  repository: str, changes: list[str]) -> None:
    """`docker import` a root filesystem built in memory (path -> (content, mode))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = set()
        for path in list(files) + list(symlinks):
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        for d in sorted(dirs) + ["tmp"]:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for path, (content, mode) in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path.strip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        for path, target in symlinks.items():
            info = tarfile.TarInfo(path.strip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    repo, tag = _split_ref(repository)
    call(client().api.import_image_from_data, buf.getvalue(), repository=repo, tag=tag,
         changes=changes)


# --- networks ---------------------------------------------------------------

_networks_seen: set[str] = set()
_network_lock = threading.Lock()


def ensure_network(name: str, labels: dict) -> None:
    """The installation's bridge network (created once; later calls are free).

    Docker allows two networks with one name, and workers may race to create it: the
    daemon's duplicate check, a lock per process, and after creating, every process keeps
    the same one (the oldest) and removes the others.
    """
    if name in _networks_seen:
        return
    with _network_lock:
        if name in _networks_seen:
            return
        api = client().api
        if not [n for n in call(api.networks, names=[name]) if n["Name"] == name]:
            try:
                call(api.create_network, name, driver="bridge", labels=labels,
                     check_duplicate=True)
            except Permanent as exc:
                if "already exists" not in str(exc) and not isinstance(exc, Conflict):
                    raise
        same = sorted((n for n in call(api.networks, names=[name]) if n["Name"] == name),
                      key=lambda n: (n["Created"], n["Id"]))
        for extra in same[1:]:
            try:
                call(api.remove_network, extra["Id"])
            except DockerError:
                pass  # another process removed it, or a container joined it meanwhile
        _networks_seen.add(name)


# --- containers -------------------------------------------------------------

def create(name: str, image: str, command, env: dict, labels: dict, ports: dict,
           resources: dict, security: dict, mounts: list, restart_policy: str | None,
           network: str | None = None, aliases: list[str] | None = None) -> str:
    """Create a container (not started) and return its id.

    The low-level call is one POST; docker-py's high-level create follows it with an
    inspect nobody here needs (the caller records the container after starting it).
    """
    cfg = config.load()
    api = client().api
    network_mode = security.get("network_mode") or None
    networking_config = None
    if network and not network_mode:
        network_mode = network
        if aliases:
            # the service name resolves to its instances on the installation's network
            networking_config = api.create_networking_config(
                {network: api.create_endpoint_config(aliases=aliases)})
    host_config = api.create_host_config(
        # a tiny init as PID 1 forwards SIGTERM and reaps zombies: stops are graceful
        init=True,
        port_bindings={spec: (cfg.publish_host, host_port)
                       for spec, host_port in (ports or {}).items()} or None,
        cap_drop=security.get("cap_drop") or None,
        cap_add=security.get("cap_add") or None,
        security_opt=["no-new-privileges:true"] if security.get("no_new_privileges", True)
        else None,
        privileged=bool(security.get("privileged")),
        read_only=bool(security.get("read_only")),
        pid_mode=security.get("pid_mode") or None,
        network_mode=network_mode,
        mounts=[Mount(target=m["target"], source=m.get("source"), type=m["type"],
                      read_only=bool(m.get("read_only"))) for m in (mounts or [])] or None,
        restart_policy={"Name": restart_policy}
        if restart_policy and restart_policy != "no" else None,
        **resource_kwargs(resources),
    )
    created = call(api.create_container, image=image, name=name, command=command or None,
                   environment=env or None, labels=labels, user=security.get("user") or None,
                   detach=True, ports=[_exposed(spec) for spec in (ports or {})] or None,
                   host_config=host_config, networking_config=networking_config)
    return created["Id"]


def _exposed(spec: str):
    """"80/tcp" -> (80, "tcp"), "80" -> 80: the exposed-port form create_container takes."""
    port, _, proto = str(spec).partition("/")
    return (int(port), proto) if proto else int(port)


def resource_kwargs(resources: dict) -> dict:
    """Translate our resources block (already normalised to numbers) to docker-py kwargs."""
    out = {}
    if resources.get("cpus") is not None:
        out["nano_cpus"] = int(float(resources["cpus"]) * 1e9)
    if resources.get("cpu_shares") is not None:
        out["cpu_shares"] = int(resources["cpu_shares"])
    if resources.get("memory") is not None:
        out["mem_limit"] = int(resources["memory"])
    if resources.get("pids_limit") is not None:
        out["pids_limit"] = int(resources["pids_limit"])
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
    """Change resources of a live container (POST /containers/<id>/update).

    docker-py's update_container has no NanoCpus, and CpuQuota conflicts with the NanoCpus
    set at create, so the body is sent as the Engine API documents it.
    """
    body = {}
    if resources.get("cpus") is not None:
        body["NanoCpus"] = int(float(resources["cpus"]) * 1e9)
    if resources.get("cpu_shares") is not None:
        body["CpuShares"] = int(resources["cpu_shares"])
    if resources.get("memory") is not None:
        body["Memory"] = int(resources["memory"])
        body["MemorySwap"] = -1
    if resources.get("pids_limit") is not None:
        body["PidsLimit"] = int(resources["pids_limit"])
    if body:
        api = client().api
        call(lambda: api._result(api._post_json(api._url("/containers/{0}/update", ref),
                                                data=body), True))


def logs(ref: str, tail: int | None = None, timestamps: bool = False,
         since: int | None = None) -> str:
    data = call(client().api.logs, ref, stdout=True, stderr=True,
                tail=tail if tail is not None else "all", timestamps=timestamps, since=since)
    return data.decode("utf-8", errors="replace")


class ExecTimeout(Permanent):
    """A command run in a container did not finish within its timeout (it was killed)."""


_exec_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="exec")


def exec_run(ref: str, command, timeout: float = 60) -> tuple[int, str]:
    """Run a command in a container: (exit code, output). Past ``timeout`` the command is
    killed and ExecTimeout raised: a hanging health check must fail at its timeout, not
    hold the probe (the Engine API has no timeout of its own for exec)."""
    api = client().api
    exec_id = call(api.exec_create, ref, command, stdout=True, stderr=True)["Id"]
    future = _exec_pool.submit(call, api.exec_start, exec_id)
    try:
        output = future.result(timeout=timeout)
    except FutureTimeout:
        _kill_exec(exec_id)
        raise ExecTimeout(f"timed out after {timeout:g}s") from None
    exit_code = call(api.exec_inspect, exec_id).get("ExitCode")
    return exit_code, output.decode("utf-8", errors="replace")


def _kill_exec(exec_id: str) -> None:
    """Kill a command we ran in a container, by its host pid (the engine is on this host:
    every node runs its own agent and worker beside its engine)."""
    try:
        pid = call(client().api.exec_inspect, exec_id).get("Pid") or 0
        if pid > 0:
            os.kill(pid, signal.SIGKILL)
    except (DockerError, ProcessLookupError, PermissionError):
        pass  # it ended meanwhile, or is not ours to see: exec_start returns when it ends


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
