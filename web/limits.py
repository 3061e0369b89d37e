"""Rate limits with Flask-Limiter on Redis: per token and per client address.

429 with Retry-After (and the X-RateLimit-* headers of the limit it breached). Other answers
carry no limit headers: computing them is one more Redis round trip per request. A token
may carry its own limit (tokens.rate_limit); otherwise the configured default applies. With
Redis down the limiter falls back to memory instead of failing requests.
"""
from __future__ import annotations

import time

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
        headers_enabled=False,  # on 429 only: refused_headers
        swallow_errors=True,
        enabled=cfg.rate_limit_enabled,
        key_prefix="harbormaster-limits",
        # a sliding window: no burst of twice the limit across a fixed window's edge
        strategy="sliding-window-counter",
    )
    # liveness probes, the dashboard's page and the metrics scrape are never limited
    limiter.request_filter(auth.is_public)
    limiter.init_app(app)
    app.after_request(lambda response: refused_headers(limiter, response))
    return limiter


def refused_headers(limiter: Limiter, response):
    """Retry-After and the breached limit's figures on a 429."""
    limit = limiter.current_limit if response.status_code == 429 else None
    if limit is None:
        return response
    try:
        reset_at, remaining = limit.reset_at, limit.remaining
    except Exception:  # noqa: BLE001 - storage gone mid-request: a short wait is still right
        reset_at, remaining = time.time() + 1, 0
    response.headers["Retry-After"] = str(max(1, int(reset_at - time.time())))
    response.headers["X-RateLimit-Limit"] = str(limit.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(int(reset_at))
    return response
