"""Debian packages some tests use (chromium, docker-compose, the registry and htpasswd),
installed the way the bootstrap installs its own: `apt-get update` first (a fresh machine's
package lists are empty or stale), then `apt-get install`, as root only."""
from __future__ import annotations

import os
import shutil

import pytest

from ops import bootstrap


def ensure(command: str, package: str) -> str:
    """The path of ``command`` (a name on PATH or an absolute path), installing ``package``
    when it is missing; the test fails saying why when that cannot be done here."""
    found = _find(command)
    if found is None:
        try:
            bootstrap.apt_install(package)
        except bootstrap.BootstrapError as exc:  # not root, or no apt-get
            pytest.fail(str(exc))
        found = _find(command)
    if found is None:
        pytest.fail(f"{package} was installed but {command} is still missing")
    return found


def registry_commands() -> tuple[str, str]:
    """The paths of `docker-registry` (distribution 2.8, which the tests' registry runs) and
    `htpasswd` (apache2-utils: the registry accepts bcrypt entries only), installed together
    when either is missing (one `apt-get update`)."""
    wanted = {"docker-registry": "docker-registry", "htpasswd": "apache2-utils"}
    missing = [package for command, package in wanted.items() if _find(command) is None]
    if missing:
        try:
            bootstrap.apt_install(*missing)
        except bootstrap.BootstrapError as exc:
            pytest.fail(str(exc))
    return ensure("docker-registry", "docker-registry"), ensure("htpasswd", "apache2-utils")


def _find(command: str) -> str | None:
    if os.path.isabs(command):
        return command if os.path.exists(command) else None
    return shutil.which(command)
