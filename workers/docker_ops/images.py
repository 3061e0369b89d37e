"""Images on the engine: inspect, pull and push with their progress messages, tag, remove,
list, import a root filesystem."""
from __future__ import annotations

import io
import logging
import os
import tarfile
import time
from datetime import datetime, timezone

import docker
import requests

import validation
from workers.docker_ops.engine import (DockerError, NotFound, Permanent, Transient, base_url,
                                       call, client, translate)

log = logging.getLogger("harbormaster.docker_ops")
# a transfer's own connection that the engine drops before answering is opened again this
# many times in all (the request had not started: a pull or push asked again is the same)
OPEN_ATTEMPTS = 3


def inspect_image(ref: str) -> dict:
    return call(client().api.inspect_image, ref)


def image_exists(ref: str) -> bool:
    try:
        inspect_image(ref)
        return True
    except NotFound:
        return False


def pull(ref: str, auth: dict | None, on_message, timeout: float, stall_timeout: float) -> dict:
    """Pull ``ref``, handing each of the engine's messages to ``on_message`` (the stream is
    read to its end: that is when the engine has finished). A pull that takes longer than
    ``timeout`` or moves nothing for ``stall_timeout`` seconds is abandoned. Returns the
    image's inspect document. Raises Permanent with the registry's reason."""
    _, repository, tag, digest = validation.split_image(ref)
    _transfer(ref, "pull", lambda api: api.pull(repository, tag=digest or tag or "latest",
                                                stream=True, decode=True, auth_config=auth),
              on_message, timeout, stall_timeout)
    return inspect_image(ref)


def push(ref: str, auth: dict | None, on_message, timeout: float, stall_timeout: float) -> None:
    """Push ``ref`` to its registry (messages and limits as ``pull``)."""
    _, repository, tag, _ = validation.split_image(ref)
    _transfer(ref, "push", lambda api: api.push(repository, tag=tag or "latest", stream=True,
                                                decode=True, auth_config=auth),
              on_message, timeout, stall_timeout)


def _transfer(ref: str, verb: str, open_stream, on_message, timeout: float,
              stall_timeout: float) -> None:
    api = None
    try:
        api, stream = _open(ref, verb, open_stream, stall_timeout)
        started = time.monotonic()
        for message in stream:
            if on_message(message) is False:
                raise Permanent(f"{verb} {ref}: no progress for {stall_timeout:.0f} s")
            if time.monotonic() - started > timeout:
                raise Permanent(f"{verb} {ref}: not done after {timeout:.0f} s")
    except DockerError as exc:
        if str(exc).startswith(f"{verb} {ref}: ") or "unreachable" in str(exc):
            raise
        # the registry's refusal (manifest unknown, unauthorized) as the engine reports it
        raise Permanent(f"{verb} {ref}: {exc}") from exc
    except (OSError, ValueError) as exc:  # the stream broke or timed out while reading
        raise Permanent(f"{verb} {ref}: no progress for {stall_timeout:.0f} s ({exc})") from exc
    finally:
        if api is not None:
            api.close()


def _open(ref: str, verb: str, open_stream, stall_timeout: float):
    """A client of its own (its socket timeout is the stall limit: a silent engine raises)
    and the transfer's stream, its request answered. A connection the engine closed or reset
    before answering is opened again (OPEN_ATTEMPTS in all); what the engine answered,
    an error included, is final."""
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        api = None
        try:
            api = docker.APIClient(base_url=base_url(), timeout=stall_timeout, version="auto")
            return api, open_stream(api)
        except docker.errors.APIError as exc:
            api.close()
            raise translate(exc) from exc
        except (docker.errors.DockerException, requests.exceptions.ConnectionError) as exc:
            if api is not None:
                api.close()
            if attempt == OPEN_ATTEMPTS:
                raise Transient(f"docker engine unreachable: {exc}") from exc
            log.warning("%s %s: the engine dropped the connection before answering (%s);"
                        " opening it again", verb, ref, exc)
            time.sleep(0.2 * attempt)
        except (requests.exceptions.RequestException, OSError) as exc:  # a timeout: final
            api.close()
            raise translate(exc) from exc


def tag(source: str, target: str) -> None:
    _, repository, tag_name, _ = validation.split_image(target)
    call(client().api.tag, source, repository, tag=tag_name or "latest")


def remove_image(ref: str, force: bool = False) -> None:
    """Remove one reference (the image goes with its last one); NotFound when unknown."""
    call(client().api.remove_image, ref, force=force, noprune=False)


def list_images() -> list[dict]:
    """Every image of the engine, in db.images.replace_engine_images' shape."""
    return [{"image_id": entry["Id"], "tags": [t for t in entry.get("RepoTags") or []
                                               if t != "<none>:<none>"],
             "digests": [d for d in entry.get("RepoDigests") or [] if "<none>" not in d],
             "size_bytes": entry.get("Size"),
             "created_at": datetime.fromtimestamp(entry.get("Created") or 0, timezone.utc),
             "labels": entry.get("Labels") or {}}
            for entry in call(client().api.images)]


def used_image_ids(running_only: bool = False) -> dict[str, list[str]]:
    """Image id -> the names of the engine's containers made from it (every container of
    the engine, ours or not)."""
    used: dict[str, list[str]] = {}
    for entry in call(client().api.containers, all=not running_only):
        names = [n.lstrip("/") for n in entry.get("Names") or []]
        used.setdefault(entry.get("ImageID"), []).extend(names[:1])
    return used


def image_events(since: float | None = None):
    """A blocking generator of the engine's image events (pull, tag, untag, delete, import,
    push...): every image of the engine, not only ours."""
    return call(client().api.events, since=since, filters={"type": "image"}, decode=True)


def dangling_images() -> list[str]:
    return [entry["Id"] for entry in call(client().api.images, filters={"dangling": True})]


def _split_ref(ref: str) -> tuple[str, str]:
    _, repository, tag_name, digest = validation.split_image(ref)
    return repository, digest or tag_name or "latest"


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


def image_disk() -> dict | None:
    """The filesystem holding the engine's images (its data root) as the kubelet counts it:
    ``{"used_bytes", "capacity_bytes"}`` with used = capacity - what a non-root writer may
    still use; None when this process cannot see that filesystem (an engine reached over
    TCP, a data root not on this host)."""
    if not base_url().startswith("unix://"):
        return None
    root = (call(client().api.info) or {}).get("DockerRootDir")
    try:
        stats = os.statvfs(root) if root else None
    except OSError:
        return None
    if stats is None or not stats.f_blocks:
        return None
    capacity = stats.f_blocks * stats.f_frsize
    return {"used_bytes": capacity - stats.f_bavail * stats.f_frsize, "capacity_bytes": capacity}
