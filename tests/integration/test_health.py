"""Integration tests of ``health`` against the local stack and the fake Gemini server.

The functions run with ``EXTRACTOR=gemini`` against :class:`FakeGemini`, so all
three probes reach a server this module controls. Each test that stops a
service starts it again in ``finally``, and the module puts the stack's
original settings back when it ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import requests
from google.cloud import firestore

from devstack.stack import LocalStack
from functions.health_history import HISTORY_DOCUMENT, LATEST_DOCUMENT, history_path
from tests.fakes.gemini import FakeGemini

pytestmark = pytest.mark.timeout(600)

API_KEY = "fake-gemini-key"
COMMIT = "health-test-commit"
PROBE_TIMEOUT_SECONDS = 2
# The bound on the whole response: the probe timeout plus time for the request itself.
MARGIN_SECONDS = 2
HTTP_TIMEOUT_SECONDS = 30
RECOVERY_SECONDS = 30
SERVICES = ("config", "firebase", "storage", "gemini")
ALL_CONNECTED = dict.fromkeys(SERVICES, "connected")


class GeminiServer:
    """A :class:`FakeGemini` that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.fake = FakeGemini(api_key=API_KEY).start()
        self.port = int(self.fake.base_url.rsplit(":", 1)[1])
        self.running = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.running:
            self.fake.stop()
            self.running = False

    def start(self) -> None:
        if not self.running:
            self.fake = FakeGemini(api_key=API_KEY, port=self.port).start()
            self.running = True


class HangingServer:
    """A loopback TCP server that accepts connections and never responds."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        for connection in self._held:
            connection.close()
        self._socket.close()


def gemini_env(base_url: str) -> dict[str, str]:
    """Settings that point the functions' extractor at the fake Gemini server."""
    return {
        "EXTRACTOR": "gemini",
        "GEMINI_API_KEY": API_KEY,
        "GEMINI_BASE_URL": base_url,
        "HEALTH_GEMINI_CACHE_SECONDS": "0",
        "HEALTH_PROBE_TIMEOUT_SECONDS": str(PROBE_TIMEOUT_SECONDS),
        "GIT_COMMIT": COMMIT,
    }


@pytest.fixture(scope="module")
def gemini() -> Iterator[GeminiServer]:
    server = GeminiServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def health_stack(stack: LocalStack, gemini: GeminiServer) -> Iterator[LocalStack]:
    """The session stack with its functions using the fake Gemini server."""
    original = dict(stack.extra_env)
    stack.restart_functions(gemini_env(gemini.base_url))
    try:
        # A fresh Firestore emulator takes about 3 s for its first request,
        # longer than the probe timeout, so the tests start from a warm stack.
        assert wait_healthy(stack)["services"] == ALL_CONNECTED
        yield stack
    finally:
        stack.restart_functions(original)


@contextlib.contextmanager
def functions_with(stack: LocalStack, changes: Mapping[str, str]) -> Iterator[None]:
    """Run the functions with ``changes`` on top of their settings, then restore them."""
    original = dict(stack.extra_env)
    stack.restart_functions({**original, **changes})
    try:
        yield
    finally:
        stack.restart_functions(original)


def get_health(
    stack: LocalStack, *, token: str | None = None, headers: Mapping[str, str] | None = None
) -> requests.Response:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return requests.get(stack.endpoints.health, headers=sent, timeout=HTTP_TIMEOUT_SECONDS)


