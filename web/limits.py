"""Rate limits with Flask-Limiter on Redis: per token and per client address.

429 with Retry-After. A token may carry its own limit (tokens.rate_limit); otherwise the
configured default applies. With Redis down the limiter falls back to memory instead of
failing requests.
"""
from __future__ import annotations

from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address

from web import auth
from web.context import settings


def token_key() -> str:
    caller = auth.current()
    if caller is not None and caller.token_id:
        return f"token:{caller.token_id}"
    return f"anonymous:{get_remote_address()}"


def token_limit() -> str:
    caller = auth.current()
    if caller is not None and caller.rate_limit:
        return caller.rate_limit
    return settings().rate_limit


def build(app, cfg) -> Limiter:
    limiter = Limiter(
        key_func=get_remote_address,
        application_limits=[
            ApplicationLimit(token_limit, key_function=token_key, scope="token"),
            ApplicationLimit(cfg.rate_limit_per_address, key_function=get_remote_address,
                             scope="address"),
        ],
        storage_uri=cfg.redis_url or "memory://",
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 2},
        in_memory_fallback_enabled=True,
        headers_enabled=True,
        swallow_errors=True,
        enabled=cfg.rate_limit_enabled,
        key_prefix="harbormaster-limits",
        # a sliding window: no burst of twice the limit across a fixed window's edge
        strategy="sliding-window-counter",
    )
    # liveness probes, the dashboard's page and the metrics scrape are never limited
    limiter.request_filter(auth.is_public)
    limiter.init_app(app)
    return limiter
