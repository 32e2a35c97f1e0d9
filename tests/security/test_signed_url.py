"""The V4 signed PUT URL: what it signs, how long it lives, and which altered requests it rejects.

Signatures are checked by :mod:`tests.security.v4`, which rebuilds Google's
canonical request without google-cloud-storage. fake-gcs-server does not check
V4 signatures, the length range or the generation precondition, so these
tests assert what is signed. Only real Cloud Storage enforces it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import google.oauth2.credentials
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from functions.config import Settings, get_settings
from functions.errors import ConfigError, TransientError
from functions.uploads.signing import SignedUpload, runtime_signer, sign_upload
from tests.fakes.iam import FakeIamCredentials
from tests.security import v4
from tests.security.conftest import BUCKET, CLOSED_ENDPOINT, MAX_UPLOAD_BYTES

pytestmark = pytest.mark.security

OBJECT_NAME = "voice-notes/user-1/0123456789abcdef0123456789abcdef.m4a"
CONTENT_TYPE = "audio/mp4"
SIGNED_HEADERS = ["content-type", "host", "x-goog-content-length-range", "x-goog-if-generation-match"]
RUNTIME_EMAIL = "braindump-functions@demo-braindump-security.iam.gserviceaccount.com"
RUNTIME_TOKEN = "ya29.local-test-token"

# Turns the (method, URL, headers) of the intended PUT into an attacker's variant.
Alter = Callable[[str, str, dict[str, str]], tuple[str, str, dict[str, str]]]


@pytest.fixture
def settings(backend_env: dict[str, str]) -> Settings:
    """The settings of ``backend_env``."""
    return get_settings()


@pytest.fixture
def signed(settings: Settings) -> SignedUpload:
    """A URL signed with the session's key file."""
    return sign_upload(settings, OBJECT_NAME, CONTENT_TYPE, dt.datetime.now(dt.UTC))


@pytest.fixture
def fake_iam() -> Iterator[FakeIamCredentials]:
    """The fake IAM Credentials API for :data:`RUNTIME_EMAIL`."""
    with FakeIamCredentials(email=RUNTIME_EMAIL, access_token=RUNTIME_TOKEN) as fake:
        yield fake


def _local_credentials(token: str = RUNTIME_TOKEN) -> google.oauth2.credentials.Credentials:
    # A fixed token with no expiry is valid, so nothing calls a token endpoint or the metadata server.
    return google.oauth2.credentials.Credentials(token=token)  # type: ignore[no-untyped-call]


def test_url_target(signed: SignedUpload) -> None:
    url = v4.parse(signed.url)

    assert url.host == CLOSED_ENDPOINT
    assert url.path == f"/{BUCKET}/{OBJECT_NAME}"
    assert url.query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"


def test_signed_headers(signed: SignedUpload, key_file: Path) -> None:
    url = v4.parse(signed.url)
    email = json.loads(key_file.read_text(encoding="utf-8"))["client_email"]

    assert url.signed_headers == SIGNED_HEADERS
    assert url.signer_email == email
    assert url.credential_scope == f"{url.query['X-Goog-Date'][:8]}/auto/storage/goog4_request"
    assert signed.headers == {
        "Content-Type": CONTENT_TYPE,
        "x-goog-content-length-range": f"0,{MAX_UPLOAD_BYTES}",
        "x-goog-if-generation-match": "0",
    }


def test_expiry_default(signed: SignedUpload) -> None:
    assert v4.parse(signed.url).query["X-Goog-Expires"] == "900"


