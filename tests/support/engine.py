"""A second Docker engine on this machine, for the test session's second node.

Started as ../shared/multinode.md says (checked on Docker 20.10 here): its own socket, data
root, exec root, pidfile, bridge and address pool, `--iptables=false` so the two engines do
not fight over the DOCKER chains, and one DOCKER-USER rule so its containers reach one
another (the first engine's FORWARD policy is DROP). Every name carries a random id, so two
sessions (or a session and a developer's engine) never collide; every address comes from a
/16 that no route on this machine uses, claimed by the route of the engine's bridge.

``kill()`` is a sudden loss (SIGKILL of dockerd and its containerd; with ``containers`` its
containers' processes too: a host lost); ``start()`` again brings it back on the same data
root and socket. ``stop()`` removes everything it created (and what a kill left behind:
tests.support.leftovers), each step tried even when one before it failed. Nothing here
touches the machine's first engine or anything this module did not create.
"""
from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import docker

from tests.support import leftovers
from tests.support.leftovers import pid_alive, read_pid
from tests.support.waiting import wait_until

# Docker's default address pools (172.17-31.0.0/16, 192.168.0.0/16) are the first engine's:
# it takes its next network from them whenever it needs one, so the second engine's /16
# comes from 10.200-254, which no Docker pool uses by default.
CANDIDATES = [ipaddress.ip_network(f"10.{n}.0.0/16") for n in range(200, 255)]


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def used_networks(except_device: str | None = None) -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine routes or has an address in (but ``except_device``'s)."""
    found = []
    for line in _run("ip", "-4", "route", "show", "table", "all").stdout.splitlines():
        words = line.split()
        if words and words[0] in ("local", "broadcast", "unreachable", "blackhole", "throw"):
            words = words[1:]
        device = words[words.index("dev") + 1] if "dev" in words else None
        if words and words[0][:1].isdigit() and device != except_device:
            found.append(ipaddress.ip_network(words[0], strict=False))
    for line in _run("ip", "-4", "-o", "addr").stdout.splitlines():
        words = line.split()
        if "inet" in words and words[1] != except_device:
            found.append(ipaddress.ip_interface(words[words.index("inet") + 1]).network)
    return found


class SecondEngine:
    """One more dockerd, named ``docker-<id>`` / ``hm<id>`` / ``hm-<id>``."""

    def __init__(self, base: Path, ident: str | None = None):
        self.id = ident or secrets.token_hex(4)
        self.dir = base / f"engine-{self.id}"
        self.data_root = self.dir / "root"
        self.pidfile = self.dir / "dockerd.pid"
        self.log = self.dir / "dockerd.log"
        # the exec root holds containerd's socket path: a Unix socket path must stay short
        self.exec_root = Path(f"/var/run/hm-{self.id}")
        self.socket = Path(f"/var/run/docker-{self.id}.sock")
        self.bridge = f"hm{self.id}"          # an interface name has at most 15 characters
        self.network: ipaddress.IPv4Network | None = None   # the /16 claimed
        self.rule: list[str] | None = None    # the DOCKER-USER rule added, to delete it
        self.proc: subprocess.Popen | None = None
        self.started = False    # it answered once: it has containers to remove at the end
        self._client: docker.DockerClient | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def bridge_cidr(self) -> str:
        """The bridge's address: the first half of the /16 (the route that claims it)."""
        return f"{self.network.network_address + 1}/17"

    @property
    def pool(self) -> str:
        """The address pool of the engine's own networks: the second half of the /16."""
        return str(list(self.network.subnets(new_prefix=17))[1])

    @property
    def client(self) -> docker.DockerClient:
        """A client straight to this engine, made while it answers (docker-py asks the
        engine's version then) and kept: after a kill it fails until start() again."""
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.url, timeout=60)
        return self._client

    # --- start -------------------------------------------------------------------
    def start(self, timeout: float = 90) -> None:
        """Start dockerd (again, after kill(), on the same roots) and wait until it answers."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(exist_ok=True)
        if self.network is None:
            self.claim_network()
        elif not Path(f"/sys/class/net/{self.bridge}").exists():
            self._add_bridge()
        if self.running():
            return
        if not pid_alive(read_pid(self.pidfile)):
            self.pidfile.unlink(missing_ok=True)  # left by kill(): dockerd refuses it
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["dockerd", "-H", self.url, "--data-root", str(self.data_root),
                 "--exec-root", str(self.exec_root), "--pidfile", str(self.pidfile),
                 "-b", self.bridge, "--iptables=false",
                 "--config-file", str(self.write_config()),
                 "--default-address-pool", f"base={self.pool},size=24"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        wait_until(lambda: self.answers() or self.proc.poll() is not None, timeout,
                   f"second engine {self.id} answers")
        if self.proc.poll() is not None:
            raise RuntimeError(f"dockerd {self.id} exited ({self.proc.returncode}); "
                               f"see {self.log}:\n{self.log_tail()}")
        if self.rule is None:
            self.add_rule()
        self.started = True

    def write_config(self) -> Path:
        """Its own identity (the engine ID, from a key file that every engine here would
        otherwise share: /etc/docker/key.json), settable only in a configuration file; and
        live-restore. Without it, dockerd 20.10 started again after an unclean stop finds its
        old default network, deletes it and then deletes the interface named docker0 (it
        means its own default bridge, but deletes that name whatever -b says when
        --default-address-pool is set): the first engine's bridge, which every container
        there needs. With it, containers also outlive their engine, as on a real host with
        live-restore: the platform has to remove its stale instances itself."""
        path = self.dir / "daemon.json"
        path.write_text(json.dumps({"deprecated-key-path": str(self.dir / "key.json"),
                                    "live-restore": True}))
        return path

    def claim_network(self) -> None:
        """A /16 no route uses, claimed by the bridge's route; re-checked after adding the
        address, in case another session claimed the same one meanwhile."""
        used = used_networks()
        for network in random.sample(CANDIDATES, len(CANDIDATES)):
            if any(network.overlaps(u) for u in used):
                continue
            self.network = network
            self._add_bridge()
            if not any(network.overlaps(u) for u in used_networks(self.bridge)):
                return
            self._del_bridge()  # lost a race: try another
            self.network, used = None, used_networks()
        raise RuntimeError(f"no free /16 among {CANDIDATES[0]}..{CANDIDATES[-1]}")

    def _add_bridge(self) -> None:
        if not Path(f"/sys/class/net/{self.bridge}").exists():
            _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "replace", self.bridge_cidr, "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    def _del_bridge(self) -> None:
        if Path(f"/sys/class/net/{self.bridge}").exists():
            _run("ip", "link", "del", self.bridge)

    def add_rule(self) -> None:
        """Containers of this engine reach one another: the first engine set FORWARD's
        policy to DROP. No DOCKER-USER chain (no first engine with iptables): no DROP."""
        if _run("iptables", "-S", "DOCKER-USER", check=False).returncode != 0:
            return
        rule = ["DOCKER-USER", "-s", str(self.network), "-d", str(self.network), "-j", "ACCEPT"]
        _run("iptables", "-I", *rule)
        self.rule = rule

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with docker.APIClient(base_url=self.url, timeout=3) as api:
                return api.ping()
        except (docker.errors.DockerException, OSError):
            return False

    def running(self) -> bool:
        return pid_alive(self.pid()) and self.answers()

    def pid(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid
        return read_pid(self.pidfile)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    # --- images ----------------------------------------------------------------
    def load_images(self, source: docker.DockerClient, refs) -> list[str]:
        """`docker save` on ``source`` piped to `docker load` here, for each image that is
        missing or differs (no registry is reachable on this machine)."""
        loaded = []
        for ref in refs:
            wanted = source.images.get(ref).id
            try:
                if self.client.images.get(ref).id == wanted:
                    continue
            except docker.errors.ImageNotFound:
                pass
            self.client.api.load_image(b"".join(source.api.get_image(ref)))
            loaded.append(ref)
        return loaded

    # --- loss and stop -----------------------------------------------------------------
    def containerd_pid(self) -> int | None:
        return read_pid(self.exec_root / "containerd" / "containerd.pid")

    def kill(self, containers: bool = False) -> None:
        """A sudden loss: SIGKILL of dockerd and its containerd. The containers live on
        under their shims unless ``containers`` (a host lost: every process in their
        cgroups is killed too)."""
        doomed = leftovers.container_pids(self.data_root) if containers else []
        # dockerd first: it must not see its containers die (and restart them)
        leftovers.kill_all([self.pid(), self.containerd_pid()] + doomed,
                           f"second engine {self.id}'s processes")
        self._reap(10)
        # this machine's init does not reap orphans: the killed containerd stays a zombie,
        # which the next dockerd would take for a running containerd and wait on
        (self.exec_root / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def _reap(self, timeout: float) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(self.pid()):
            time.sleep(0.1)

    def stop(self, timeout: float = 60) -> None:
        """Stop dockerd and remove what start() created. After a kill(), dockerd is started
        once more first, so that it stops its containers and unmounts what they used itself;
        whatever is still left (shims, containers' processes and cgroups, mounts) is then
        removed by hand. Every step is tried; the failures are raised together at the end."""
        errors = []
        steps = [("restart a killed dockerd to clean up", self._restart_if_killed),
                 ("remove its containers", self._remove_containers),
                 ("stop dockerd", lambda: self._terminate(timeout)),
                 ("stop leftover processes", self._kill_leftovers),
                 ("remove leftover cgroups", lambda: leftovers.remove_cgroups(self.data_root)),
                 ("unmount leftovers", lambda: leftovers.unmount_under(self.exec_root,
                                                                       self.dir)),
                 ("delete the DOCKER-USER rule", self._delete_rule),
                 ("delete the bridge", self._del_bridge),
                 ("remove the exec root", lambda: shutil.rmtree(self.exec_root)),
                 ("remove the data root", lambda: shutil.rmtree(self.dir)),
                 ("remove the socket", lambda: self.socket.unlink(missing_ok=True))]
        for what, step in steps:
            try:
                step()
            except FileNotFoundError:
                pass  # never created, or already gone
            except Exception as exc:  # noqa: BLE001 - the later steps must still run
                errors.append(f"{what}: {type(exc).__name__}: {exc}")
        if self._client is not None:
            self._client.close()
            self._client = None
        if errors:
            raise RuntimeError(f"second engine {self.id}: " + "; ".join(errors))

    def _restart_if_killed(self) -> None:
        if self.network is not None and not pid_alive(self.pid()) and (
                leftovers.shim_pids(self.exec_root)
                or leftovers.container_pids(self.data_root)):
            self.start(timeout=60)

    def _remove_containers(self) -> None:
        """With live-restore, stopping dockerd leaves its containers running: remove them
        first, through the engine itself."""
        if self.running():
            for container in self.client.containers.list(all=True):
                container.remove(force=True)

    def _terminate(self, timeout: float) -> None:
        pid = self.pid()
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            self._reap(timeout)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                self._reap(10)

    def _kill_leftovers(self) -> None:
        leftovers.kill_all([self.containerd_pid()] + leftovers.shim_pids(self.exec_root)
                           + leftovers.container_pids(self.data_root), "leftover processes")

    def _delete_rule(self) -> None:
        if self.rule is not None:
            _run("iptables", "-D", *self.rule)
            self.rule = None
