"""The web process: ``create_app(cfg)`` builds the Flask (flask-openapi3) application.

Web validates requests, writes desired state and jobs to Postgres, sends messages, and
answers. It never imports docker. gunicorn runs ``web.wsgi:app``.
"""
from __future__ import annotations

import logging

from flask_openapi3 import Info, OpenAPI

import config
from db import pool
from web import (audit_api, auth, bodies, containers_api, context, deployments_api, errors,
                 events_api, health_api, idempotency, images_api, jobs_api, legacy, limits,
                 logs_api, metrics, nodes_api, registries_api, scaling_api, services_api, summary_api,
                 tokens_api, usage_api)
from workers import messages

BLUEPRINTS = (health_api.bp, health_api.api_bp, jobs_api.bp, containers_api.bp,
              deployments_api.bp, deployments_api.containers_bp, events_api.bp, tokens_api.bp,
              audit_api.bp, summary_api.bp, scaling_api.bp, scaling_api.metrics_bp,
              services_api.bp, nodes_api.bp, nodes_api.system_bp, images_api.bp,
              registries_api.bp, usage_api.bp, logs_api.bp)


def create_app(cfg: config.Config) -> OpenAPI:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s web %(levelname)s %(message)s")
    pool.configure(cfg, "harbormaster-web")   # named: its queries can be told apart
    messages.configure(cfg)
    app = OpenAPI(__name__, info=Info(title="Harbormaster", version="0.1.0"),
                  doc_prefix="/api", doc_url="/openapi.json", doc_ui=True,
                  security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
                  validation_error_status=422,
                  validation_error_callback=errors.validation_response)
    app.config[context.KEY] = cfg
    app.request_class = bodies.JsonBodyRequest
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.json.sort_keys = False
    errors.register(app)
    # authentication first: the rate limiter keys on the caller it sets
    auth.install(cfg)
    app.before_request(auth.authenticate)
    limits.build(app, cfg)
    idempotency.install(app)  # after authentication: a key belongs to a token
    app.before_request(bodies.check_body)
    for blueprint in BLUEPRINTS:
        app.register_api(blueprint)
    app.register_blueprint(legacy.bp)
    metrics.install(app, cfg)

    @app.get("/", doc_ui=False)
    def dashboard():
        """The dashboard (public page: it asks for a token and keeps it in sessionStorage)."""
        return app.send_static_file("index.html")
    return app
