"""Idempotency-Key on mutations: a retry gets the first answer again, never a second effect.

A key is scoped to the caller's token and fingerprinted by method, path, query (less
``wait``, which only says how long to wait) and body. The same key with the same request
replays the first answer's status and body with ``Idempotent-Replayed: true``; with another
request it is 422; while the first is still being answered, 409. One request may make
several jobs (a PATCH of template and resources): the key covers the request, so all of
them happen once. Answers of 5xx and 429 are not kept: the caller may retry those.
"""
from __future__ import annotations

import hashlib
import json

from flask import g, jsonify, request

from db import idempotency
from web import auth
from web.errors import ApiError

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
HEADER = "Idempotency-Key"


def fingerprint() -> str:
    query = sorted((k, v) for k, v in request.args.items(multi=True) if k != "wait")
    digest = hashlib.sha256()
    for part in (request.method, request.path, json.dumps(query)):
        digest.update(part.encode() + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def requested_key() -> str | None:
    key = request.headers.get(HEADER)
    if key is not None and not (1 <= len(key) <= 200):
        raise ApiError(422, f"{HEADER} must be 1-200 characters",
                       fields={HEADER: "1-200 characters"})
    return key


def replay(row: dict):
    response = jsonify(row["body"])
    response.status_code = row["status"]
    if row["location"]:
        response.headers["Location"] = row["location"]
    response.headers["Idempotent-Replayed"] = "true"
    return response


def before_request():
    if request.method not in MUTATING:
        return None
    key, caller = requested_key(), auth.current()
    if key is None or caller is None:
        return None
    who = caller.token_id or caller.name
    described = f"{request.method} {request.path}"
    existing = idempotency.claim(who, key, fingerprint(), described)
    if existing is None:
        g.idempotency = (who, key)
        return None
    if existing["fingerprint"] != fingerprint():
        raise ApiError(422, f"{HEADER} {key!r} was used for another request "
                            f"({existing['request']}); use a new key for a new request",
                       fields={HEADER: "used for another request"})
    if existing["status"] is None:
        raise ApiError(409, f"a request with this {HEADER} is still being answered; retry "
                            "shortly", headers={"Retry-After": "1"})
    return replay(existing)


def after_request(response):
    claimed = g.pop("idempotency", None)
    if claimed is None:
        return response
    who, key = claimed
    if response.status_code >= 500 or response.status_code == 429 or not response.is_json:
        idempotency.release(who, key)
    else:
        idempotency.answer(who, key, response.status_code, response.get_json(),
                           response.headers.get("Location"))
    return response


def teardown_request(_exc):
    claimed = g.pop("idempotency", None)
    if claimed is not None:  # the request died before an answer: free the key
        idempotency.release(*claimed)


def install(app) -> None:
    app.before_request(before_request)
    app.after_request(after_request)
    app.teardown_request(teardown_request)
