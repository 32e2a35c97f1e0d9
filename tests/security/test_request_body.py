"""Reading the ``upload_url`` body stops at the limit, whatever the client declares."""

from __future__ import annotations

import io

import flask
import pytest
from werkzeug.test import EnvironBuilder

from functions.errors import PayloadTooLarge
from functions.uploads.request import MAX_BODY_BYTES, read_request_body

pytestmark = pytest.mark.security

HUGE_BYTES = 64 * 1024 * 1024


class CountingStream(io.RawIOBase):
    """An endless body of spaces that counts how many bytes were read from it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.size - self.consumed)
        buffer[:count] = b" " * count
        self.consumed += count
        return count


def _streaming_environ(stream: CountingStream, headers: dict[str, str]) -> dict[str, object]:
    """Return a WSGI environ whose input is ``stream``, as a server hands it over."""
    environ: dict[str, object] = EnvironBuilder(method="POST", headers=list(headers.items())).get_environ()
    environ["wsgi.input"] = stream
    # A server that de-chunks the body sets wsgi.input_terminated.
    environ["wsgi.input_terminated"] = "Content-Length" not in headers
    if "Content-Length" in headers:
        environ["CONTENT_LENGTH"] = headers["Content-Length"]
    return environ


def test_declared_length_rejected_unread() -> None:
    stream = CountingStream(HUGE_BYTES)
    app = flask.Flask(__name__)
    environ = _streaming_environ(stream, {"Content-Length": str(HUGE_BYTES), "Content-Type": "application/json"})

    with app.request_context(environ), pytest.raises(PayloadTooLarge) as raised:
        read_request_body(flask.request)

    assert raised.value.http_status == 413
    assert stream.consumed == 0


def test_chunked_body_read_bounded() -> None:
    stream = CountingStream(HUGE_BYTES)
    app = flask.Flask(__name__)
    environ = _streaming_environ(stream, {"Transfer-Encoding": "chunked", "Content-Type": "application/json"})

    with app.request_context(environ), pytest.raises(PayloadTooLarge):
        read_request_body(flask.request)

    assert stream.consumed <= 2 * (MAX_BODY_BYTES + 1)


def test_small_body_read_whole() -> None:
    body = b'{"contentType": "audio/mp4", "sizeBytes": 1, "timezone": "UTC"}'
    app = flask.Flask(__name__)

    with app.test_request_context("/", method="POST", data=body, content_type="application/json"):
        assert read_request_body(flask.request) == body


def test_body_at_limit_accepted() -> None:
    body = b" " * MAX_BODY_BYTES
    app = flask.Flask(__name__)

    with app.test_request_context("/", method="POST", data=body, content_type="application/json"):
        assert read_request_body(flask.request) == body
