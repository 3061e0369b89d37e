"""gunicorn's settings (`gunicorn -c python:web.gunicorn_conf`): its processes sized from the
cores within the Postgres connection budget (core.budget), which it prints at start.

HARBORMASTER_WEB_WORKERS sets the processes (0 or unset: 2 x cores + 1, gunicorn's guideline),
HARBORMASTER_WEB_THREADS the threads of each for ordinary requests (HARBORMASTER_STREAM_CAP
more for live streams); the budget caps the processes either way.
Every module-level name is read by gunicorn as a setting: the helpers are private.
"""
import os as _os

import config as _config
from core import budget as _budget
from db import pool as _pool

_cfg = _config.from_env()
_pool.configure(_cfg)
try:
    _limits, _source = _pool.server_limits(), "read from Postgres"
except _pool.Unavailable:
    _limits, _source = (100, 3), "Postgres unreachable: its defaults assumed"
_sizes, _plan = _budget.plan(_cfg, len(_os.sched_getaffinity(0)), _limits)

worker_class = "gthread"
workers = _plan.web_processes()
# ordinary requests' threads + the live streams' (issue 16: a stream holds no database
# connection, so the budget counts the first only)
threads = _cfg.web_threads + _cfg.stream_cap


def on_starting(server):
    print(f"{_budget.describe(_plan, _sizes)}\n  (max_connections {_source})", flush=True)
