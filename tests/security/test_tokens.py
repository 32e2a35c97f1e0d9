"""ID token verification: real RS256 checks, emulator tokens, key outages and what reaches the logs."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import flask
import pytest
from google.cloud import firestore
from werkzeug.test import TestResponse

from devstack.tokens import emulator_id_token
from functions.log import CloudLoggingFormatter
from tests.fakes.certs import CertificateServer
from tests.security.conftest import CLOSED_ENDPOINT, PROJECT_ID, VALID_BODY, note_count, route_certificates
from tests.security.tokens import ISSUER_PREFIX, TokenMint

pytestmark = pytest.mark.security


def _post(app: flask.Flask, authorization: str | None) -> TestResponse:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return app.test_client().post("/", data=json.dumps(VALID_BODY), headers=headers)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every record at DEBUG and above, as the JSON lines Cloud Logging would receive."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def test_genuine_token_accepted(upload_app: flask.Flask, real_auth: CertificateServer, mint: TokenMint) -> None:
    fetches_before = len(real_auth.requests)

    response = _post(upload_app, f"Bearer {mint.token('user-1')}")

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["objectName"].startswith("voice-notes/user-1/")
    assert len(real_auth.requests) == fetches_before + 1


def test_clock_skew_not_tolerated(upload_app: flask.Flask, real_auth: CertificateServer, mint: TokenMint) -> None:
    token = mint.token("user-1", exp=int(time.time()) - 2)

    response = _post(upload_app, f"Bearer {token}")

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "token_expired"


def test_certificate_outage_unavailable(
    upload_app: flask.Flask, backend_env: dict[str, str], mint: TokenMint, db: firestore.Client
) -> None:
    route_certificates(f"http://{CLOSED_ENDPOINT}")

    response = _post(upload_app, f"Bearer {mint.token('user-1')}")

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "auth_unavailable"
    assert "Traceback" not in response.get_data(as_text=True)
    assert note_count(db) == 0


def test_emulator_token_accepted(upload_app: flask.Flask, emulator_auth: None, db: firestore.Client) -> None:
    response = _post(upload_app, f"Bearer {emulator_id_token('user-2', PROJECT_ID)}")

    assert response.status_code == 201, response.get_data(as_text=True)
    assert note_count(db) == 1


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        pytest.param({"aud": "another-project"}, "token_wrong_audience", id="audience"),
        pytest.param({"iss": ISSUER_PREFIX + "another-project"}, "token_wrong_issuer", id="issuer"),
        pytest.param({"sub": ""}, "token_invalid", id="empty-subject"),
    ],
)
def test_emulator_token_rejected(
    claims: dict[str, str], code: str, upload_app: flask.Flask, emulator_auth: None, mint: TokenMint
) -> None:
    # The emulator path skips the signature but still checks audience, issuer and subject.
    response = _post(upload_app, f"Bearer {mint.unsigned('user-2', **claims)}")

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == code


def test_emulator_token_rejected_in_production(upload_app: flask.Flask, real_auth: CertificateServer) -> None:
    response = _post(upload_app, f"Bearer {emulator_id_token('user-2', PROJECT_ID)}")

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "token_bad_signature"


def test_logs_omit_tokens_and_urls(
    upload_app: flask.Flask, real_auth: CertificateServer, mint: TokenMint, json_log: io.StringIO
) -> None:
    genuine = mint.token("user-3")
    forged = mint.signed_by_rogue("user-3")
    expired = mint.token("user-3", iat=1_600_000_000, exp=1_600_003_600)

    accepted = _post(upload_app, f"Bearer {genuine}")
    for token in (forged, expired, "a.b.c"):
        _post(upload_app, f"Bearer {token}")

    assert accepted.status_code == 201
    signed_url = accepted.get_json()["uploadUrl"]
    signature = signed_url.rsplit("X-Goog-Signature=", 1)[1]
    lines = json_log.getvalue().splitlines()
    assert lines, "nothing was logged, so the check below proves nothing"
    for line in lines:
        entry = json.loads(line)
        assert isinstance(entry["message"], str)
    text = json_log.getvalue()
    for secret in (genuine, forged, expired, signed_url, signature):
        assert secret not in text
    for segment in (genuine.split(".")[2], forged.split(".")[2]):
        assert segment not in text
