"""JSON log lines for Cloud Logging, with trace and note correlation.

Cloud Run (and so Cloud Functions gen2) parses each stdout line that is a JSON
object: ``severity`` and ``message`` become the entry's level and text,
``logging.googleapis.com/trace`` links the entry to its request trace,
``logging.googleapis.com/labels`` becomes filterable labels and
``logging.googleapis.com/sourceLocation`` the source line.

The labels in use are ``function``, ``note_id``, ``uid_hash``, ``event_id``,
``attempt`` and, on health lines, ``probe`` and ``error_code``. The formatter
removes bearer tokens, JWTs, API keys and signed-URL query strings from every
line, and prints ``bytes`` arguments as their length, so audio never reaches a log.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
import logging
import re
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

logger = logging.getLogger(__name__)

TRACE_KEY = "logging.googleapis.com/trace"
LABELS_KEY = "logging.googleapis.com/labels"
SOURCE_KEY = "logging.googleapis.com/sourceLocation"
DEFAULT_LEVEL = "INFO"

_labels: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "log_labels", default=types.MappingProxyType({})
)
_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("log_trace", default=None)

_configured = False

# W3C Trace Context: version-traceid-parentid-flags in lower-case hex. An all-zero trace id is invalid.
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
# X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS, with a 32-digit hex trace id.
_CLOUD_TRACE = re.compile(r"^(?P<trace>[0-9a-fA-F]{32})(?:/|;|$)")

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A signed URL's query carries the signature, and the path alone names the object.
    (
        re.compile(r"(https?://[^\s?\"']+)\?[^\s\"']*(?:Signature|Credential|GoogleAccessId)=[^\s\"']*", re.IGNORECASE),
        r"\1?[redacted query]",
    ),
    (re.compile(r"\bBearer\s+[^\s\"',;]+", re.IGNORECASE), "Bearer [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted JWT]"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), "[redacted API key]"),
)

_NOISY_LOGGERS = ("urllib3", "google.auth", "httpx", "httpx2", "httpcore", "grpc")


class HeaderLookup(Protocol):
    """Request headers: a mapping or werkzeug's ``Headers``, whose lookup ignores case."""

    def get(self, key: str, /) -> str | None: ...


def redact(text: str) -> str:
    """Replace bearer tokens, JWTs, Google API keys and signed-URL queries in ``text``."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _safe_argument(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    return value


def _message(record: logging.LogRecord) -> str:
    """Format the record's message with every binary argument replaced by its length."""
    args = record.args
    if isinstance(args, tuple):
        args = tuple(_safe_argument(value) for value in args)
    elif isinstance(args, Mapping):
        args = {key: _safe_argument(value) for key, value in args.items()}

    message = str(record.msg)
    if args:
        message = message % args
    return redact(message)


class CloudLoggingFormatter(logging.Formatter):
    """Format a record as one JSON object that Cloud Logging understands.

    Labels come from :func:`log_context` and from ``extra={"labels": {...}}``;
    the trace comes from :func:`log_context`.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": _message(record),
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "logger": record.name,
            SOURCE_KEY: {"file": record.pathname, "line": str(record.lineno), "function": record.funcName},
        }

        labels = dict(_labels.get())
        extra_labels = getattr(record, "labels", None)
        if isinstance(extra_labels, Mapping):
            labels.update({str(key): str(value) for key, value in extra_labels.items() if value is not None})
        if labels:
            entry[LABELS_KEY] = labels

        trace = _trace.get()
        if trace:
            entry[TRACE_KEY] = trace

        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))

        return json.dumps(entry, default=str)


def resolve_level(environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """Return the log level from ``LOG_LEVEL`` in the settings, and a warning when it fell back.

    Settings that fail validation, or a level name that :mod:`logging` does
    not know, give ``INFO``, so a configuration error never stops the entry
    points from logging it.
    """
    from functions.config import Settings
    from functions.errors import ConfigError

    try:
        level = Settings.from_env(environ).log_level
    except ConfigError as err:
        return DEFAULT_LEVEL, f"settings are invalid ({err.message}); logging at {DEFAULT_LEVEL}"

    if not isinstance(logging.getLevelName(level), int):
        return DEFAULT_LEVEL, (
            f"LOG_LEVEL={level!r} is not a log level; set it to DEBUG, INFO, WARNING or ERROR. "
            f"Logging at {DEFAULT_LEVEL}"
        )
    return level, None


def setup_logging(level: str | None = None) -> None:
    """Send every log record to stdout as one JSON line. Safe to call more than once.

    Args:
        level: Level name; when None, ``LOG_LEVEL`` is read through the settings
            (see :func:`resolve_level`).
    """
    global _configured
    if _configured:
        return

    warning = None
    if level is None:
        level, warning = resolve_level()

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True

    if warning:
        logger.warning("%s", warning)


def trace_from_headers(headers: HeaderLookup, project_id: str) -> str | None:
    """Return the Cloud Logging trace name from ``traceparent`` or ``X-Cloud-Trace-Context``.

    ``traceparent`` wins when both are valid. A header that is not in its
    documented form is ignored, so a caller cannot write arbitrary text into
    the trace field.

    Returns:
        ``projects/{project_id}/traces/{trace id}``, or None without a valid header.
    """
    traceparent = (headers.get("traceparent") or "").strip().lower()
    match = _TRACEPARENT.match(traceparent)
    if match and set(match["trace"]) != {"0"}:
        return f"projects/{project_id}/traces/{match['trace']}"

    cloud_trace = (headers.get("X-Cloud-Trace-Context") or "").strip()
    match = _CLOUD_TRACE.match(cloud_trace)
    if match and set(match["trace"]) != {"0"}:
        return f"projects/{project_id}/traces/{match['trace'].lower()}"

    return None


def uid_hash(uid: str) -> str:
    """Return a short, stable hash of a user id, so logs can be grouped without exposing it."""
    return hashlib.sha256(uid.encode()).hexdigest()[:12]


@contextlib.contextmanager
def log_context(*, trace: str | None = None, **labels: str | int | None) -> Iterator[None]:
    """Attach ``labels`` (and a trace) to every record logged inside the block.

    Labels whose value is None are left out; an inner block adds to the labels
    of the outer one.
    """
    merged = dict(_labels.get())
    merged.update({key: str(value) for key, value in labels.items() if value is not None})
    labels_token = _labels.set(merged)
    trace_token = _trace.set(trace) if trace is not None else None
    try:
        yield
    finally:
        _labels.reset(labels_token)
        if trace_token is not None:
            _trace.reset(trace_token)
