"""Attack cases against ``upload_url``, run through functions-framework with real RS256 verification.

Every row is one attack: the Authorization header (built from the session's
keys), the body, the Content-Type and the expected status and error code.
After each rejected attack the test also checks that no voice note exists for
anyone, so a rejection never leaves a write behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask
import pytest
from google.cloud import firestore

from functions.store import quota_path
from tests.fakes.certs import CertificateServer
from tests.security.conftest import (
    MAX_UPLOAD_BYTES,
    UPLOADS_PER_DAY,
    UPLOADS_PER_HOUR,
    VALID_BODY,
    note_count,
    stored,
)
from tests.security.tokens import CUSTOM_TOKEN_AUDIENCE, ISSUER_PREFIX, TokenMint

pytestmark = pytest.mark.security

ATTACKER = "attacker-uid"
VICTIM = "victim-uid"

Authorization = Callable[[TokenMint], str | None]


def bearer(build: Callable[[TokenMint], str]) -> Authorization:
    """Return an Authorization builder that sends ``Bearer {build(mint)}``."""
    return lambda mint: f"Bearer {build(mint)}"


GENUINE = bearer(lambda mint: mint.token(ATTACKER))


@dataclass(frozen=True)
class Attack:
    """One row of the table."""

    authorization: Authorization
    status: int
    code: str
    body: Any = field(default_factory=lambda: dict(VALID_BODY))
    content_type: str = "application/json"
    method: str = "POST"
    quota_used: int = 0


ATTACKS = [
    # Token forgeries and broken headers.
    pytest.param(Attack(lambda mint: None, 401, "missing_token"), id="token-missing"),
    pytest.param(Attack(lambda mint: "Basic YXR0YWNrZXI6cHc=", 401, "malformed_token"), id="token-basic-scheme"),
    pytest.param(Attack(lambda mint: "Bearer", 401, "malformed_token"), id="token-empty-bearer"),
    pytest.param(Attack(lambda mint: "Bearer not-a-jwt", 401, "malformed_token"), id="token-not-jwt"),
    pytest.param(Attack(lambda mint: "Bearer a.b.c", 401, "malformed_token"), id="token-undecodable"),
    pytest.param(
        Attack(lambda mint: f"Bearer {mint.token(ATTACKER)} {mint.token(VICTIM)}", 401, "malformed_token"),
        id="token-two-tokens",
    ),
    pytest.param(Attack(lambda mint: "Bearer " + "a" * 9000 + ".b.c", 401, "malformed_token"), id="token-oversized"),
    pytest.param(
        Attack(bearer(lambda mint: mint.token(ATTACKER, iat=1_600_000_000, exp=1_600_003_600)), 401, "token_expired"),
        id="token-expired",
    ),
    pytest.param(
        Attack(bearer(lambda mint: mint.token(ATTACKER, aud="another-project")), 401, "token_wrong_audience"),
        id="token-other-project",
    ),
    pytest.param(
        Attack(bearer(lambda mint: mint.token(ATTACKER, aud=CUSTOM_TOKEN_AUDIENCE)), 401, "token_wrong_audience"),
        id="token-custom-token",
    ),
    pytest.param(
        Attack(
            bearer(lambda mint: mint.token(ATTACKER, iss=ISSUER_PREFIX + "another-project")), 401, "token_wrong_issuer"
        ),
        id="token-other-issuer",
    ),
    pytest.param(
        Attack(bearer(lambda mint: mint.token(ATTACKER, iss="https://accounts.google.com")), 401, "token_wrong_issuer"),
        id="token-google-issuer",
    ),
    pytest.param(
        Attack(bearer(lambda mint: mint.signed_by_rogue(ATTACKER)), 401, "token_bad_signature"),
        id="token-rogue-key",
    ),
    pytest.param(
        Attack(bearer(lambda mint: mint.unknown_kid(ATTACKER)), 401, "token_bad_signature"), id="token-unknown-kid"
    ),
    pytest.param(
        Attack(bearer(lambda mint: mint.tampered(ATTACKER, VICTIM)), 401, "token_bad_signature"),
        id="token-swapped-payload",
    ),
    pytest.param(Attack(bearer(lambda mint: mint.unsigned(VICTIM)), 401, "token_bad_signature"), id="token-alg-none"),
    pytest.param(
        Attack(bearer(lambda mint: mint.hmac_with_certificate(VICTIM)), 401, "token_bad_signature"),
        id="token-hs256-confusion",
    ),
    pytest.param(
        Attack(bearer(lambda mint: mint.token(ATTACKER, iat=2_000_000_000_0)), 401, "token_invalid"),
        id="token-issued-in-future",
    ),
    pytest.param(Attack(bearer(lambda mint: mint.token("")), 401, "token_invalid"), id="token-empty-subject"),
    # A genuine token whose uid would escape its Firestore path or object prefix.
    pytest.param(
        Attack(bearer(lambda mint: mint.token(f"../{VICTIM}")), 401, "token_invalid"), id="uid-path-traversal"
    ),
    pytest.param(
        Attack(bearer(lambda mint: mint.token(f"{VICTIM}/voiceNotes/x")), 401, "token_invalid"), id="uid-slash"
    ),
    # Writing into another user's space through the body.
    pytest.param(Attack(GENUINE, 400, "unknown_field", body={**VALID_BODY, "uid": VICTIM}), id="body-uid"),
    pytest.param(
        Attack(GENUINE, 400, "unknown_field", body={**VALID_BODY, "objectName": f"voice-notes/{VICTIM}/x.m4a"}),
        id="body-object-name",
    ),
    pytest.param(Attack(GENUINE, 400, "unknown_field", body={**VALID_BODY, "noteId": "0" * 32}), id="body-note-id"),
    pytest.param(Attack(GENUINE, 400, "unknown_field", body={**VALID_BODY, "status": "done"}), id="body-status"),
    # Path traversal in every field.
    pytest.param(
        Attack(GENUINE, 400, "unsupported_content_type", body={**VALID_BODY, "contentType": "audio/../../x"}),
        id="traversal-content-type",
    ),
    pytest.param(
        Attack(GENUINE, 400, "invalid_field", body={**VALID_BODY, "timezone": "../../../etc/passwd"}),
        id="traversal-timezone",
    ),
    pytest.param(
        Attack(GENUINE, 400, "invalid_field", body={**VALID_BODY, "timezone": "/etc/localtime"}),
        id="absolute-timezone",
    ),
    pytest.param(
        Attack(GENUINE, 400, "invalid_field", body={**VALID_BODY, "recordedAt": "../../x"}), id="traversal-recorded-at"
    ),
    pytest.param(Attack(GENUINE, 400, "invalid_field", body={**VALID_BODY, "sizeBytes": "../1"}), id="traversal-size"),
    # Something other than audio.
    pytest.param(
        Attack(GENUINE, 400, "unsupported_content_type", body={**VALID_BODY, "contentType": "text/html"}),
        id="type-html",
    ),
    pytest.param(
        Attack(GENUINE, 400, "unsupported_content_type", body={**VALID_BODY, "contentType": "image/svg+xml"}),
        id="type-svg",
    ),
    pytest.param(
        Attack(GENUINE, 400, "unsupported_content_type", body={**VALID_BODY, "contentType": "application/x-sh"}),
        id="type-shell",
    ),
    pytest.param(
        Attack(GENUINE, 400, "unsupported_content_type", body={**VALID_BODY, "contentType": "audio/mp4\r\nX-A: b"}),
        id="type-header-injection",
    ),
    # More than the limit.
    pytest.param(
        Attack(GENUINE, 400, "file_too_large", body={**VALID_BODY, "sizeBytes": MAX_UPLOAD_BYTES + 1}),
        id="size-over-limit",
    ),
    pytest.param(Attack(GENUINE, 400, "invalid_field", body={**VALID_BODY, "sizeBytes": -1}), id="size-negative"),
    pytest.param(Attack(GENUINE, 400, "invalid_field", body={**VALID_BODY, "sizeBytes": 1e30}), id="size-float-huge"),
    # Unknown fields, broken and huge bodies, wrong method.
    pytest.param(Attack(GENUINE, 400, "unknown_field", body={**VALID_BODY, "__proto__": {}}), id="field-unknown"),
    pytest.param(Attack(GENUINE, 413, "body_too_large", body=b"{" + b" " * (5 * 1024 * 1024) + b"}"), id="body-5-mib"),
    pytest.param(Attack(GENUINE, 400, "invalid_content_type", content_type="text/plain"), id="body-text-plain"),
    pytest.param(Attack(GENUINE, 400, "invalid_json", body=b'{"contentType": '), id="body-truncated-json"),
    pytest.param(Attack(GENUINE, 400, "invalid_json", body=[VALID_BODY]), id="body-json-array"),
    pytest.param(Attack(GENUINE, 405, "method_not_allowed", method="PUT"), id="method-put"),
    # Quota exhaustion.
    pytest.param(Attack(GENUINE, 429, "quota_exceeded", quota_used=UPLOADS_PER_HOUR), id="quota-hour-used-up"),
]


def _use_quota(db: firestore.Client, uid: str, used: int) -> None:
    """Write the quota document as if ``used`` uploads happened this hour and today."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    db.document(quota_path(uid)).set(
        {
            "hourStart": now.replace(minute=0, second=0, microsecond=0),
            "hourCount": used,
            "dayStart": now.replace(hour=0, minute=0, second=0, microsecond=0),
            "dayCount": used,
            "updatedAt": now,
        }
    )


