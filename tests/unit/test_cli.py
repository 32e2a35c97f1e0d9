"""``braindump``: argument parsing, target resolution, helpers and error exits against a fake server on loopback."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from braindump_cli.api import ProgressReader, UploadTicket, put_audio
from braindump_cli.cli import build_parser, content_type_for, main
from braindump_cli.exits import CliError, ExitCode
from braindump_cli.firestore_rest import decode_value, parse_timestamp
from braindump_cli.follow import Clock, wait_for_final
from braindump_cli.render import format_due
from braindump_cli.target import read_stack_file, resolve_target

NOTE_ID = "950cb597acd3bd02d8a3226549540300"
AUDIO_BYTES = b"\x00\x00\x00\x1cftypM4A " + b"\x00" * 200


@dataclass
class Canned:
    """One reply of the fake server."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    """One request the fake server got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeServer:
    """An HTTP server on 127.0.0.1 that responds to every request with the next canned reply."""

    def __init__(self) -> None:
        self.replies: list[Canned] = []
        self.received: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _respond(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.received.append(Received(self.command, self.path, dict(self.headers.items()), body))
                reply = server.replies.pop(0) if server.replies else Canned(500, b"no canned reply")
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = _respond

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reply_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Queue a JSON reply."""
        self.replies.append(
            Canned(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})
        )

    def start(self) -> None:
        """Start serving in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A running fake server, stopped after the test."""
    fake = FakeServer()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    """A small file with an m4a header."""
    path = tmp_path / "note.m4a"
    path.write_bytes(AUDIO_BYTES)
    return path


def closed_port_url() -> str:
    """Return a loopback URL on which nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def jwt(claims: dict[str, Any]) -> str:
    """Return an unsigned JWT with ``claims``."""

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{segment({'alg': 'none'})}.{segment(claims)}."


def ticket_for(server: FakeServer) -> dict[str, Any]:
    """Return a 201 body whose upload URL points at ``server``."""
    return {
        "noteId": NOTE_ID,
        "uploadUrl": f"{server.url}/bucket/voice-notes/cli-user/{NOTE_ID}.m4a?X-Goog-Signature=abc",
        "method": "PUT",
        "headers": {
            "Content-Type": "audio/mp4",
            "x-goog-content-length-range": "0,10485760",
            "x-goog-if-generation-match": "0",
        },
        "expiresAt": "2026-03-10T18:45:00Z",
        "objectName": f"voice-notes/cli-user/{NOTE_ID}.m4a",
    }


# Argument parsing


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["upload", "a.m4a"], id="no-timezone"),
        pytest.param(["upload", "a.m4a", "--timezone", "Mars/Olympus"], id="unknown-zone"),
        pytest.param(["upload", "a.m4a", "--timezone", "UTC", "--recorded-at", "2026-03-10T18:30:00"], id="naive-time"),
        pytest.param(["upload", "a.m4a", "--timezone", "UTC", "--recorded-at", "yesterday"], id="not-a-time"),
        pytest.param(["upload", "a.m4a", "--timezone", "UTC", "--timeout", "0"], id="zero-timeout"),
        pytest.param(["upload", "--timezone", "UTC"], id="no-file"),
        pytest.param([], id="no-command"),
        pytest.param(["delete"], id="unknown-command"),
    ],
)
def test_parse_rejects(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)

    assert caught.value.code == ExitCode.USAGE
    assert "error:" in capsys.readouterr().err


def test_parse_upload() -> None:
    args = build_parser().parse_args(
        [
            "upload",
            "n.m4a",
            "--timezone",
            "Europe/Berlin",
            "--recorded-at",
            "2026-03-10T18:30:00-07:00",
            "--timeout",
            "12",
        ]
    )

    assert args.command == "upload"
    assert args.file == Path("n.m4a")
    assert args.timezone == "Europe/Berlin"
    assert args.recorded_at == "2026-03-10T18:30:00-07:00"
    assert args.timeout == 12.0
    assert args.token is None


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--token", "t", "health"], id="before-command"),
        pytest.param(["health", "--token", "t"], id="after-command"),
    ],
)
def test_parse_option_position(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).token == "t"


def test_help_lists_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["--help"])

    text = capsys.readouterr().out
    assert caught.value.code == 0
    for code in ExitCode:
        assert f"{int(code):>3}  " in text


# Content types, targets and decoding


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("a.m4a", "audio/mp4", id="m4a"),
        pytest.param("a.MP3", "audio/mpeg", id="mp3-upper"),
        pytest.param("a.opus", "audio/ogg", id="opus"),
        pytest.param("a.3gp", "audio/3gpp", id="3gp"),
        pytest.param("a.wav", "audio/wav", id="wav"),
        pytest.param("a.webm", "audio/webm", id="webm"),
    ],
)
def test_content_type_from_extension(name: str, expected: str) -> None:
    assert content_type_for(Path(name), None) == expected


