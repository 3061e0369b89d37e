"""What a killed Docker engine leaves behind, found by that engine's own paths only: the
processes of its containers (their cgroups, named by the container ids under its data
root), the containerd shims naming its exec root, mounts under its roots, empty cgroups.
This machine's init does not reap orphans, so a killed process may linger as a zombie:
``pid_alive`` counts a zombie as gone.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support.waiting import wait_until

CGROUPS = Path("/sys/fs/cgroup")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, OSError, IndexError):
        return False
    return state != "Z"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_all(pids, what: str) -> None:
    """SIGKILL each live pid and wait until none is left."""
    pids = [p for p in pids if pid_alive(p)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not any(pid_alive(p) for p in pids), 10, f"{what} gone")


def container_cgroups(container: str) -> list[Path]:
    """A container's cgroup in each v1 hierarchy, or its v2 cgroup (cgroupfs driver)."""
    paths = sorted(CGROUPS.glob(f"*/docker/{container}")) + [CGROUPS / "docker" / container]
    return [p for p in paths if p.is_dir()]


def container_pids(data_root: Path) -> list[int]:
    """Every process of the containers of the engine whose data root this is."""
    found = set()
    for container in (data_root / "containers").glob("*"):
        for cgroup in container_cgroups(container.name):
            try:
                found.update(int(pid) for pid in (cgroup / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
    return sorted(found)


def remove_cgroups(data_root: Path) -> None:
    """The containers' cgroups (empty by now) that no runc was left to delete."""
    for container in (data_root / "containers").glob("*"):
        for cgroup in container_cgroups(container.name):
            cgroup.rmdir()


def shim_pids(exec_root: Path) -> list[int]:
    """The containerd shims serving the engine of this exec root (it is in their command
    lines: `-address <exec root>/containerd/containerd.sock`)."""
    markers = {f"{exec_root}/".encode(), f"{exec_root.resolve()}/".encode()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in cmdline and any(m in cmdline for m in markers):
            found.append(int(entry.name))
    return [p for p in found if pid_alive(p)]


def unmount_under(*roots: Path) -> None:
    """Every mount under these directories, deepest first (/var/run is a link to /run:
    /proc/mounts names the resolved paths)."""
    prefixes = tuple({f"{p}/" for root in roots for p in (root, root.resolve())})
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefixes)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
