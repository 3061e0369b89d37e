"""The worker process's start: read the configuration once and set up what the actors use.

The Dramatiq command runs ``setup`` before it imports the actors
(``dramatiq workers.runtime:setup workers.actors --queues default node.<name>``), so the
actors bind to a broker built from this process's configuration, and no module does work
when it is imported.
"""
from __future__ import annotations

import config
from db import pool
from workers import broker, docker_ops, messages

_settings: config.Config | None = None


def setup(cfg: config.Config | None = None) -> None:
    global _settings
    _settings = cfg or config.from_env()
    pool.configure(_settings)
    docker_ops.configure(_settings.docker_host, _settings.publish_host)
    docker_ops.configure_logs(_settings.log_max_size, _settings.log_max_file)
    broker.configure(_settings).declare_queue(messages.node_queue(_settings.node_name))


def settings() -> config.Config:
    if _settings is None:
        raise RuntimeError("workers.runtime.setup() was not called in this process")
    return _settings