def test_content_type_unknown_extension() -> None:
    with pytest.raises(CliError) as caught:
        content_type_for(Path("a.txt"), None)

    assert caught.value.exit_code == ExitCode.FILE
    assert "--content-type" in caught.value.message


def test_content_type_declared_wins() -> None:
    assert content_type_for(Path("a.txt"), "audio/x-m4a") == "audio/x-m4a"


def test_stack_file_parsed(tmp_path: Path) -> None:
    path = tmp_path / "stack.txt"
    path.write_text(
        "# Functions\n"
        "#   upload_url     POST http://127.0.0.1:50609\n"
        "#   health         GET  http://127.0.0.1:39715\n"
        "export FIRESTORE_EMULATOR_HOST=127.0.0.1:34477\n"
        "export SIGNING_KEY_FILE='/tmp/a b/key.json'\n",
        encoding="utf-8",
    )

    values = read_stack_file(path)

    assert values == {
        "BRAINDUMP_UPLOAD_URL": "http://127.0.0.1:50609",
        "BRAINDUMP_HEALTH_URL": "http://127.0.0.1:39715",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:34477",
        "SIGNING_KEY_FILE": "/tmp/a b/key.json",
    }


def test_target_precedence(tmp_path: Path) -> None:
    path = tmp_path / "stack.txt"
    path.write_text(
        "#   upload_url     POST http://127.0.0.1:1\nexport FIRESTORE_EMULATOR_HOST=127.0.0.1:2\n", encoding="utf-8"
    )

    target = resolve_target(
        environ={"BRAINDUMP_UPLOAD_URL": "http://127.0.0.1:3", "BRAINDUMP_STACK_FILE": str(path)},
        upload_url=None,
    )
    flagged = resolve_target(environ={"BRAINDUMP_UPLOAD_URL": "http://127.0.0.1:3"}, upload_url="http://127.0.0.1:4")

    assert target.upload_url == "http://127.0.0.1:3"
    assert target.firestore_url == "http://127.0.0.1:2/v1"
    assert target.local
    assert flagged.upload_url == "http://127.0.0.1:4"


def test_target_from_token() -> None:
    target = resolve_target(environ={}, token=jwt({"aud": "prod-project", "sub": "user-7"}))

    assert not target.local
    assert target.project_id == "prod-project"
    assert target.uid == "user-7"
    assert target.firestore_url == "https://firestore.googleapis.com/v1"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-jwt", id="no-dots"),
        pytest.param("a.!!!.c", id="bad-base64"),
        pytest.param(jwt({"sub": "u"}), id="no-audience"),
    ],
)
def test_target_bad_token(token: str) -> None:
    with pytest.raises(CliError) as caught:
        resolve_target(environ={}, token=token)

    assert caught.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"nullValue": None}, None, id="null"),
        pytest.param({"integerValue": "42"}, 42, id="integer"),
        pytest.param({"booleanValue": True}, True, id="boolean"),
        pytest.param({"doubleValue": 1.5}, 1.5, id="double"),
        pytest.param(
            {"timestampValue": "2026-03-11T22:00:00.123456789Z"},
            dt.datetime(2026, 3, 11, 22, 0, 0, 123456, tzinfo=dt.UTC),
            id="timestamp-nanoseconds",
        ),
        pytest.param(
            {"mapValue": {"fields": {"reason": {"stringValue": "too_long"}}}}, {"reason": "too_long"}, id="map"
        ),
        pytest.param({"arrayValue": {"values": [{"stringValue": "a"}, {"integerValue": "1"}]}}, ["a", 1], id="array"),
        pytest.param({"arrayValue": {}}, [], id="empty-array"),
    ],
)
def test_decode_value(value: dict[str, Any], expected: Any) -> None:
    assert decode_value(value) == expected


def test_parse_timestamp_without_fraction() -> None:
    assert parse_timestamp("2026-03-11T22:00:00Z") == dt.datetime(2026, 3, 11, 22, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        pytest.param(
            {"dueAt": dt.datetime(2026, 3, 11, 22, tzinfo=dt.UTC), "dueDate": "2026-03-11", "allDay": False},
            "2026-03-11 15:00 PDT",
            id="timed",
        ),
        pytest.param({"dueAt": None, "dueDate": "2026-03-13", "allDay": True}, "2026-03-13 (all day)", id="all-day"),
        pytest.param({"dueAt": None, "dueDate": None, "allDay": False}, "—", id="no-date"),
    ],
)
def test_format_due(task: dict[str, Any], expected: str) -> None:
    assert format_due(task, ZoneInfo("America/Los_Angeles")) == expected


# Following a note