def wait_healthy(stack: LocalStack) -> dict[str, Any]:
    """Poll ``health`` until it reports healthy, after a service was started again."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = get_health(stack).json()
        if body["status"] == "healthy":
            return body
        time.sleep(0.5)
    return body


def error_lines(stack: LocalStack, since: tuple[int, int]) -> list[dict[str, Any]]:
    return [record for record in stack.functions.json_logs("health", since) if record["severity"] == "ERROR"]


@pytest.fixture
def token(health_stack: LocalStack, mint_token: Callable[..., str]) -> str:
    return mint_token("health-operator")


def test_health_all_connected(health_stack: LocalStack) -> None:
    reply = get_health(health_stack)

    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"status", "services", "version", "timestamp"}
    assert body["status"] == "healthy"
    assert body["services"] == ALL_CONNECTED
    assert body["version"] == COMMIT
    assert dt.datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert reply.headers["Cache-Control"] == "no-store"


def test_health_checks_with_token(health_stack: LocalStack, token: str) -> None:
    reply = get_health(health_stack, token=token)

    assert reply.status_code == 200
    checks = reply.json()["checks"]
    assert set(checks) == set(SERVICES)
    for name in SERVICES:
        assert checks[name]["status"] == "connected", name
        assert checks[name]["error"] is None, name
        assert isinstance(checks[name]["latencyMs"], int), name


def test_health_invalid_token_anonymous(health_stack: LocalStack) -> None:
    reply = get_health(health_stack, token="not.a.token")

    assert reply.status_code == 200
    assert set(reply.json()) == {"status", "services", "version", "timestamp"}


def test_health_unverifiable_token_anonymous(health_stack: LocalStack, token: str) -> None:
    # With CHECK_REVOKED the token check calls the Auth emulator host, where nothing listens.
    with functions_with(health_stack, {"CHECK_REVOKED": "true"}):
        reply = get_health(health_stack, token=token)

    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"status", "services", "version", "timestamp"}


def test_health_rejects_post(health_stack: LocalStack) -> None:
    reply = requests.post(health_stack.endpoints.health, timeout=HTTP_TIMEOUT_SECONDS)

    assert reply.status_code == 405
    assert reply.json()["error"]["code"] == "method_not_allowed"
    assert reply.headers["Allow"] == "GET"


@pytest.mark.parametrize(
    ("emulator", "service", "code"),
    [("firestore", "firebase", "unavailable"), ("storage", "storage", "connection_failed")],
    ids=["firestore", "fake-gcs"],
)
def test_health_emulator_down(health_stack: LocalStack, token: str, emulator: str, service: str, code: str) -> None:
    since = health_stack.functions.log_size("health")

    health_stack.stop_emulator(emulator)  # type: ignore[arg-type]
    try:
        reply = get_health(health_stack, token=token)
    finally:
        health_stack.start_emulator(emulator)  # type: ignore[arg-type]

    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "unhealthy"
    assert body["services"] == {**ALL_CONNECTED, service: "error"}
    assert body["checks"][service]["status"] == "error"
    assert body["checks"][service]["error"] == code
    errors = error_lines(health_stack, since)
    assert len(errors) == 1
    assert errors[0]["logging.googleapis.com/labels"] == {"function": "health", "probe": service, "error_code": code}
    assert wait_healthy(health_stack)["services"] == ALL_CONNECTED


def test_health_gemini_overloaded(health_stack: LocalStack, gemini: GeminiServer, token: str) -> None:
    gemini.fake.get_model_status = 503
    try:
        reply = get_health(health_stack, token=token)
    finally:
        gemini.fake.get_model_status = 200

    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "degraded"
    assert body["services"] == {**ALL_CONNECTED, "gemini": "error"}
    assert body["checks"]["gemini"]["error"] == "unavailable"
    assert "overloaded" not in reply.text
    assert "scripted" not in reply.text


def test_health_gemini_down(health_stack: LocalStack, gemini: GeminiServer, token: str) -> None:
    gemini.stop()
    try:
        # FakeGemini.stop() closes the listening socket but keeps serving open
        # keep-alive connections, so the functions restart to drop theirs.
        health_stack.restart_functions()
        since = health_stack.functions.log_size("health")
        reply = get_health(health_stack, token=token)
    finally:
        gemini.start()

    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "degraded"
    assert body["services"] == {**ALL_CONNECTED, "gemini": "error"}
    assert body["checks"]["gemini"]["error"] == "connection_failed"
    errors = error_lines(health_stack, since)
    assert [error["logging.googleapis.com/labels"]["probe"] for error in errors] == ["gemini"]
    assert wait_healthy(health_stack)["services"] == ALL_CONNECTED


@pytest.mark.parametrize(
    ("variable", "service", "http_code", "status"),
    [("STORAGE_EMULATOR_HOST", "storage", 503, "unhealthy"), ("GEMINI_BASE_URL", "gemini", 200, "degraded")],
    ids=["storage", "gemini"],
)
def test_health_hang_bounded(
    health_stack: LocalStack, token: str, variable: str, service: str, http_code: int, status: str
) -> None:
    hanging = HangingServer()
    try:
        with functions_with(health_stack, {variable: hanging.url}):
            # The first call pays for imports and client creation, which is not
            # what this bound is about.
            get_health(health_stack, token=token)

            started = time.monotonic()
            reply = get_health(health_stack, token=token)
            elapsed = time.monotonic() - started
    finally:
        hanging.close()

    assert elapsed <= PROBE_TIMEOUT_SECONDS + MARGIN_SECONDS
    assert reply.status_code == http_code
    body = reply.json()
    assert body["status"] == status
    assert body["services"] == {**ALL_CONNECTED, service: "unhealthy"}
    assert body["checks"][service]["error"] == "timeout"


def test_health_config_invalid(health_stack: LocalStack, token: str) -> None:
    with functions_with(health_stack, {"UPLOADS_PER_HOUR": "many"}):
        since = health_stack.functions.log_size("health")
        reply = get_health(health_stack, token=token)
        errors = error_lines(health_stack, since)

    assert reply.status_code == 503
    body = reply.json()
    assert set(body) == {"status", "services", "version", "timestamp"}
    assert body["status"] == "unhealthy"
    assert body["services"] == dict.fromkeys(SERVICES, "error")
    assert "UPLOADS_PER_HOUR" not in reply.text
    assert len(errors) == 1
    assert errors[0]["logging.googleapis.com/labels"] == {
        "function": "health",
        "probe": "config",
        "error_code": "config_invalid",
    }
    assert "UPLOADS_PER_HOUR='many'" in errors[0]["message"]


def _db(stack: LocalStack) -> firestore.Client:
    return firestore.Client(project=stack.project_id)


def test_health_scheduled_records(health_stack: LocalStack) -> None:
    health_stack.reset()

    reply = get_health(health_stack, headers={"X-CloudScheduler": "true"})

    assert reply.status_code == 200
    body = reply.json()
    assert "checks" not in body
    db = _db(health_stack)
    latest = db.document(LATEST_DOCUMENT).get().to_dict()
    assert latest is not None
    checked_at = latest.pop("checkedAt")
    assert checked_at == dt.datetime.fromisoformat(body["timestamp"])
    assert latest["status"] == "healthy"
    assert latest["services"] == ALL_CONNECTED
    assert latest["version"] == COMMIT
    assert latest["timestamp"] == body["timestamp"]
    assert set(latest["checks"]) == set(SERVICES)
    assert {check["error"] for check in latest["checks"].values()} == {None}
    history = db.document(history_path(checked_at)).get().to_dict()
    assert history == {**latest, "checkedAt": checked_at}
    day = db.document(HISTORY_DOCUMENT).collection(f"{checked_at:%Y-%m-%d}")
    assert len(list(day.stream())) == 1


@pytest.mark.parametrize("headers", [{}, {"X-CloudScheduler": "false"}], ids=["no-header", "false"])
def test_health_unscheduled_no_record(health_stack: LocalStack, headers: dict[str, str]) -> None:
    health_stack.reset()

    reply = get_health(health_stack, headers=headers)

    assert reply.status_code == 200
    assert _db(health_stack).document(LATEST_DOCUMENT).get().exists is False


def test_health_scheduled_sweeps_abandoned(health_stack: LocalStack) -> None:
    health_stack.reset()
    db = _db(health_stack)
    expired = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    abandoned = db.document("users/sweep-user/voiceNotes/0123456789abcdef0123456789abcdef")
    abandoned.set({"status": "awaiting_upload", "uploadExpiresAt": expired, "attempt": 0, "history": []})
    fresh = db.document("users/sweep-user/voiceNotes/fedcba9876543210fedcba9876543210")
    fresh.set({"status": "awaiting_upload", "uploadExpiresAt": dt.datetime.now(dt.UTC), "attempt": 0, "history": []})

    unscheduled = get_health(health_stack)
    assert unscheduled.status_code == 200
    assert abandoned.get().to_dict()["status"] == "awaiting_upload"

    reply = get_health(health_stack, headers={"X-CloudScheduler": "true"})

    assert reply.status_code == 200
    swept = abandoned.get().to_dict()
    assert swept["status"] == "failed"
    assert swept["failure"]["reason"] == "upload_missing"
    assert fresh.get().to_dict()["status"] == "awaiting_upload"
