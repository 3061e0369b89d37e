"""The web process: ``create_app()`` builds the Flask (flask-openapi3) application.

Web validates requests, writes desired state and jobs to Postgres, sends messages, and
answers. It never imports docker.
"""
from __future__ import annotations

import json
import logging

from flask import Request, request
from flask_openapi3 import Info, OpenAPI

import config
from web import auth, errors, idempotency, limits, metrics


def has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


class JsonBodyRequest(Request):
    """Every body this API takes is JSON: it is read as JSON whatever its Content-Type says
    (curl -d sends form encoding, and users forget the header); a body that does not parse
    is refused before the view, saying to send JSON."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        return super().get_json(force=True, silent=silent, cache=cache)


def create_app() -> OpenAPI:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s web %(levelname)s %(message)s")
    cfg = config.load()
    app = OpenAPI(__name__, info=Info(title="Harbormaster", version="0.1.0"),
                  doc_prefix="/api", doc_url="/openapi.json", doc_ui=True,
                  security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
                  validation_error_status=422,
                  validation_error_callback=errors.validation_response)
    app.request_class = JsonBodyRequest
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.json.sort_keys = False
    errors.register(app)
    # authentication first: the rate limiter keys on the caller it sets
    app.before_request(auth.authenticate)
    limits.build(app)
    idempotency.install(app)  # after authentication: a key belongs to a token

    @app.before_request
    def _reject_malformed_json():
        # flask-openapi3 reads bodies with get_json(silent=True): a broken body would
        # surface as a confusing 422; it is a 400.
        if not request.content_length:
            return
        try:
            data = json.loads(request.get_data(cache=True))
        except ValueError as exc:
            if not request.is_json:
                raise errors.ApiError(415, "the body is not JSON: send a JSON body with "
                                           "Content-Type: application/json") from None
            raise errors.ApiError(400, f"malformed JSON body: {exc}",
                                  code="malformed_json") from None
        if has_nul(data):
            # Postgres text and jsonb cannot hold U+0000: refuse it up front
            raise errors.ApiError(422, "strings may not contain NUL (\\u0000) characters",
                                  fields={"body": "contains NUL"})

    from web import (audit_api, containers_api, deployments_api, events_api, health_api,
                     jobs_api, legacy_api, scaling_api, services_api, summary_api, tokens_api)
    for module in (health_api, jobs_api, containers_api, deployments_api, events_api,
                   tokens_api, audit_api, summary_api):
        app.register_api(module.bp)
    app.register_api(deployments_api.containers_bp)
    app.register_api(health_api.api_bp)
    app.register_api(scaling_api.bp)
    app.register_api(scaling_api.metrics_bp)
    app.register_api(services_api.bp)
    app.register_blueprint(legacy_api.bp)
    metrics.install(app)

    @app.get("/", doc_ui=False)
    def dashboard():
        """The dashboard (public page: it asks for a token and keeps it in sessionStorage)."""
        return app.send_static_file("index.html")
    return app