def test_expiry_setting(backend_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLOAD_URL_TTL_SECONDS", "120")
    get_settings.cache_clear()
    now = dt.datetime.now(dt.UTC)

    signed = sign_upload(get_settings(), OBJECT_NAME, CONTENT_TYPE, now)

    assert v4.parse(signed.url).query["X-Goog-Expires"] == "120"
    assert signed.expires_at == now + dt.timedelta(seconds=120)


def test_signature_verifies(signed: SignedUpload, key_file_public_key: rsa.RSAPublicKey) -> None:
    assert v4.signature_valid("PUT", signed.url, signed.headers, key_file_public_key)


def _without(name: str) -> Alter:
    def alter(method: str, url: str, headers: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        return method, url, {key: value for key, value in headers.items() if key != name}

    return alter


def _header(name: str, value: str) -> Alter:
    def alter(method: str, url: str, headers: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        return method, url, {**headers, name: value}

    return alter


def _method(other: str) -> Alter:
    def alter(method: str, url: str, headers: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        return other, url, headers

    return alter


def _url(old: str, new: str) -> Alter:
    def alter(method: str, url: str, headers: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        assert old in url
        return method, url.replace(old, new, 1), headers

    return alter


ALTERED_REQUESTS = [
    pytest.param(_header("Content-Type", "text/html"), id="content-type-swap"),
    pytest.param(_header("Content-Type", "audio/mpeg"), id="content-type-other-audio"),
    pytest.param(_without("x-goog-content-length-range"), id="length-range-dropped"),
    pytest.param(_header("x-goog-content-length-range", "0,1073741824"), id="length-range-widened"),
    pytest.param(_without("x-goog-if-generation-match"), id="overwrite-precondition-dropped"),
    pytest.param(_header("x-goog-if-generation-match", "1"), id="overwrite-precondition-changed"),
    pytest.param(_method("GET"), id="method-get"),
    pytest.param(_method("DELETE"), id="method-delete"),
    pytest.param(_method("POST"), id="method-post-resumable"),
    pytest.param(_url("/voice-notes/user-1/", "/voice-notes/victim-uid/"), id="other-user-path"),
    pytest.param(_url(f"/{BUCKET}/", "/another-bucket/"), id="other-bucket"),
    pytest.param(_url("X-Goog-Expires=900", "X-Goog-Expires=604800"), id="expiry-extended"),
]


@pytest.mark.parametrize("alter", ALTERED_REQUESTS)
def test_altered_request_rejected(alter: Alter, signed: SignedUpload, key_file_public_key: rsa.RSAPublicKey) -> None:
    method, url, headers = alter("PUT", signed.url, dict(signed.headers))

    assert not v4.signature_valid(method, url, headers, key_file_public_key)


def test_iam_signature_verifies(settings: Settings, fake_iam: FakeIamCredentials) -> None:
    signer = runtime_signer(
        dataclasses.replace(settings, signing_key_file=None, signing_service_account=RUNTIME_EMAIL),
        _local_credentials(),
        iam_base_url=fake_iam.base_url,
    )

    signed = sign_upload(settings, OBJECT_NAME, CONTENT_TYPE, dt.datetime.now(dt.UTC), signer=signer)

    url = v4.parse(signed.url)
    assert url.signer_email == RUNTIME_EMAIL
    assert url.signed_headers == SIGNED_HEADERS
    assert v4.signature_valid("PUT", signed.url, signed.headers, fake_iam.public_key)
    assert not v4.signature_valid(
        "PUT", signed.url, {**signed.headers, "Content-Type": "text/html"}, fake_iam.public_key
    )


def test_iam_payload_is_string_to_sign(settings: Settings, fake_iam: FakeIamCredentials) -> None:
    signer = runtime_signer(
        dataclasses.replace(settings, signing_service_account=RUNTIME_EMAIL),
        _local_credentials(),
        iam_base_url=fake_iam.base_url,
    )

    signed = sign_upload(settings, OBJECT_NAME, CONTENT_TYPE, dt.datetime.now(dt.UTC), signer=signer)

    calls = fake_iam.calls
    assert len(calls) == 1
    assert calls[0].authorized
    assert calls[0].email == RUNTIME_EMAIL
    expected = v4.string_to_sign("PUT", v4.parse(signed.url), signed.headers)
    assert calls[0].payload == expected.encode()
    assert expected.startswith("GOOG4-RSA-SHA256\n")


def test_iam_token_rejected(settings: Settings, fake_iam: FakeIamCredentials) -> None:
    signer = runtime_signer(
        dataclasses.replace(settings, signing_service_account=RUNTIME_EMAIL),
        _local_credentials("ya29.wrong-token"),
        iam_base_url=fake_iam.base_url,
    )

    with pytest.raises(TransientError) as raised:
        sign_upload(settings, OBJECT_NAME, CONTENT_TYPE, dt.datetime.now(dt.UTC), signer=signer)

    assert raised.value.http_status == 503
    assert "HTTP 401" in raised.value.message
    assert len(fake_iam.calls) == 1


def test_iam_permission_denied(settings: Settings, fake_iam: FakeIamCredentials) -> None:
    other = "someone-else@demo-braindump-security.iam.gserviceaccount.com"
    signer = runtime_signer(
        dataclasses.replace(settings, signing_service_account=other),
        _local_credentials(),
        iam_base_url=fake_iam.base_url,
    )

    with pytest.raises(ConfigError) as raised:
        sign_upload(settings, OBJECT_NAME, CONTENT_TYPE, dt.datetime.now(dt.UTC), signer=signer)

    assert "roles/iam.serviceAccountTokenCreator" in raised.value.message


def test_runtime_email_missing(settings: Settings) -> None:
    with pytest.raises(ConfigError) as raised:
        runtime_signer(dataclasses.replace(settings, signing_service_account=None), _local_credentials())

    assert "SIGNING_SERVICE_ACCOUNT" in raised.value.message
