"""Unit tests of the JSON log formatter, trace parsing and the log level setting."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from functions.log import (
    LABELS_KEY,
    TRACE_KEY,
    CloudLoggingFormatter,
    log_context,
    resolve_level,
    trace_from_headers,
    uid_hash,
)

PROJECT = "demo-braindump"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
BASE_ENV = {"GOOGLE_CLOUD_PROJECT": PROJECT, "UPLOAD_BUCKET": "bucket", "EXTRACTOR": "offline"}


class Capture:
    """A logger whose records are formatted by :class:`CloudLoggingFormatter` into a buffer."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(CloudLoggingFormatter())
        self.logger = logging.getLogger("tests.unit.test_log.capture")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.handlers[:] = [self.handler]

    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]


@pytest.fixture
def capture() -> Iterator[Capture]:
    captured = Capture()
    yield captured
    captured.logger.handlers.clear()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}, TRACE_ID),
        ({"traceparent": f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01"}, TRACE_ID),
        ({"X-Cloud-Trace-Context": f"{TRACE_ID}/1234567890;o=1"}, TRACE_ID),
        ({"X-Cloud-Trace-Context": TRACE_ID}, TRACE_ID),
        ({"X-Cloud-Trace-Context": f"{TRACE_ID.upper()};o=0"}, TRACE_ID),
        (
            {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "X-Cloud-Trace-Context": f"{'a' * 32}/1;o=1"},
            TRACE_ID,
        ),
        ({"traceparent": "garbage", "X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1"}, TRACE_ID),
    ],
    ids=[
        "traceparent",
        "traceparent-upper",
        "cloud-trace",
        "cloud-trace-bare",
        "cloud-trace-upper",
        "both",
        "bad-traceparent",
    ],
)
def test_trace_from_headers(headers: dict[str, str], expected: str) -> None:
    assert trace_from_headers(headers, PROJECT) == f"projects/{PROJECT}/traces/{expected}"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": ""},
        {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"},
        {"traceparent": "00-abc-00f067aa0ba902b7-01"},
        {"X-Cloud-Trace-Context": "not-a-trace/1;o=1"},
        {"X-Cloud-Trace-Context": f"{TRACE_ID}\nextra"},
        {"X-Cloud-Trace-Context": "0" * 32},
    ],
    ids=["none", "empty", "zero-trace", "short-trace", "cloud-trace-text", "cloud-trace-newline", "cloud-trace-zero"],
)
def test_trace_invalid_ignored(headers: dict[str, str]) -> None:
    assert trace_from_headers(headers, PROJECT) is None


def test_formatter_fields(capture: Capture) -> None:
    capture.logger.warning("note %s is %d bytes", "n1", 42)

    [entry] = capture.entries()
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "note n1 is 42 bytes"
    assert entry["logger"] == "tests.unit.test_log.capture"
    assert entry["logging.googleapis.com/sourceLocation"]["function"] == "test_formatter_fields"
    assert LABELS_KEY not in entry
    assert TRACE_KEY not in entry
    assert "exception" not in entry


def test_formatter_labels_and_trace(capture: Capture) -> None:
    trace = f"projects/{PROJECT}/traces/{TRACE_ID}"

    with log_context(trace=trace, function="process_audio", event_id="e-1", attempt=2):
        with log_context(note_id="n1", uid_hash=uid_hash("user-1"), event_id=None):
            capture.logger.info("inner", extra={"labels": {"probe": "storage", "skipped": None}})
        capture.logger.info("outer")
    capture.logger.info("after")

    inner, outer, after = capture.entries()
    assert inner[TRACE_KEY] == trace
    assert inner[LABELS_KEY] == {
        "function": "process_audio",
        "event_id": "e-1",
        "attempt": "2",
        "note_id": "n1",
        "uid_hash": uid_hash("user-1"),
        "probe": "storage",
    }
    assert outer[LABELS_KEY] == {"function": "process_audio", "event_id": "e-1", "attempt": "2"}
    assert outer[TRACE_KEY] == trace
    assert LABELS_KEY not in after
    assert TRACE_KEY not in after