class NoteSequence:
    """A reader that returns one note document per call, repeating the last."""

    def __init__(self, notes: list[dict[str, Any] | None]) -> None:
        self.notes = notes
        self.calls = 0

    def get(self, path: str) -> dict[str, Any] | None:
        note = self.notes[min(self.calls, len(self.notes) - 1)]
        self.calls += 1
        return note


class FakeClock:
    """Monotonic time that advances only when the code sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_follow_reports_each_status() -> None:
    reader = NoteSequence(
        [None, {"status": "awaiting_upload"}, {"status": "processing"}, {"status": "processing"}, {"status": "done"}]
    )
    seen: list[str] = []
    clock = FakeClock()

    note = wait_for_final(
        reader,  # type: ignore[arg-type]
        "u1",
        NOTE_ID,
        timeout_seconds=10,
        interval_seconds=1,
        on_status=lambda status, _: seen.append(status),
        clock=Clock(clock.monotonic, clock.sleep),
    )

    assert note == {"status": "done"}
    assert seen == ["awaiting_upload", "processing", "done"]


def test_follow_times_out() -> None:
    clock = FakeClock()

    with pytest.raises(CliError) as caught:
        wait_for_final(
            NoteSequence([{"status": "processing"}]),  # type: ignore[arg-type]
            "u1",
            NOTE_ID,
            timeout_seconds=5,
            interval_seconds=1,
            on_status=lambda status, _: None,
            clock=Clock(clock.monotonic, clock.sleep),
        )

    assert caught.value.exit_code == ExitCode.TIMEOUT
    assert "still processing after 5 s" in caught.value.message


# The PUT


def test_progress_reader_counts(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 100_000)
    counts: list[int] = []

    with path.open("rb") as stream:
        reader = ProgressReader(stream, 100_000, counts.append)
        data = b"".join(iter(lambda: reader.read(8192), b""))

    assert len(reader) == 100_000
    assert data == b"x" * 100_000
    assert sum(counts) == 100_000


def test_put_sends_exact_headers(server: FakeServer, audio: Path) -> None:
    server.replies.append(Canned(200))
    body = ticket_for(server)
    ticket = UploadTicket(
        body["noteId"], body["uploadUrl"], "PUT", body["headers"], body["expiresAt"], body["objectName"]
    )
    reported: list[int] = []

    put_audio(ticket, audio, reported.append)

    request = server.received[0]
    assert request.method == "PUT"
    assert request.path == f"/bucket/voice-notes/cli-user/{NOTE_ID}.m4a?X-Goog-Signature=abc"
    assert request.headers["Content-Type"] == "audio/mp4"
    assert request.headers["x-goog-content-length-range"] == "0,10485760"
    assert request.headers["x-goog-if-generation-match"] == "0"
    assert request.headers["Content-Length"] == str(len(AUDIO_BYTES))
    assert "Transfer-Encoding" not in request.headers
    assert request.body == AUDIO_BYTES
    assert sum(reported) == len(AUDIO_BYTES)


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        pytest.param(Canned(412), "already exists (HTTP 412)", id="exists"),
        pytest.param(
            Canned(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>", {"Content-Type": "application/xml"}),
            "HTTP 403 (SignatureDoesNotMatch)",
            id="signature",
        ),
        pytest.param(Canned(400, b"<Error><Code>ExpiredToken</Code></Error>"), "may have expired", id="expired"),
    ],
)
def test_put_failure(server: FakeServer, audio: Path, reply: Canned, text: str) -> None:
    server.replies.append(reply)
    body = ticket_for(server)
    ticket = UploadTicket(
        body["noteId"], body["uploadUrl"], "PUT", body["headers"], body["expiresAt"], body["objectName"]
    )

    with pytest.raises(CliError) as caught:
        put_audio(ticket, audio, lambda count: None)

    assert caught.value.exit_code == ExitCode.UPLOAD_FAILED
    assert text in caught.value.message
    assert "X-Goog-Signature" not in caught.value.message


# Error exits of main


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "body", "headers", "exit_code", "text"),
    [
        pytest.param(
            400,
            _error("unsupported_content_type", "field 'contentType' is bad"),
            {},
            ExitCode.REJECTED,
            "HTTP 400 (unsupported_content_type): field 'contentType' is bad",
            id="400",
        ),
        pytest.param(413, _error("body_too_large", "too big"), {}, ExitCode.REJECTED, "HTTP 413", id="413"),
        pytest.param(401, _error("token_expired", "expired"), {}, ExitCode.AUTH, "get a fresh ID token", id="401"),
        pytest.param(
            429,
            _error("quota_exceeded", "used up"),
            {"Retry-After": "120"},
            ExitCode.QUOTA,
            "try again in 120 seconds",
            id="429",
        ),
        pytest.param(
            503,
            _error("auth_unavailable", "keys unreachable"),
            {},
            ExitCode.UNAVAILABLE,
            "HTTP 503 (auth_unavailable)",
            id="503",
        ),
        pytest.param(
            201, {"noteId": NOTE_ID}, {}, ExitCode.UNAVAILABLE, "without the fields of openapi.yaml", id="201-short"
        ),
    ],
)
def test_upload_url_errors(
    server: FakeServer,
    audio: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    exit_code: ExitCode,
    text: str,
) -> None:
    server.reply_json(status, body, headers)

    code = main(
        ["upload", str(audio), "--timezone", "UTC"],
        environ={
            "BRAINDUMP_UPLOAD_URL": server.url,
            "FIRESTORE_EMULATOR_HOST": closed_port_url().removeprefix("http://"),
        },
    )

    assert code == exit_code
    assert text in capsys.readouterr().err


def test_upload_url_request_body(server: FakeServer, audio: Path) -> None:
    server.reply_json(400, _error("invalid_field", "x"))

    main(
        ["upload", str(audio), "--timezone", "Europe/Berlin", "--recorded-at", "2026-03-10T18:30:00+01:00"],
        environ={"BRAINDUMP_UPLOAD_URL": server.url, "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1"},
    )

    request = server.received[0]
    assert request.method == "POST"
    assert request.headers["Authorization"].startswith("Bearer ")
    assert json.loads(request.body) == {
        "contentType": "audio/mp4",
        "sizeBytes": len(AUDIO_BYTES),
        "timezone": "Europe/Berlin",
        "recordedAt": "2026-03-10T18:30:00+01:00",
    }


def test_upload_put_rejected(server: FakeServer, audio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.reply_json(201, ticket_for(server))
    server.replies.append(Canned(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>"))

    code = main(
        ["upload", str(audio), "--timezone", "UTC"],
        environ={"BRAINDUMP_UPLOAD_URL": server.url, "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1"},
    )

    assert code == ExitCode.UPLOAD_FAILED
    assert "SignatureDoesNotMatch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv_tail", "environ", "exit_code", "text"),
    [
        pytest.param(
            [],
            {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:1"},
            ExitCode.CONFIG,
            "upload_url endpoint is unknown",
            id="no-upload-url",
        ),
        pytest.param(
            [],
            {"BRAINDUMP_UPLOAD_URL": "http://127.0.0.1:1"},
            ExitCode.CONFIG,
            "FIRESTORE_EMULATOR_HOST is not set",
            id="no-emulator",
        ),
        pytest.param(["--token", "abc"], {}, ExitCode.CONFIG, "not a JWT", id="bad-token"),
        pytest.param(
            ["--stack-file", "/nonexistent/stack.txt"], {}, ExitCode.CONFIG, "could not be read", id="no-stack-file"
        ),
    ],
)
def test_config_errors(
    audio: Path,
    capsys: pytest.CaptureFixture[str],
    argv_tail: list[str],
    environ: dict[str, str],
    exit_code: ExitCode,
    text: str,
) -> None:
    code = main(["upload", str(audio), "--timezone", "UTC", *argv_tail], environ=environ)

    assert code == exit_code
    assert text in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "text"),
    [
        pytest.param("missing.m4a", None, "does not exist", id="missing"),
        pytest.param("empty.m4a", b"", "is empty", id="empty"),
    ],
)
def test_file_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None, text: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)

    code = main(["upload", str(path), "--timezone", "UTC"], environ={})

    assert code == ExitCode.FILE
    assert text in capsys.readouterr().err


def test_upload_url_unreachable(audio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = closed_port_url()

    code = main(
        ["upload", str(audio), "--timezone", "UTC"],
        environ={"BRAINDUMP_UPLOAD_URL": url, "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1"},
    )

    assert code == ExitCode.UNAVAILABLE
    assert f"upload_url at {url} could not be reached" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("status", "body", "exit_code"),
    [
        pytest.param(200, {"status": "healthy", "services": {"firebase": "connected"}}, ExitCode.OK, id="healthy"),
        pytest.param(200, {"status": "degraded", "services": {"gemini": "error"}}, ExitCode.DEGRADED, id="degraded"),
        pytest.param(
            503, {"status": "unhealthy", "services": {"storage": "error"}}, ExitCode.UNHEALTHY, id="unhealthy"
        ),
    ],
)
def test_health_exit_codes(server: FakeServer, status: int, body: dict[str, Any], exit_code: ExitCode) -> None:
    server.reply_json(status, body)

    assert main(["health"], environ={"BRAINDUMP_HEALTH_URL": server.url}) == exit_code


def test_health_not_json(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.replies.append(Canned(503, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"}))

    code = main(["health"], environ={"BRAINDUMP_HEALTH_URL": server.url})

    assert code == ExitCode.UNAVAILABLE
    assert "non-JSON body" in capsys.readouterr().err
