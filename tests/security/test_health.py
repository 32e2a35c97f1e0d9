"""``health`` must report service states without leaking any setting value or secret.

Anonymous callers get the statuses only and callers with a valid ID token also
get per-probe ``checks``; neither may contain a setting value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from werkzeug.test import TestResponse

from devstack.emulators import FakeGcsServer
from functions.extraction import get_extractor
from tests.fakes.certs import CertificateServer
from tests.fakes.gemini import FakeGemini
from tests.security.conftest import BUCKET, CLOSED_ENDPOINT, PROJECT_ID, refresh_backend, route_certificates
from tests.security.tokens import TokenMint

pytestmark = pytest.mark.security

API_KEY = "sentinel-gemini-key-4d1f0c"
MODEL = "sentinel-model-b7e2"
SERVICE_ACCOUNT = "sentinel-signer@demo-braindump-security.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcsServer]:
    """fake-gcs-server with the upload bucket; it never publishes, so its Pub/Sub endpoint is a closed port."""
    server = FakeGcsServer(
        log_dir=tmp_path_factory.mktemp("gcs-logs"),
        project_id=PROJECT_ID,
        topic="unused",
        pubsub_endpoint=CLOSED_ENDPOINT,
    )
    server.start()
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture
def leaky_env(
    backend_env: dict[str, str], fake_gcs: FakeGcsServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """``backend_env`` with the Gemini extractor and a value in every secret-bearing setting."""
    with FakeGemini() as gemini:
        extra = {
            "STORAGE_EMULATOR_HOST": fake_gcs.base_url,
            "EXTRACTOR": "gemini",
            "GEMINI_API_KEY": API_KEY,
            "GEMINI_MODEL": MODEL,
            "GEMINI_BASE_URL": gemini.base_url,
            "SIGNING_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
            "HEALTH_GEMINI_CACHE_SECONDS": "0",
        }
        for name, value in extra.items():
            monkeypatch.setenv(name, value)
        _refresh()
        yield {**backend_env, **extra}
        _refresh()


def _refresh() -> None:
    # The extractor is cached per instance, so a new GEMINI_BASE_URL needs a new one.
    refresh_backend()
    get_extractor.cache_clear()


def _get(app: flask.Flask, authorization: str | None) -> TestResponse:
    headers = {"Authorization": authorization} if authorization else {}
    return app.test_client().get("/", headers=headers)


def _assert_no_setting(text: str, env: dict[str, str]) -> None:
    assert "Traceback" not in text
    for value in _setting_values(env):
        assert value not in text, f"health response contains the setting value {value!r}"


def _setting_values(env: dict[str, str]) -> list[str]:
    """Return every value that must not appear, including the key file's name and contents."""
    key_file = Path(env["SIGNING_KEY_FILE"])
    values = [
        value for value in env.values() if len(value) > 3 and not value.isdigit() and value not in ("true", "gemini")
    ]
    values += [key_file.name, key_file.read_text(encoding="utf-8")[200:260]]
    return values


CALLERS = [pytest.param(False, id="anonymous"), pytest.param(True, id="signed-in")]


@pytest.mark.parametrize("signed_in", CALLERS)
def test_health_leaks_nothing(
    signed_in: bool, health_app: flask.Flask, leaky_env: dict[str, str], real_auth: CertificateServer, mint: TokenMint
) -> None:
    response = _get(health_app, f"Bearer {mint.token('user-1')}" if signed_in else None)

    text = response.get_data(as_text=True)
    assert response.status_code == 200, text
    body = response.get_json()
    assert body["status"] == "healthy"
    assert ("checks" in body) is signed_in
    _assert_no_setting(text, leaky_env)


@pytest.mark.parametrize("signed_in", CALLERS)
def test_health_failure_leaks_nothing(
    signed_in: bool,
    health_app: flask.Flask,
    leaky_env: dict[str, str],
    real_auth: CertificateServer,
    mint: TokenMint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A refused connection makes the Gemini probe fail with an error whose text names the URL.
    base_url = f"http://{CLOSED_ENDPOINT}/{API_KEY}"
    monkeypatch.setenv("GEMINI_BASE_URL", base_url)
    _refresh()
    # The refresh replaced the firebase-admin app, so its certificate fetch is routed again.
    route_certificates(real_auth.base_url)

    response = _get(health_app, f"Bearer {mint.token('user-1')}" if signed_in else None)

    text = response.get_data(as_text=True)
    assert response.status_code == 200, text
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["services"]["gemini"] != "connected"
    _assert_no_setting(text, {**leaky_env, "GEMINI_BASE_URL": base_url})
