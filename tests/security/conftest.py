"""Fixtures for the security suite: the backend in-process, a real Firestore emulator and fake Google keys.

The functions run in this process through functions-framework's test client,
so firebase-admin really verifies RS256 tokens: its certificate fetch is routed
to :class:`tests.fakes.certs.CertificateServer` on 127.0.0.1 (see
:func:`route_certificates`). Firestore is the Cloud SDK emulator, started once
per session. Nothing listens at ``STORAGE_EMULATOR_HOST``, because signing a
URL makes no request and the tests assert what is signed, not what
fake-gcs-server enforces.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import functions_framework
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.cloud import firestore

from devstack.emulators import FirestoreEmulator
from devstack.keys import write_signing_key
from devstack.processes import MissingDependencyError
from functions.clients import firebase_app, firestore_client, reset_clients
from functions.config import get_settings
from tests.fakes.certs import CertificateServer, SigningKey
from tests.security.tokens import TokenMint

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
MAIN_SOURCE = REPO_ROOT / "main.py"
PROJECT_ID = "demo-braindump-security"
BUCKET = "braindump-security-uploads"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOADS_PER_HOUR = 3
UPLOADS_PER_DAY = 5
# Port 9 (discard) has no listener here, so a request to it is refused at once.
CLOSED_ENDPOINT = "127.0.0.1:9"

GOOGLE_CERTS_PREFIX = "https://www.googleapis.com/robot/v1/metadata/x509/"

VALID_BODY: dict[str, Any] = {"contentType": "audio/mp4", "sizeBytes": 50_597, "timezone": "Europe/Berlin"}


class LoopbackAdapter(requests.adapters.HTTPAdapter):
    """Sends every request it is mounted for to ``base_url`` with the same path and query."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self._base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urllib.parse.urlsplit(request.url or "")
        request.url = f"{self._base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def route_certificates(base_url: str) -> None:
    """Send firebase-admin's fetch of Google's ID token certificates to ``base_url``.

    firebase-admin 7.7.0 has no option for the certificate URL: ``TokenVerifier``
    fetches the fixed ``ID_TOKEN_CERT_URI`` through ``CertificateFetchRequest``,
    a google-auth transport over a ``requests.Session``. Mounting an adapter on
    that session for the certificate URL's prefix changes only where the bytes
    come from. The SDK code is not replaced, so its header, audience, issuer,
    subject, signature and expiry checks all run.
    """
    from firebase_admin import auth

    verifier = auth._get_client(firebase_app())._token_verifier
    verifier.request.session.mount(GOOGLE_CERTS_PREFIX, LoopbackAdapter(base_url))


def refresh_backend() -> None:
    """Drop cached settings and clients, so the next request reads the environment again."""
    get_settings.cache_clear()
    reset_clients()


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    """The Firestore emulator on 127.0.0.1, for the whole session."""
    emulator = FirestoreEmulator(log_dir=tmp_path_factory.mktemp("firestore-logs"))
    try:
        emulator.start()
    except MissingDependencyError as err:
        pytest.fail(f"the Firestore emulator cannot start: {err}", pytrace=False)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service-account key file generated for this session, for ``SIGNING_KEY_FILE``."""
    return write_signing_key(tmp_path_factory.mktemp("signing"), PROJECT_ID)


@pytest.fixture(scope="session")
def key_file_public_key(key_file: Path) -> rsa.RSAPublicKey:
    """The public half of the key in ``key_file``."""
    pem = json.loads(key_file.read_text(encoding="utf-8"))["private_key"].encode()
    private_key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    return private_key.public_key()


@pytest.fixture(scope="session")
def mint() -> TokenMint:
    """Mints genuine and forged ID tokens for :data:`PROJECT_ID`."""
    return TokenMint(
        key=SigningKey.generate("test-key-1"), rogue=SigningKey.generate("rogue-key"), project_id=PROJECT_ID
    )


@pytest.fixture(scope="session")
def cert_server(mint: TokenMint) -> Iterator[CertificateServer]:
    """Serves the certificate of ``mint.key`` (not of the rogue key) in Google's format."""
    with CertificateServer([mint.key]) as server:
        yield server


@pytest.fixture
def backend_env(
    monkeypatch: pytest.MonkeyPatch, firestore_emulator: FirestoreEmulator, key_file: Path
) -> Iterator[dict[str, str]]:
    """The backend's environment for one test, with an empty Firestore.

    ``GOOGLE_APPLICATION_CREDENTIALS`` names the local key file, because
    firebase-admin loads application default credentials when it creates its
    Auth client, and without a file google-auth would probe the metadata server.
    """
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT_ID,
        "UPLOAD_BUCKET": BUCKET,
        "EXTRACTOR": "offline",
        "SIGNING_KEY_FILE": str(key_file),
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.endpoint,
        "STORAGE_EMULATOR_HOST": f"http://{CLOSED_ENDPOINT}",
        "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        "UPLOADS_PER_HOUR": str(UPLOADS_PER_HOUR),
        "UPLOADS_PER_DAY": str(UPLOADS_PER_DAY),
        "NO_GCE_CHECK": "true",
    }
    for name in ("FIREBASE_AUTH_EMULATOR_HOST", "GCLOUD_PROJECT", "SIGNING_SERVICE_ACCOUNT", "GEMINI_API_KEY",
                 "UPLOAD_URL_TTL_SECONDS", "CHECK_REVOKED"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    refresh_backend()
    firestore_emulator.reset(PROJECT_ID)
    yield env
    refresh_backend()


@pytest.fixture
def real_auth(backend_env: dict[str, str], cert_server: CertificateServer) -> CertificateServer:
    """Production token verification (RS256 against the fake certificate server)."""
    route_certificates(cert_server.base_url)
    return cert_server


@pytest.fixture
def emulator_auth(backend_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Token verification as with the Auth emulator, which accepts unsigned tokens.

    firebase-admin makes no request to the emulator host without ``CHECK_REVOKED``,
    so a closed port serves.
    """
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", CLOSED_ENDPOINT)
    refresh_backend()


@pytest.fixture(scope="session")
def upload_app() -> flask.Flask:
    """The ``upload_url`` entry point of ``main.py`` as functions-framework serves it."""
    app: flask.Flask = functions_framework.create_app(target="upload_url", source=str(MAIN_SOURCE))  # type: ignore[no-untyped-call]
    return app


@pytest.fixture(scope="session")
def health_app() -> flask.Flask:
    """The ``health`` entry point of ``main.py`` as functions-framework serves it."""
    app: flask.Flask = functions_framework.create_app(target="health", source=str(MAIN_SOURCE))  # type: ignore[no-untyped-call]
    return app


@pytest.fixture
def db(backend_env: dict[str, str]) -> firestore.Client:
    """The backend's Firestore client, on the emulator, bypassing security rules."""
    return firestore_client()


def note_count(client: firestore.Client) -> int:
    """Return how many voice notes exist for all users together."""
    return len(list(client.collection_group("voiceNotes").stream()))


def stored(client: firestore.Client, path: str) -> dict[str, Any]:
    """Return the document at ``path``, failing the test when it does not exist."""
    document = client.document(path).get().to_dict()
    assert document is not None, f"document {path} does not exist"
    return document
