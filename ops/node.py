"""`make node`: one more node joining an installation that runs already.

A node is one Docker engine with its own worker and agent (the Procfile's), pointed at the
installation's Postgres and Redis: DATABASE_URL / REDIS_URL from the environment, else from
the runtime.env that `make up` wrote in the data directory. The node's processes run under a
supervisord of their own, with the node's own data directory `<data>/nodes/<name>`
(configuration, pidfile, socket, logs). Before starting, the node refuses clearly what would
not work: no name, no installation to join, an engine that does not answer, a name whose
agent is alive (the agent itself would refuse a second claim of one name).
"""
from __future__ import annotations

import re
import signal
from pathlib import Path

import config
from db import locks, pool
from db.pool import Unavailable
from ops import bootstrap, images, supervise
from workers import docker_ops

PROGRAMS = ("worker", "executor", "agent")
# a node's name is a directory and a queue name (node.<name>)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Refused(SystemExit):
    """What stops a node from starting, with what to do about it."""

    def __init__(self, message: str):
        super().__init__(f"make node: {message}")


def home(environ: dict) -> Path:
    """The node's data directory, <HARBORMASTER_DATA>/nodes/<HARBORMASTER_NODE>."""
    name = environ.get("HARBORMASTER_NODE", "")
    if not name:
        raise Refused("HARBORMASTER_NODE is not set: name this node, e.g. "
                      "HARBORMASTER_NODE=n2 DOCKER_HOST=unix:///var/run/docker-n2.sock make node")
    if not NAME.match(name):
        raise Refused(f"HARBORMASTER_NODE={name!r}: use letters, digits, '-', '_' or '.'")
    return config.from_env(environ).data_dir / "nodes" / name


def environment(environ: dict) -> dict:
    """The node's processes' environment, from ``environ`` (the environment `make node` runs
    in) and the installation's runtime.env."""
    node_home = home(environ)
    data = node_home.parent.parent
    runtime = bootstrap.read_runtime_env(data)
    urls = {key: environ.get(key) or runtime.get(key) for key in ("DATABASE_URL", "REDIS_URL")}
    missing = [key for key, value in urls.items() if not value]
    if missing:
        raise Refused(f"no installation to join: {' and '.join(missing)} unset, and "
                      f"{data / 'runtime.env'} (written by `make up`) does not name them; run "
                      "this in the checkout that ran `make up`, or set DATABASE_URL and REDIS_URL")
    env = supervise.process_env({
        **urls, "HARBORMASTER_DATA": str(node_home),
        # its own: supervise.start empties the directory, which the installation's web reads
        "PROMETHEUS_MULTIPROC_DIR": str(node_home / "prometheus")})
    return env


def check(cfg: config.Config) -> None:
    """Refuse a node that runs already, an engine that does not answer, a name whose agent
    is alive; build the test images on the node's engine when they are missing."""
    pid = bootstrap.read_pid(cfg.data_dir / "supervisord.pid")
    if pid and bootstrap.pid_alive(pid):
        raise Refused(f"node {cfg.node_name} already runs here (supervisord pid {pid}); "
                      "`make node-down` with the same HARBORMASTER_NODE stops it")
    engine = cfg.docker_host or "unix:///var/run/docker.sock"
    if not bootstrap.docker_reachable(cfg.docker_host):
        raise Refused(f"the Docker engine at {engine} does not answer; start it, or point "
                      "DOCKER_HOST at this node's engine")
    claim_free(cfg)
    docker_ops.configure(cfg.docker_host, cfg.publish_host)
    bootstrap.ensure_busybox_static()  # the images are built from it
    images.ensure_images()


def claim_free(cfg: config.Config) -> None:
    """The agent's claim on the name (a lock in Postgres, held by a live agent), tried and
    let go at once: held means another agent serves this name now."""
    pool.configure(cfg)
    try:
        claim = locks.agent_session(cfg.node_name)
    except Unavailable as exc:
        raise Refused(f"the installation's Postgres does not answer: {exc}") from exc
    if claim is None:
        hint = (" ('local' is the node `make up` runs)" if cfg.node_name == "local" else "")
        raise Refused(f"node {cfg.node_name!r} has a live agent already{hint}: a second agent "
                      "claiming that name would refuse to start (one live agent per node name, "
                      "a lock in Postgres); give this node another HARBORMASTER_NODE")
    claim.close()


def start(environ: dict) -> None:
    """Check, then become the node's supervisord (in the foreground, like `make up`; the
    test platform runs this command as a background process)."""
    env = environment(environ)
    cfg = config.from_env(env)
    check(cfg)
    print(f"node {cfg.node_name}: worker and agent on {cfg.docker_host or 'the default socket'}"
          f"; logs in {cfg.data_dir / 'logs'}; `make node-down` stops them (the engine and "
          "the workloads keep running)", flush=True)
    supervise.start(cfg.data_dir, env, foreground=True, names=PROGRAMS)


def stop(environ: dict) -> bool:
    """Stop the node's supervisord (its worker and agent with it)."""
    return bootstrap.stop_pidfile(home(environ) / "supervisord.pid", signal.SIGTERM, wait=30)
