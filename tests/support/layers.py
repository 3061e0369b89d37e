"""Images made for one test: the busybox-httpd root of the platform's test images (ops.images:
HTTP on 80, /health, /version) plus a file of random bytes, imported in one layer that no
other image shares, so a pull of it moves that many bytes over the wire.

It is imported (`docker import`), not built FROM harbormaster/busybox-httpd: an image built
FROM it would inherit its label harbormaster.test-image, which marks the platform's own test
images (never removed by image GC), and these images are what GC must be free to remove.
Each carries ``harbormaster.test-layer=<id>`` instead, by which ``remove`` finds every copy
(on every engine, under every tag) after the test.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
from dataclasses import dataclass

import docker

from ops import images

LABEL = "harbormaster.test-layer"
MIB = 1024 * 1024


@dataclass(frozen=True)
class LayeredImage:
    ref: str            # host:port/repository:tag, as built and tagged
    repository: str     # the path in the registry (no host)
    tag: str
    id: str             # the local image id (sha256:...)
    ident: str          # the value of its label
    random_bytes: int   # the size of its random file
    digest: str | None = None   # the manifest digest, once pushed

    @property
    def label(self) -> str:
        return f"{LABEL}={self.ident}"

    def at(self, host: str) -> str:
        """The same image through another address of the registry (a throttling proxy)."""
        return f"{host}/{self.repository}:{self.tag}"


def rootfs_tar(random_bytes: int, version: str) -> bytes:
    """A tar of busybox-httpd's root filesystem with /random.bin of ``random_bytes``."""
    files, symlinks = images.rootfs(version)
    files = {**files, "random.bin": (os.urandom(random_bytes), 0o644)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory in ("bin", "etc", "www", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        for path, (content, mode) in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        for path, target in symlinks.items():
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def build(client: docker.DockerClient, host: str, name: str | None = None, tag: str = "v1",
          random_bytes: int = 24 * MIB, version: str = "v1") -> LayeredImage:
    """Import a new image on ``client``'s engine as ``host/hm-test/<name>:<tag>`` (``name``
    defaults to a random one); its label holds a fresh id."""
    ident = secrets.token_hex(6)
    repository = f"hm-test/{name or 'layer-' + ident}"
    ref = f"{host}/{repository}:{tag}"
    client.api.import_image_from_data(
        rootfs_tar(random_bytes, version), repository=f"{host}/{repository}", tag=tag,
        changes=["ENV PATH=/bin", f"CMD {json.dumps(images.HTTPD)}", "EXPOSE 80",
                 f"LABEL org.opencontainers.image.version={version}",
                 f"LABEL {LABEL}={ident}"])
    image_id = client.images.get(ref).id
    return LayeredImage(ref=ref, repository=repository, tag=tag, id=image_id, ident=ident,
                        random_bytes=random_bytes)


def remove(clients, idents) -> list[str]:
    """Remove, on every engine, each image labelled with one of ``idents`` (every tag);
    the failures, as text (an image a running container uses cannot go)."""
    errors = []
    for client in clients:
        for ident in idents:
            for entry in client.api.images(filters={"label": f"{LABEL}={ident}"}):
                try:
                    client.api.remove_image(entry["Id"], force=True)
                except docker.errors.NotFound:
                    pass  # removed meanwhile
                except docker.errors.APIError as exc:
                    errors.append(f"{entry['Id'][:19]}: {exc}")
    return errors


def remaining(clients, idents) -> list[str]:
    """The ids of the images labelled with one of ``idents`` still on the engines."""
    return [entry["Id"] for client in clients for ident in idents
            for entry in client.api.images(filters={"label": f"{LABEL}={ident}"})]