def _send(app: flask.Flask, attack: Attack, authorization: str | None) -> Any:
    data = attack.body if isinstance(attack.body, bytes) else json.dumps(attack.body).encode()
    headers = {"Content-Type": attack.content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    return app.test_client().open("/", method=attack.method, data=data, headers=headers)


@pytest.mark.parametrize("attack", ATTACKS)
def test_upload_attack(
    attack: Attack, upload_app: flask.Flask, real_auth: CertificateServer, mint: TokenMint, db: firestore.Client
) -> None:
    if attack.quota_used:
        _use_quota(db, ATTACKER, attack.quota_used)

    response = _send(upload_app, attack, attack.authorization(mint))

    assert response.status_code == attack.status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == attack.code
    assert "Traceback" not in response.get_data(as_text=True)
    assert note_count(db) == 0


def test_quota_retry_after(
    upload_app: flask.Flask, real_auth: CertificateServer, mint: TokenMint, db: firestore.Client
) -> None:
    _use_quota(db, ATTACKER, UPLOADS_PER_DAY)

    response = _send(upload_app, Attack(GENUINE, 429, "quota_exceeded"), GENUINE(mint))

    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "quota_exceeded"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 24 * 3600
    assert stored(db, quota_path(ATTACKER))["dayCount"] == UPLOADS_PER_DAY


def test_genuine_upload_own_path(
    upload_app: flask.Flask, real_auth: CertificateServer, mint: TokenMint, db: firestore.Client
) -> None:
    response = _send(upload_app, Attack(GENUINE, 201, ""), GENUINE(mint))

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["objectName"] == f"voice-notes/{ATTACKER}/{body['noteId']}.m4a"
    assert f"/voice-notes/{ATTACKER}/{body['noteId']}.m4a?" in body["uploadUrl"]
    note = stored(db, f"users/{ATTACKER}/voiceNotes/{body['noteId']}")
    assert note["status"] == "awaiting_upload"
    assert note["objectName"] == body["objectName"]
    assert note_count(db) == 1
    assert real_auth.requests, "firebase-admin never fetched the certificates, so no signature was checked"
