"""Parsing and validation of the ``upload_url`` request body."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from functions.audio import ACCEPTED_TYPES, AudioType, canonical_type
from functions.errors import InvalidRequest, PayloadTooLarge
from functions.models import UploadRequest

if TYPE_CHECKING:
    import flask

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
# Bounds of recordedAt. A note may be uploaded long after it was recorded
# offline, and a phone's clock may run a little fast, but dates near year 1
# or 9999 overflow in time-zone arithmetic.
EARLIEST_RECORDING = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_CLOCK_SKEW = dt.timedelta(days=1)
_FIELD_NAMES = {"content_type": "contentType", "size_bytes": "sizeBytes", "recorded_at": "recordedAt"}


@dataclass(frozen=True)
class ValidUpload:
    """An upload request that passed every check."""

    request: UploadRequest
    audio_type: AudioType


def _field_name(location: tuple[int | str, ...]) -> str:
    name = str(location[0]) if location else "body"
    return _FIELD_NAMES.get(name, name)


def _describe(error: ValidationError) -> tuple[str, str]:
    """Return an error code and a message naming the first invalid field."""
    first = error.errors()[0]
    field = _field_name(first["loc"])
    kind = first["type"]

    if kind == "extra_forbidden":
        return (
            "unknown_field",
            f"field '{field}' is not accepted; send only contentType, sizeBytes, timezone and recordedAt",
        )
    if kind == "missing":
        return "missing_field", f"field '{field}' is required"

    reason = first["msg"].removeprefix("Value error, ")
    return "invalid_field", f"field '{field}' is invalid: {reason}"


def _too_large(size: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body has {size} bytes; the maximum is {MAX_BODY_BYTES}, so send only the JSON fields"
    )


def read_request_body(request: flask.Request) -> bytes:
    """Read the body, but never more than ``MAX_BODY_BYTES`` + 1 bytes of it.

    A declared ``Content-Length`` above the maximum is rejected before any
    byte is read, and a chunked body stops being read one byte past it, so a
    huge body costs at most ``MAX_BODY_BYTES`` + 1 bytes of memory here.

    Raises:
        PayloadTooLarge: the body is longer than ``MAX_BODY_BYTES``.
    """
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise _too_large(str(declared))

    # A stream read may return fewer bytes than requested, so read until EOF or one byte past the limit.
    chunks: list[bytes] = []
    received = 0
    while received <= MAX_BODY_BYTES:
        chunk = request.stream.read(MAX_BODY_BYTES + 1 - received)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)

    if received > MAX_BODY_BYTES:
        raise _too_large(f"more than {MAX_BODY_BYTES}")
    return b"".join(chunks)


def parse_upload_request(body: bytes, content_type_header: str | None, *, max_upload_bytes: int) -> ValidUpload:
    """Validate a raw request body.

    Raises:
        PayloadTooLarge: the body exceeds ``MAX_BODY_BYTES``.
        InvalidRequest: the body is not a JSON object of the accepted fields, or a
            value is invalid. The message names the field.
    """
    if len(body) > MAX_BODY_BYTES:
        raise _too_large(str(len(body)))

    media_type = (content_type_header or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise InvalidRequest(
            "the request body must be JSON; send 'Content-Type: application/json'", code="invalid_content_type"
        )

    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        # RecursionError: a few KB of nested brackets exceed the parser's depth.
        raise InvalidRequest("the request body is not valid JSON", code="invalid_json") from err
    if not isinstance(payload, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")

    try:
        request = UploadRequest.model_validate(payload)
    except ValidationError as err:
        code, message = _describe(err)
        raise InvalidRequest(message, code=code) from err

    audio_type = canonical_type(request.content_type)
    if audio_type is None or not request.content_type.isprintable():
        raise InvalidRequest(
            f"field 'contentType' value '{request.content_type[:100]}' is not an accepted audio type; "
            f"send one of {', '.join(ACCEPTED_TYPES)}",
            code="unsupported_content_type",
        )

    if request.size_bytes > max_upload_bytes:
        raise InvalidRequest(
            f"field 'sizeBytes' is {request.size_bytes}, above the maximum upload of {max_upload_bytes} bytes",
            code="file_too_large",
        )

    _check_recorded_at(request.recorded_at, dt.datetime.now(dt.UTC))

    return ValidUpload(request=request, audio_type=audio_type)


def _check_recorded_at(recorded_at: dt.datetime | None, now: dt.datetime) -> None:
    """Reject a recording time that no phone could send, before it reaches date arithmetic."""
    if recorded_at is None:
        return

    earliest = EARLIEST_RECORDING
    latest = now + MAX_CLOCK_SKEW
    try:
        in_range = earliest <= recorded_at <= latest
    except OverflowError:
        in_range = False
    if not in_range:
        raise InvalidRequest(
            f"field 'recordedAt' must lie between {earliest:%Y-%m-%d} and {latest:%Y-%m-%dT%H:%M}Z; "
            "send the time the note was recorded",
            code="invalid_field",
        )
