"""A real registry on 127.0.0.1 for the tests and the benches: Debian's `docker-registry`
(distribution 2.8) serving from a temporary directory of its own (storage, configuration,
log, htpasswd), on a free port, with htpasswd authentication (bcrypt, made by apache2-utils'
`htpasswd`) for a user and password generated here.

Docker trusts registries on 127.0.0.0/8 without TLS, so every engine of this machine (the
session's second one included) pushes and pulls with no daemon configuration. ``stop()``
ends the one process ``start()`` started, by its PID, and removes the directory.
See ../shared/multinode.md, "A real registry on 127.0.0.1".
"""
from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import requests
import yaml

import validation
from tests.support import packages
from tests.support.leftovers import pid_alive
from tests.support.platform import free_port
from tests.support.waiting import wait_until

# what `docker push` stores and the Engine API asks for by default
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json"])


class PushFailed(AssertionError):
    """The engine's push stream reported an error (docker-py does not raise it)."""


class Registry:
    """One `docker-registry serve` process; ``host`` is what image references start with."""

    def __init__(self):
        self.dir: Path | None = None
        self.port: int | None = None
        self.username = f"hm-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(18)
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def credentials(self, host: str | None = None, password: str | None = None) -> dict:
        """The body of POST /api/registries for this registry (or for ``host``, a proxy in
        front of it), with the right password unless another is given."""
        return {"registry": host or self.host, "username": self.username,
                "password": self.password if password is None else password}

    def auth_config(self) -> dict:
        """docker-py's auth_config for pulls and pushes."""
        return {"username": self.username, "password": self.password}

    def ref(self, repository: str, tag: str = "latest", host: str | None = None) -> str:
        return f"{host or self.host}/{repository}:{tag}"

    # --- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        """Install the package at first use, write the files, start the registry and wait
        until /v2/ answers 401 (it serves and asks for credentials)."""
        binary, htpasswd = packages.registry_commands()
        self.dir = Path(tempfile.mkdtemp(prefix="hm-registry-"))
        self.port = free_port()
        # -i: the password on stdin, never on a command line other processes can read
        subprocess.run([htpasswd, "-B", "-i", "-c", str(self.dir / "htpasswd"), self.username],
                       input=self.password, text=True, check=True, capture_output=True)
        config = self.dir / "config.yml"
        config.write_text(yaml.safe_dump({
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "data")},
                        "delete": {"enabled": True}},
            # a secret of its own: without one it logs a warning at every start
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
            "auth": {"htpasswd": {"realm": "basic-realm", "path": str(self.dir / "htpasswd")}},
        }))
        with open(self.dir / "registry.log", "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or self.asks_for_credentials(),
                   timeout, f"registry on {self.host} answers 401")
        if self.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited ({self.proc.returncode}):\n"
                               + self.log_tail())

    def asks_for_credentials(self) -> bool:
        try:
            return requests.get(f"{self.url}/v2/", timeout=2).status_code == 401
        except requests.RequestException:
            return False

    def log_tail(self, lines: int = 30) -> str:
        path = self.dir / "registry.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20) -> None:
        """End the registry (SIGTERM, SIGKILL after ``timeout``) and remove its directory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            assert not pid_alive(self.proc.pid), f"registry pid {self.proc.pid} still alive"
        if self.dir is not None:
            shutil.rmtree(self.dir)

    # --- images ------------------------------------------------------------------------
    def push(self, client, ref: str) -> str:
        """Push ``ref`` (tagged for this registry, or for a proxy in front of it) from the
        engine ``client`` (docker-py) talks to, logged in; the manifest digest pushed."""
        registry, repository, tag, _ = validation.split_image(ref)
        client.login(username=self.username, password=self.password, registry=registry)
        digest = None
        for message in client.api.push(repository, tag=tag or "latest", stream=True,
                                       decode=True, auth_config=self.auth_config()):
            if "error" in message:
                raise PushFailed(f"push {ref}: {message['error']}")
            digest = (message.get("aux") or {}).get("Digest", digest)
        if digest is None:
            raise PushFailed(f"push {ref}: the engine reported no digest")
        return digest

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        """The digest of ``repository:tag`` as the registry holds it (None if it does not)."""
        r = requests.head(f"{self.url}/v2/{repository}/manifests/{tag}",
                          auth=(self.username, self.password),
                          headers={"Accept": MANIFEST_TYPES}, timeout=10)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.headers["Docker-Content-Digest"]

    def tags(self, repository: str) -> list[str]:
        r = requests.get(f"{self.url}/v2/{repository}/tags/list",
                         auth=(self.username, self.password), timeout=10)
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return r.json().get("tags") or []
