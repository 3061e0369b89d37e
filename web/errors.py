"""The one place HTTP errors are shaped: {"error": code, "detail": sentence, "fields": {...}}."""
from __future__ import annotations

import logging

import psycopg
from flask import jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from db.pool import Unavailable

log = logging.getLogger("harbormaster.web")

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
         415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited",
         503: "dependency_unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, detail: str, code: str | None = None,
                 fields: dict | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.code = code or CODES.get(status, "error")
        self.fields, self.headers = fields, headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def unavailable(component: str, reason: str) -> ApiError:
    return ApiError(503, f"{component} is unavailable: {reason}", code="dependency_unavailable",
                    fields={"component": component})


def body(status: int, detail: str, code: str | None = None, fields: dict | None = None):
    payload = {"error": code or CODES.get(status, "error"), "detail": detail}
    if fields:
        payload["fields"] = fields
    response = jsonify(payload)
    response.status_code = status
    return response


def validation_fields(exc: ValidationError) -> dict:
    fields = {}
    for err in exc.errors():
        loc = ".".join(str(part) for part in err.get("loc", ()) if part != "__root__")
        fields[loc or "body"] = err.get("msg", "invalid")
    return fields


def validation_response(exc: ValidationError):
    """flask-openapi3's validation_error_callback: 422 naming each field."""
    fields = validation_fields(exc)
    detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return body(422, detail, "validation_failed", fields)


def register(app) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response = body(exc.status, exc.detail, exc.code, exc.fields)
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response

    @app.errorhandler(Unavailable)
    def _postgres_down(exc: Unavailable):
        return body(503, f"postgres is unavailable: {exc}", "dependency_unavailable",
                    {"component": "postgres"})

    @app.errorhandler(psycopg.DataError)
    def _bad_value(exc: psycopg.DataError):
        # a value Postgres cannot hold (a NUL byte, a number out of range): the input's fault
        return body(422, f"a value was refused by the database: {exc}".splitlines()[0][:300],
                    "validation_failed")

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        return validation_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return body(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _bug(exc: Exception):
        log.exception("unhandled error")
        return body(500, "internal error (a bug): see the web log", "internal_error")
