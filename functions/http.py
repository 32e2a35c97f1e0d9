"""Small helpers shared by the HTTP entry points."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from functions.errors import BraindumpError, MethodNotAllowed, QuotaExceeded

if TYPE_CHECKING:
    import flask


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> flask.Response:
    """Return a JSON response that is never cached by intermediaries."""
    import flask

    response = flask.Response(json.dumps(body, default=str), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: BraindumpError) -> flask.Response:
    """Return ``{"error": {"code", "message"}}`` with the error's HTTP status."""
    headers: dict[str, str] = {}
    if isinstance(error, QuotaExceeded):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allowed

    body = {"error": {"code": error.code, "message": error.message}}
    return json_response(body, error.http_status, headers)
