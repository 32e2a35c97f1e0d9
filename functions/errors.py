"""The one error hierarchy of the backend.

Every error carries a machine-readable ``code``. HTTP handlers turn an error into
``{"error": {"code": ..., "message": ...}}`` with ``http_status``. The processing
pipeline turns a :class:`PermanentProcessingError` into a ``failed`` note with
``code`` as the reason, and lets a :class:`TransientError` propagate so that
Eventarc redelivers the event.
"""

from __future__ import annotations


class BraindumpError(Exception):
    """Base class of every error this backend raises on purpose."""

    code: str = "internal"
    http_status: int = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(BraindumpError):
    """A setting is missing or invalid. The message names the variable to set."""

    code = "config_invalid"


class RequestError(BraindumpError):
    """A client request was rejected before any work was done."""

    http_status = 400
    code = "invalid_request"


class InvalidRequest(RequestError):
    """The request body or a header failed validation."""


class PayloadTooLarge(RequestError):
    """The request body is larger than the accepted maximum."""

    http_status = 413
    code = "body_too_large"


class MethodNotAllowed(RequestError):
    """The HTTP method is not accepted by this endpoint."""

    http_status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: str) -> None:
        super().__init__(f"method {method} is not allowed; use {allowed}")
        self.allowed = allowed


class Unauthenticated(RequestError):
    """The ID token is missing or failed verification."""

    http_status = 401
    code = "unauthenticated"


class QuotaExceeded(RequestError):
    """The caller has used up an upload quota."""

    http_status = 429
    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PermanentProcessingError(BraindumpError):
    """Processing a note cannot succeed on retry. The note ends ``failed`` with ``code``."""

    code = "processing_failed"


class TransientError(BraindumpError):
    """A dependency failed in a way that may succeed later; the event is redelivered."""

    code = "transient"
    http_status = 503
