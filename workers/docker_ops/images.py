"""Images on the engine: inspect, make sure one is there, import a root filesystem."""
from __future__ import annotations

import io
import tarfile

from workers.docker_ops.engine import DockerError, NotFound, Permanent, call, client


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
