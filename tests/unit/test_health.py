"""Unit tests of the health status logic, error codes, the probe runner and its cache."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import threading
from collections.abc import Iterator

import httpx
import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.genai import errors as genai_errors

from functions import __version__
from functions.config import Settings
from functions.errors import ConfigError, TransientError
from functions.health_history import history_path
from functions.health_probes import Probe, ProbeRunner, error_code
from functions.health_status import (
    ProbeResult,
    backend_version,
    health_body,
    http_status,
    overall_status,
    public_body,
)
from functions.log import CloudLoggingFormatter, log_context

SETTINGS = Settings(
    project_id="demo-braindump",
    bucket="bucket",
    extractor="offline",
    health_probe_timeout_seconds=1,
    health_gemini_cache_seconds=60,
)
OK = ProbeResult("connected", 5)
DOWN = ProbeResult("error", 7, "unavailable")
SLOW = ProbeResult("unhealthy", 3000, "timeout")


class FakeClock:
    """A monotonic clock that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingCheck:
    """A probe check that counts calls and raises ``error`` when set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    def __call__(self, settings: Settings) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    # Lets a hanging probe thread end with the test.
    event.set()


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ({"config": OK, "firebase": OK, "storage": OK, "gemini": OK}, "healthy"),
        ({"config": OK, "firebase": OK, "storage": OK, "gemini": DOWN}, "degraded"),
        ({"config": OK, "firebase": OK, "storage": OK, "gemini": SLOW}, "degraded"),
        ({"config": OK, "firebase": DOWN, "storage": OK, "gemini": OK}, "unhealthy"),
        ({"config": OK, "firebase": OK, "storage": SLOW, "gemini": OK}, "unhealthy"),
        ({"config": DOWN, "firebase": OK, "storage": OK, "gemini": OK}, "unhealthy"),
        ({"config": OK, "firebase": OK, "storage": DOWN, "gemini": DOWN}, "unhealthy"),
    ],
    ids=["all-ok", "gemini-error", "gemini-timeout", "firestore-error", "storage-timeout", "config-error", "two-down"],
)
def test_overall_status(results: dict[str, ProbeResult], expected: str) -> None:
    assert overall_status(results) == expected


@pytest.mark.parametrize(
    ("status", "code"),
    [("healthy", 200), ("degraded", 200), ("unhealthy", 503)],
    ids=["healthy", "degraded", "unhealthy"],
)
def test_http_status(status: str, code: int) -> None:
    assert http_status(status) == code  # type: ignore[arg-type]


def _chained(outer: Exception, cause: Exception) -> Exception:
    try:
        raise outer from cause
    except Exception as err:  # noqa: BLE001 - the test only needs the chained instance
        return err


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TimeoutError("slow"), "timeout"),
        (api_exceptions.DeadlineExceeded("slow"), "timeout"),
        (api_exceptions.RetryError("gave up", None), "timeout"),
        (requests.ReadTimeout("slow"), "timeout"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (api_exceptions.ServiceUnavailable("down"), "unavailable"),
        (api_exceptions.NotFound("no bucket"), "not_found"),
        (api_exceptions.Forbidden("no access"), "permission_denied"),
        (api_exceptions.Unauthenticated("no creds"), "unauthenticated"),
        (api_exceptions.TooManyRequests("slow down"), "rate_limited"),
        (api_exceptions.InternalServerError("boom"), "server_error"),
        (api_exceptions.BadRequest("bad"), "rejected"),
        (genai_errors.ServerError(503, {"error": {"message": "overloaded"}}), "unavailable"),
        (genai_errors.ClientError(429, {"error": {"message": "quota"}}), "rate_limited"),
        (requests.ConnectionError("refused"), "connection_failed"),
        (ConnectionRefusedError("refused"), "connection_failed"),
        (_chained(TransientError("Gemini model is not reachable"), httpx.ConnectError("refused")), "connection_failed"),
        (_chained(TransientError("Gemini model is not reachable"), genai_errors.ServerError(503, {})), "unavailable"),
        (TransientError("try later"), "unavailable"),
        (ConfigError("GEMINI_API_KEY is not set"), "config_invalid"),
        (ModuleNotFoundError("No module named 'vosk'"), "not_installed"),
        (ValueError("odd"), "failed"),
    ],
    ids=[
        "timeout",
        "deadline",
        "retry-error",
        "requests-timeout",
        "httpx-timeout",
        "unavailable",
        "not-found",
        "forbidden",
        "unauthenticated",
        "too-many",
        "internal",
        "bad-request",
        "genai-503",
        "genai-429",
        "requests-connection",
        "refused",
        "transient-connect",
        "transient-503",
        "transient-bare",
        "config",
        "missing-module",
        "other",
    ],
)
def test_error_code(error: Exception, expected: str) -> None:
    assert error_code(error) == expected


def test_error_code_no_message() -> None:
    assert error_code(ValueError("password=hunter2")) == "failed"


def test_runner_all_connected() -> None:
    checks = {name: CountingCheck() for name in ("firebase", "storage", "gemini")}
    runner = ProbeRunner(tuple(Probe(name, check) for name, check in checks.items()))

    results = runner.run(SETTINGS)

    assert list(results) == ["firebase", "storage", "gemini"]
    assert {result.status for result in results.values()} == {"connected"}
    assert {result.error_code for result in results.values()} == {None}
    assert [check.calls for check in checks.values()] == [1, 1, 1]


def test_runner_error_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    runner = ProbeRunner(
        (Probe("firebase", CountingCheck()), Probe("storage", CountingCheck(requests.ConnectionError("refused"))))
    )

    with caplog.at_level(logging.INFO, logger="functions.health_probes"):
        results = runner.run(SETTINGS)

    assert results["storage"].status == "error"
    assert results["storage"].error_code == "connection_failed"
    assert results["firebase"].status == "connected"
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].labels == {"probe": "storage", "error_code": "connection_failed"}  # type: ignore[attr-defined]
    assert "ConnectionError: refused" in errors[0].getMessage()


def test_runner_thread_keeps_context() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    probes_logger = logging.getLogger("functions.health_probes")
    probes_logger.addHandler(handler)
    runner = ProbeRunner((Probe("storage", CountingCheck(requests.ConnectionError("refused"))),))

    try:
        with log_context(trace="projects/p/traces/t", function="health"):
            runner.run(SETTINGS)
    finally:
        probes_logger.removeHandler(handler)

    [entry] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["logging.googleapis.com/trace"] == "projects/p/traces/t"
    assert entry["logging.googleapis.com/labels"] == {
        "function": "health",
        "probe": "storage",
        "error_code": "connection_failed",
    }


def test_runner_hang_times_out(release: threading.Event, caplog: pytest.LogCaptureFixture) -> None:
    finished = threading.Event()

    def hang(settings: Settings) -> None:
        release.wait(30)
        finished.set()

    runner = ProbeRunner((Probe("firebase", CountingCheck()), Probe("storage", hang)))

    with caplog.at_level(logging.INFO, logger="functions.health_probes"):
        results = runner.run(SETTINGS)
        release.set()
        assert finished.wait(5)

    assert results["storage"] == ProbeResult("unhealthy", 1000, "timeout")
    assert results["firebase"].status == "connected"
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors] == ["health probe storage timed out after 1 s"]


def test_runner_caches_result() -> None:
    clock = FakeClock()
    gemini = CountingCheck()
    runner = ProbeRunner((Probe("gemini", gemini, cache_seconds=lambda settings: 60),), clock=clock)

    first = runner.run(SETTINGS)
    clock.now += 59
    second = runner.run(SETTINGS)
    clock.now += 2
    third = runner.run(SETTINGS)

    assert first["gemini"].cached is False
    assert second["gemini"].cached is True
    assert second["gemini"].status == "connected"
    assert third["gemini"].cached is False
    assert gemini.calls == 2


def test_runner_caches_failure() -> None:
    clock = FakeClock()
    gemini = CountingCheck(genai_errors.ServerError(503, {}))
    runner = ProbeRunner((Probe("gemini", gemini, cache_seconds=lambda settings: 60),), clock=clock)

    runner.run(SETTINGS)
    clock.now += 30
    second = runner.run(SETTINGS)

    assert second["gemini"] == ProbeResult("error", 0, "unavailable", cached=True)
    assert gemini.calls == 1


def test_runner_cache_disabled() -> None:
    gemini = CountingCheck()
    runner = ProbeRunner((Probe("gemini", gemini, cache_seconds=lambda settings: 0),))

    runner.run(SETTINGS)
    runner.run(SETTINGS)

    assert gemini.calls == 2


def test_runner_clear_cache() -> None:
    gemini = CountingCheck()
    runner = ProbeRunner((Probe("gemini", gemini, cache_seconds=lambda settings: 60),))

    runner.run(SETTINGS)
    runner.clear_cache()
    runner.run(SETTINGS)

    assert gemini.calls == 2


def test_runner_client_timeout_unhealthy() -> None:
    runner = ProbeRunner((Probe("storage", CountingCheck(requests.ReadTimeout("read timed out"))),))

    results = runner.run(SETTINGS)

    assert results["storage"].status == "unhealthy"
    assert results["storage"].error_code == "timeout"


def test_runner_prepare_fails() -> None:
    check = CountingCheck()
    prepare = CountingCheck(ModuleNotFoundError("No module named 'vosk'"))
    runner = ProbeRunner((Probe("gemini", check, prepare=prepare),))

    results = runner.run(SETTINGS)

    assert results["gemini"] == ProbeResult("error", 0, "not_installed")
    assert prepare.calls == 1
    assert check.calls == 0


def test_runner_uncached_probe() -> None:
    firestore = CountingCheck()
    runner = ProbeRunner((Probe("firebase", firestore),))

    runner.run(SETTINGS)
    runner.run(SETTINGS)

    assert firestore.calls == 2


def test_health_body_shape() -> None:
    checked_at = dt.datetime(2026, 3, 1, 12, 5, tzinfo=dt.UTC)
    results = {
        "config": OK,
        "firebase": OK,
        "storage": OK,
        "gemini": ProbeResult("error", 12, "unavailable", cached=True),
    }

    body = health_body(results, checked_at, "abc123")

    assert body == {
        "status": "degraded",
        "services": {"config": "connected", "firebase": "connected", "storage": "connected", "gemini": "error"},
        "checks": {
            "config": {"status": "connected", "latencyMs": 5, "error": None},
            "firebase": {"status": "connected", "latencyMs": 5, "error": None},
            "storage": {"status": "connected", "latencyMs": 5, "error": None},
            "gemini": {"status": "error", "latencyMs": 12, "error": "unavailable", "cached": True},
        },
        "version": "abc123",
        "timestamp": "2026-03-01T12:05:00+00:00",
    }


def test_public_body_statuses_only() -> None:
    body = health_body({"firebase": DOWN}, dt.datetime(2026, 3, 1, tzinfo=dt.UTC), "v")

    assert public_body(body) == {
        "status": "unhealthy",
        "services": {"firebase": "error"},
        "version": "v",
        "timestamp": "2026-03-01T00:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"GIT_COMMIT": "0123abc", "K_REVISION": "health-00007-xyz"}, "0123abc"),
        ({"K_REVISION": "health-00007-xyz"}, "health-00007-xyz"),
        ({"GIT_COMMIT": "  ", "K_REVISION": ""}, __version__),
        ({}, __version__),
    ],
    ids=["commit", "revision", "blank", "none"],
)
def test_backend_version(environ: dict[str, str], expected: str) -> None:
    assert backend_version(environ) == expected


@pytest.mark.parametrize(
    ("checked_at", "expected"),
    [
        (dt.datetime(2026, 3, 1, 23, 55, 42, tzinfo=dt.UTC), "_health/history/2026-03-01/23:55"),
        (
            dt.datetime(2026, 3, 1, 23, 55, tzinfo=dt.timezone(dt.timedelta(hours=-2))),
            "_health/history/2026-03-02/01:55",
        ),
    ],
    ids=["utc", "offset"],
)
def test_history_path(checked_at: dt.datetime, expected: str) -> None:
    assert history_path(checked_at) == expected