def test_formatter_exception(capture: Capture) -> None:
    try:
        raise ValueError("bad value 7")
    except ValueError:
        capture.logger.exception("step failed")

    [entry] = capture.entries()
    assert entry["severity"] == "ERROR"
    assert entry["message"] == "step failed"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ValueError: bad value 7")


def test_formatter_one_line(capture: Capture) -> None:
    capture.logger.info("first\nsecond")

    assert capture.text().count("\n") == 1
    assert capture.entries()[0]["message"] == "first\nsecond"


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl"
SIGNED_URL = (
    "http://127.0.0.1:4443/bucket/voice-notes/u/n.m4a?X-Goog-Algorithm=GOOG4-RSA-SHA256"
    "&X-Goog-Credential=sa%40p.iam.gserviceaccount.com&X-Goog-Signature=abcdef0123456789"
)
API_KEY = "AIzaSyA1234567890abcdefghijklmnopqrstuv"


@pytest.mark.parametrize(
    ("message", "args", "secret", "kept"),
    [
        ("header %s", (f"Bearer {JWT}",), JWT, "Bearer [redacted]"),
        ("token %s", (JWT,), JWT, "[redacted JWT]"),
        ("url %s", (SIGNED_URL,), "X-Goog-Signature", "/voice-notes/u/n.m4a?[redacted query]"),
        ("key %s", (API_KEY,), API_KEY, "[redacted API key]"),
        ("audio %r", (b"\x00\x01RIFF" * 10,), "RIFF", "<60 bytes>"),
        ("audio %(data)s", ({"data": bytearray(b"ID3" * 4)},), "ID3", "<12 bytes>"),
    ],
    ids=["bearer", "jwt", "signed-url", "api-key", "bytes", "bytes-mapping"],
)
def test_formatter_redacts(capture: Capture, message: str, args: tuple[Any, ...], secret: str, kept: str) -> None:
    capture.logger.info(message, *args)

    assert secret not in capture.text()
    assert kept in capture.entries()[0]["message"]


def test_exception_redacted(capture: Capture) -> None:
    try:
        raise RuntimeError(f"request with Authorization: Bearer {JWT} failed")
    except RuntimeError:
        capture.logger.exception("call failed")

    assert JWT not in capture.text()
    assert "Bearer [redacted]" in capture.entries()[0]["exception"]


@pytest.mark.parametrize(
    ("environ", "level", "warned"),
    [
        (BASE_ENV, "INFO", False),
        ({**BASE_ENV, "LOG_LEVEL": "debug"}, "DEBUG", False),
        ({**BASE_ENV, "LOG_LEVEL": "WARNING"}, "WARNING", False),
        ({**BASE_ENV, "LOG_LEVEL": "LOUD"}, "INFO", True),
        ({"LOG_LEVEL": "DEBUG"}, "INFO", True),
        ({**BASE_ENV, "UPLOADS_PER_HOUR": "many", "LOG_LEVEL": "DEBUG"}, "INFO", True),
    ],
    ids=["default", "debug", "warning", "unknown-level", "missing-project", "invalid-setting"],
)
def test_resolve_level(environ: dict[str, str], level: str, warned: bool) -> None:
    resolved, warning = resolve_level(environ)

    assert resolved == level
    assert (warning is not None) is warned


def test_resolve_level_names_variable() -> None:
    _, warning = resolve_level({**BASE_ENV, "LOG_LEVEL": "LOUD"})

    assert warning is not None
    assert "LOG_LEVEL='LOUD'" in warning


def test_uid_hash_stable() -> None:
    assert uid_hash("user-1") == uid_hash("user-1")
    assert uid_hash("user-1") != uid_hash("user-2")
    assert len(uid_hash("user-1")) == 12
    assert "user-1" not in uid_hash("user-1")
