"""Commands run inside containers, bounded by a timeout the Engine API does not have."""
from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from workers.docker_ops.engine import DockerError, Permanent, call, client


class ExecTimeout(Permanent):
    """A command run in a container did not finish within its timeout (it was killed)."""


_exec_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _exec_pool
    with _pool_lock:
        if _exec_pool is None:
            _exec_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="exec")
        return _exec_pool


def exec_run(ref: str, command, timeout: float = 60) -> tuple[int, str]:
    """Run a command in a container: (exit code, output). Past ``timeout`` the command is
    killed and ExecTimeout raised: a hanging health check must fail at its timeout, not
    hold the probe (the Engine API has no timeout of its own for exec)."""
    api = client().api
    exec_id = call(api.exec_create, ref, command, stdout=True, stderr=True)["Id"]
    future = _pool().submit(call, api.exec_start, exec_id)
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
