"""JSON log lines for Cloud Logging, with trace and note correlation.

Cloud Run (and so Cloud Functions gen2) parses each stdout line that is a JSON
object: ``severity`` and ``message`` become the entry's level and text,
``logging.googleapis.com/trace`` links the entry to its request trace, and
``logging.googleapis.com/labels`` becomes filterable labels.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from typing import Any

_labels: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("log_labels", default={})
_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("log_trace", default=None)

_configured = False


class CloudLoggingFormatter(logging.Formatter):
    """Format a record as one JSON object that Cloud Logging understands."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),
            "logger": record.name,
        }

        labels = dict(_labels.get())
        extra_labels = getattr(record, "labels", None)
        if isinstance(extra_labels, Mapping):
            labels.update({key: str(value) for key, value in extra_labels.items()})
        if labels:
            entry["logging.googleapis.com/labels"] = labels

        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace

        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)

        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO") -> None:
    """Send every log record to stdout as JSON. Safe to call more than once."""
    global _configured
    if _configured:
        return

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "google.auth", "httpx", "httpcore", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def trace_from_headers(headers: Mapping[str, str], project_id: str) -> str | None:
    """Return the Cloud Logging trace name from ``traceparent`` or ``X-Cloud-Trace-Context``."""
    traceparent = headers.get("traceparent")
    if traceparent:
        parts = traceparent.split("-")
        if len(parts) >= 2 and len(parts[1]) == 32:
            return f"projects/{project_id}/traces/{parts[1]}"

    cloud_trace = headers.get("X-Cloud-Trace-Context")
    if cloud_trace:
        trace_id = cloud_trace.split("/", 1)[0].strip()
        if trace_id:
            return f"projects/{project_id}/traces/{trace_id}"

    return None


def uid_hash(uid: str) -> str:
    """Return a short, stable hash of a user id, so logs can be grouped without exposing it."""
    return hashlib.sha256(uid.encode()).hexdigest()[:12]


@contextlib.contextmanager
def log_context(*, trace: str | None = None, **labels: str | int | None) -> Iterator[None]:
    """Attach ``labels`` (and a trace) to every record logged inside the block."""
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
