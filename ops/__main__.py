"""`python -m ops up|down|bootstrap|node|node-down`: what `make up`, `make down`, `make node`
and `make node-down` run."""
from __future__ import annotations

import os
import signal
import sys

import config
from core import budget
from db import pool
from ops import bootstrap, node, supervise


def connection_budget(env: dict) -> str:
    """The platform's Postgres connection budget (the web process prints its own too)."""
    cfg = config.from_env(env)
    pool.configure(cfg)
    sizes, plan = budget.plan(cfg, len(os.sched_getaffinity(0)), pool.server_limits())
    return budget.describe(plan, sizes)


def up() -> int:
    cfg = config.from_env()
    env = supervise.process_env(bootstrap.bootstrap(cfg))
    pid = bootstrap.read_pid(cfg.data_dir / "supervisord.pid")
    if pid and bootstrap.pid_alive(pid):
        print(f"the platform already runs (supervisord pid {pid}); `make down` stops it")
        return 1
    supervise.release(env)
    print(connection_budget(env))
    print(f"\nHarbormaster API: {cfg.web_url}/api  (OpenAPI: {cfg.web_url}/api/openapi.json)")
    print(f"logs: {cfg.data_dir / 'logs'}   Ctrl-C stops the platform's processes "
          "(Docker and the workloads keep running); `make down` stops everything\n", flush=True)
    supervise.start(cfg.data_dir, env, foreground=True)
    return 0


def down() -> int:
    cfg = config.from_env()
    data = cfg.data_dir
    if bootstrap.stop_pidfile(data / "supervisord.pid", signal.SIGTERM, wait=30):
        print("stopped the platform's processes")
    if bootstrap.stop_redis(data):
        print("stopped the embedded redis")
    if bootstrap.stop_postgres(data):
        print("stopped the embedded postgres")
    if bootstrap.stop_pidfile(data / "dockerd.pid", signal.SIGTERM, wait=60):
        print("stopped the dockerd that `make up` started")
    return 0


def node_up() -> int:
    node.start(config.process_environment())  # becomes the node's supervisord
    return 0


def node_down() -> int:
    if node.stop(config.process_environment()):
        print("stopped the node's worker and agent (its engine and workloads keep running)")
    else:
        print("this node's processes do not run here")
    return 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "up"
    if command == "up":
        return up()
    if command == "down":
        return down()
    if command == "node":
        return node_up()
    if command == "node-down":
        return node_down()
    if command == "bootstrap":
        cfg = config.from_env()
        print(bootstrap.bootstrap(cfg))
        return 0
    print(f"usage: python -m ops up|down|bootstrap|node|node-down (not {command!r})",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
