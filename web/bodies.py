"""Request bodies: every body this API takes is JSON.

A body is read as JSON whatever its Content-Type says (curl -d sends form encoding, and
users forget the header); one that does not parse is refused before the view (415 without
a JSON Content-Type, 400 with one), and so is one holding U+0000, which Postgres cannot
store (422).
"""
from __future__ import annotations

import json

from flask import Request, request

from web.errors import ApiError


class JsonBodyRequest(Request):
    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        return super().get_json(force=True, silent=silent, cache=cache)


def has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def check_body() -> None:
    """before_request: flask-openapi3 reads bodies with get_json(silent=True), so a broken
    body would surface as a confusing 422."""
    if not request.content_length:
        return
    try:
        data = json.loads(request.get_data(cache=True))
    except ValueError as exc:
        if not request.is_json:
            raise ApiError(415, "the body is not JSON: send a JSON body with "
                                "Content-Type: application/json") from None
        raise ApiError(400, f"malformed JSON body: {exc}", code="malformed_json") from None
    if has_nul(data):
        raise ApiError(422, "strings may not contain NUL (\\u0000) characters",
                       fields={"body": "contains NUL"})
