"""The local test images, built by `docker import` of a busybox-static root.

No image can be pulled here, so the platform and its tests use these:
- harbormaster/busybox-httpd (and :v2): HTTP on 80, `/health` answers 200 while
  /www/health exists (``rm /www/health`` makes it fail on demand, 404), `/version`;
- harbormaster/busybox-exit: exits at once with $EXIT_CODE (default 1);
- harbormaster/busybox-burn: burns one CPU while /tmp/idle is absent, serves HTTP on 80.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from workers import docker_ops

BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/www"]
IMAGES = {
    "harbormaster/busybox-httpd:latest": {"cmd": HTTPD, "version": "v1"},
    "harbormaster/busybox-httpd:v2": {"cmd": HTTPD, "version": "v2"},
    "harbormaster/busybox-exit:latest": {
        "cmd": ["sh", "-c", "echo \"exiting with ${EXIT_CODE:-1}\"; exit ${EXIT_CODE:-1}"],
        "version": "v1"},
    "harbormaster/busybox-burn:latest": {
        "cmd": ["sh", "-c", "httpd -p 80 -h /www; "
                "while :; do if [ -e /tmp/idle ]; then sleep 1; fi; done"],
        "version": "v1"},
}


def busybox() -> Path:
    for path in BUSYBOX_CANDIDATES:
        if path.exists():
            return path
    raise FileNotFoundError("busybox-static is not installed")


def rootfs(version: str) -> tuple[dict, dict]:
    binary = busybox()
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    files = {
        "bin/busybox": (binary.read_bytes(), 0o755),
        "etc/passwd": ("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
                       0o644),
        "etc/group": ("root:x:0:\nnogroup:x:65534:\n", 0o644),
        "www/index.html": (f"<h1>harbormaster busybox-httpd {version}</h1>\n", 0o644),
        "www/health": ("ok\n", 0o644),
        "www/version": (f"{version}\n", 0o644),
    }
    symlinks = {f"bin/{name}": "busybox" for name in applets if name != "busybox"}
    return files, symlinks


RECIPE_LABEL = "harbormaster.image-recipe"
TEST_IMAGE_LABEL = "harbormaster.test-image"


def recipe(spec: dict) -> str:
    """A digest of what an image is built from: an image built by an older recipe (such as
    the busybox-exit whose CMD was not valid JSON) is rebuilt."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def built_recipe(ref: str) -> str | None:
    try:
        labels = docker_ops.inspect_image(ref)["Config"].get("Labels") or {}
    except docker_ops.NotFound:
        return None
    return labels.get(RECIPE_LABEL)


def ensure_images(force: bool = False) -> list[str]:
    built = []
    for ref, spec in IMAGES.items():
        digest = recipe(spec)
        if not force and built_recipe(ref) == digest:
            continue
        files, symlinks = rootfs(spec["version"])
        docker_ops.import_rootfs(files, symlinks, ref, changes=[
            "ENV PATH=/bin", f"CMD {json.dumps(spec['cmd'])}", "EXPOSE 80",
            f"LABEL org.opencontainers.image.version={spec['version']}",
            f"LABEL {RECIPE_LABEL}={digest}", f"LABEL {TEST_IMAGE_LABEL}=true"])
        built.append(ref)
        print(f"[bootstrap] built image {ref}", flush=True)
    return built
