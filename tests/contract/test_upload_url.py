"""Real ``upload_url`` responses of the local stack, success and every reachable error, against openapi.yaml."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from google.cloud import firestore

from devstack.stack import LocalStack

TIMEOUT_SECONDS = 30.0
VALID_BODY: dict[str, Any] = {"contentType": "audio/x-m4a", "sizeBytes": 50597, "timezone": "Europe/Berlin"}

# Each case: request body (bytes are sent as they are, anything else as JSON),
# the request's Content-Type, the expected status and error code.
BODY_CASES = [
    pytest.param(b"{}", "text/plain", 400, "invalid_content_type", id="text-plain"),
    pytest.param(b"", None, 400, "invalid_content_type", id="no-content-type"),
    pytest.param(b"{not json", "application/json", 400, "invalid_json", id="broken-json"),
    pytest.param(b"[1, 2]", "application/json", 400, "invalid_json", id="json-array"),
    pytest.param(b"\xff\xfe", "application/json", 400, "invalid_json", id="not-utf8"),
    pytest.param({**VALID_BODY, "userId": "x"}, "application/json", 400, "unknown_field", id="unknown-field"),
    pytest.param(
        {"sizeBytes": 1, "timezone": "UTC"}, "application/json", 400, "missing_field", id="no-content-type-field"
    ),
    pytest.param(
        {"contentType": "audio/ogg", "timezone": "UTC"}, "application/json", 400, "missing_field", id="no-size"
    ),
    pytest.param({**VALID_BODY, "sizeBytes": "50597"}, "application/json", 400, "invalid_field", id="size-string"),
    pytest.param({**VALID_BODY, "sizeBytes": 5.0}, "application/json", 400, "invalid_field", id="size-float"),
    pytest.param({**VALID_BODY, "sizeBytes": 0}, "application/json", 400, "invalid_field", id="size-zero"),
    pytest.param(
        {**VALID_BODY, "timezone": "Mars/Olympus"}, "application/json", 400, "invalid_field", id="zone-unknown"
    ),
    pytest.param(
        {**VALID_BODY, "recordedAt": "2026-03-10T18:30:00"}, "application/json", 400, "invalid_field", id="naive-time"
    ),
    pytest.param(
        {**VALID_BODY, "contentType": "video/mp4"}, "application/json", 400, "unsupported_content_type", id="video"
    ),
    pytest.param(
        {**VALID_BODY, "sizeBytes": 10 * 1024 * 1024 + 1}, "application/json", 400, "file_too_large", id="too-big"
    ),
    pytest.param(b"{" + b" " * 5000 + b"}", "application/json", 413, "body_too_large", id="body-5000-bytes"),
]

AUTH_CASES = [
    pytest.param(None, "missing_token", id="no-header"),
    pytest.param("Basic dXNlcjpwYXNz", "malformed_token", id="basic-scheme"),
    pytest.param("Bearer", "malformed_token", id="bearer-without-token"),
    pytest.param("Bearer not-a-jwt", "malformed_token", id="not-a-jwt"),
    pytest.param("Bearer a.b.c", "malformed_token", id="undecodable-jwt"),
]


def _post(url: str, body: Any, content_type: str | None, authorization: str | None) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": authorization} if authorization else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(url, data=data, headers=headers, timeout=TIMEOUT_SECONDS)


def _error_code(response: requests.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(VALID_BODY, id="minimal"),
        pytest.param({**VALID_BODY, "recordedAt": "2026-03-10T18:30:00-07:00"}, id="recorded-at"),
        pytest.param({**VALID_BODY, "recordedAt": None}, id="recorded-at-null"),
        pytest.param({**VALID_BODY, "contentType": "AUDIO/OGG; codecs=opus"}, id="type-with-parameter"),
    ],
)
def test_created(
    upload_endpoint: str,
    mint_token: Callable[..., str],
    uid: str,
    conforms: Callable[[requests.Response], None],
    body: dict[str, Any],
) -> None:
    response = _post(upload_endpoint, body, "application/json", f"Bearer {mint_token(uid)}")

    assert response.status_code == 201, response.text
    conforms(response)
    assert response.json()["objectName"].startswith(f"voice-notes/{uid}/")


def test_created_canonical_type(upload_endpoint: str, mint_token: Callable[..., str], uid: str) -> None:
    response = _post(
        upload_endpoint, {**VALID_BODY, "contentType": "audio/x-m4a"}, "application/json", f"Bearer {mint_token(uid)}"
    )

    assert response.status_code == 201
    assert response.json()["headers"]["Content-Type"] == "audio/mp4"


@pytest.mark.parametrize(("body", "content_type", "status", "code"), BODY_CASES)
def test_rejected_body(
    upload_endpoint: str,
    mint_token: Callable[..., str],
    uid: str,
    conforms: Callable[[requests.Response], None],
    body: Any,
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    response = _post(upload_endpoint, body, content_type, f"Bearer {mint_token(uid)}")

    assert response.status_code == status, response.text
    assert _error_code(response) == code
    conforms(response)


@pytest.mark.parametrize(("authorization", "code"), AUTH_CASES)
def test_rejected_auth(
    upload_endpoint: str, conforms: Callable[[requests.Response], None], authorization: str | None, code: str
) -> None:
    response = _post(upload_endpoint, VALID_BODY, "application/json", authorization)

    assert response.status_code == 401
    assert _error_code(response) == code
    conforms(response)


def test_rejected_other_project(
    upload_endpoint: str, mint_token: Callable[..., str], uid: str, conforms: Callable[[requests.Response], None]
) -> None:
    token = mint_token(uid, project_id="another-project")

    response = _post(upload_endpoint, VALID_BODY, "application/json", f"Bearer {token}")

    assert response.status_code == 401
    assert _error_code(response) == "token_wrong_audience"
    conforms(response)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_method_not_allowed(upload_endpoint: str, matches_schema: Callable[[str, object], None], method: str) -> None:
    response = requests.request(method, upload_endpoint, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.headers["Cache-Control"] == "no-store"
    matches_schema("MethodNotAllowedError", response.json())


def test_quota_exceeded(
    stack: LocalStack,
    upload_endpoint: str,
    mint_token: Callable[..., str],
    uid: str,
    conforms: Callable[[requests.Response], None],
) -> None:
    now = dt.datetime.now(dt.UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # A used-up daily quota, so the test does not depend on the hour rolling over.
    firestore.Client(project=stack.project_id).document(f"users/{uid}/quota/uploads").set(
        {
            "hourStart": now.replace(minute=0, second=0, microsecond=0),
            "hourCount": 0,
            "dayStart": day_start,
            "dayCount": 200,
        }
    )

    response = _post(upload_endpoint, VALID_BODY, "application/json", f"Bearer {mint_token(uid)}")

    assert response.status_code == 429
    assert _error_code(response) == "quota_exceeded"
    assert 1 <= int(response.headers["Retry-After"]) <= 86401
    conforms(response)


def test_no_cache(upload_endpoint: str, mint_token: Callable[..., str], uid: str) -> None:
    created = _post(upload_endpoint, VALID_BODY, "application/json", f"Bearer {mint_token(uid)}")
    rejected = _post(upload_endpoint, VALID_BODY, "application/json", None)

    assert created.headers["Cache-Control"] == "no-store"
    assert rejected.headers["Cache-Control"] == "no-store"


def test_recorded_at_number(
    upload_endpoint: str, mint_token: Callable[..., str], uid: str, conforms: Callable[[requests.Response], None]
) -> None:
    response = _post(upload_endpoint, {**VALID_BODY, "recordedAt": 0}, "application/json", f"Bearer {mint_token(uid)}")

    assert response.status_code == 400
    assert _error_code(response) == "invalid_field"
