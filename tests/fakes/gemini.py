"""A fake Gemini Developer API that listens on 127.0.0.1 only.

It serves the two calls the backend makes, ``POST /{v1,v1beta}/models/{model}:generateContent``
and ``GET /{v1,v1beta}/models/{model}``, and checks the shape of each generate request.
It responds from a script of steps: a good JSON result, invalid JSON, a truncated
response, a blocked prompt, an HTTP error with or without a retry hint, a stall or a
fixed delay. Every request is recorded with a timestamp from an injectable clock.
The ``echo`` step returns the transcript and tasks that ``samples/manifest.json``
lists for the audio sent, which is what the local stack uses.

In-process use::

    with FakeGemini(steps=[Step.error(503), Step.success(result)]) as fake:
        settings = replace(settings, gemini_base_url=fake.base_url)

As a process, for the local stack (the script is a name, a JSON file or inline JSON,
or the ``FAKE_GEMINI_SCRIPT`` variable)::

    python -m tests.fakes.gemini --port 8089 --script echo

A running server is scripted again with ``POST /_control/script`` (body: the script
JSON), and its record is read with ``GET /_control/requests``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "samples" / "manifest.json"
DEFAULT_USAGE = {"promptTokenCount": 1200, "candidatesTokenCount": 80}
STALL_SECONDS = 60.0
KINDS = ("success", "echo", "invalid_json", "max_tokens", "blocked", "safety", "error", "stall")

_GENERATE = re.compile(r"^/(v1|v1beta)/models/([^/:]+):generateContent$")
_GET_MODEL = re.compile(r"^/(v1|v1beta)/models/([^/:]+)$")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass(frozen=True)
class Step:
    """One scripted response to a generateContent request.

    ``kind`` is one of :data:`KINDS`. ``delay_seconds`` is waited before any
    response (for benchmarks), and for ``stall`` it is how long the connection is
    held open without a response (default :data:`STALL_SECONDS`).
    """

    kind: str
    result: dict[str, Any] | None = None
    status: int = 200
    retry_after: str | None = None
    retry_delay: str | None = None
    text: str | None = None
    delay_seconds: float = 0.0
    usage: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"step kind {self.kind!r} is unknown; use one of {', '.join(KINDS)}")
        if self.kind == "error" and self.status < 400:
            raise ValueError(f"error step status {self.status} is not an HTTP error; use 400 to 599")

    @classmethod
    def success(cls, result: Mapping[str, Any], **options: Any) -> Step:
        """Respond with ``result`` as the JSON text of one candidate that finished with STOP."""
        return cls("success", result=dict(result), **options)

    @classmethod
    def error(cls, status: int, **options: Any) -> Step:
        """Respond with an HTTP error in the Google JSON error shape."""
        return cls("error", status=status, **options)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        """Build a step from its JSON form, the same keys as the fields."""
        return cls(**dict(data))


@dataclass(frozen=True)
class Script:
    """The steps to play in order, then ``fallback`` for every later request."""

    steps: tuple[Step, ...] = ()
    fallback: Step = field(default_factory=lambda: Step("echo"))
    expect_audio: bytes | None = None
    """When set, a request whose inline audio differs gets a 400."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Script:
        """Build a script from ``{"steps": [...], "fallback": {...}, "expect_audio_base64": "..."}``."""
        steps = tuple(Step.from_json(item) for item in data.get("steps", []))
        fallback = Step.from_json(data["fallback"]) if "fallback" in data else Step("echo")
        expected = data.get("expect_audio_base64")
        return cls(steps, fallback, base64.b64decode(expected) if expected else None)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, and the fake's response."""

    method: str
    path: str
    at: float
    """Timestamp from the fake's clock when the request arrived."""
    body: dict[str, Any] | None
    api_key: str | None
    status: int
    step: str
    """The step kind played, ``get_model`` or ``rejected`` for a malformed request."""
    problem: str | None = None
    """Why the request was rejected with 400, None when it was well formed."""

    @property
    def prompt_text(self) -> str:
        """The text parts of the request joined by newlines."""
        return "\n".join(part["text"] for part in _parts(self.body) if "text" in part)

    @property
    def generation_config(self) -> dict[str, Any]:
        """The request's ``generationConfig``, empty when absent."""
        config = field_value(self.body or {}, "generationConfig")
        return config if isinstance(config, dict) else {}

    @property
    def audio_mime_type(self) -> str | None:
        """The MIME type of the inline audio part, None when there is none."""
        for part in _parts(self.body):
            inline = field_value(part, "inlineData")
            mime_type = field_value(inline, "mimeType") if isinstance(inline, dict) else None
            if isinstance(mime_type, str):
                return mime_type
        return None

    def summary(self) -> dict[str, Any]:
        """The record as JSON, with inline audio replaced by its size and SHA-256."""
        data = asdict(self)
        data["body"] = _summarise_body(self.body)
        return data


NAMED_SCRIPTS: dict[str, Script] = {
    "echo": Script(),
    "success": Script(
        fallback=Step.success(
            {
                "transcript": "Call the dentist tomorrow.",
                "tasks": [
                    {
                        "title": "Call the dentist",
                        "notes": None,
                        "due": None,
                        "all_day": False,
                        "priority": None,
                        "recurrence": None,
                    },
                ],
            }
        )
    ),
    "flaky": Script(steps=(Step.error(503), Step.error(503)), fallback=Step("echo")),
    "invalid_json": Script(fallback=Step("invalid_json")),
    "max_tokens": Script(fallback=Step("max_tokens")),
    "blocked": Script(fallback=Step("blocked")),
    "rate_limited": Script(fallback=Step.error(429, retry_after="7", retry_delay="7s")),
    "unavailable": Script(fallback=Step.error(503)),
    "stall": Script(fallback=Step("stall")),
}


class FakeGemini:
    """The fake server. Start it with ``with`` or :meth:`start`, stop it with :meth:`stop`."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        steps: Iterable[Step] | None = None,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        manifest_path: Path = DEFAULT_MANIFEST,
        port: int = 0,
    ) -> None:
        if script is None:
            script = Script(tuple(steps or ()))
        self.api_key = api_key
        self.get_model_status = 200
        self._clock = clock
        self._manifest_path = manifest_path
        self._echo_answers: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._records: list[RecordedRequest] = []
        self._script = script
        self._position = 0
        self._server = ThreadingHTTPServer((LOOPBACK, port), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, the value for ``GEMINI_BASE_URL``."""
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> FakeGemini:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="fake-gemini", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End any stall, stop serving and close the socket."""
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` runs in another one."""
        # A short poll interval keeps stop() fast; the default 0.5 s adds up over many tests.
        self._server.serve_forever(poll_interval=0.05)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def load(self, script: Script) -> None:
        """Replace the script and clear the record."""
        with self._lock:
            self._script = script
            self._position = 0
            self._records.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._records)

    @property
    def generate_requests(self) -> list[RecordedRequest]:
        """The generateContent requests so far."""
        return [record for record in self.requests if record.path.endswith(":generateContent")]

    def _next_step(self) -> Step:
        with self._lock:
            if self._position < len(self._script.steps):
                step = self._script.steps[self._position]
                self._position += 1
                return step
            return self._script.fallback

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def _echo_answer(self, audio: bytes) -> dict[str, Any]:
        # The sample manifest lists the words and tasks of each file by SHA-256,
        # so echo returns what a perfect model would for a known sample.
        if self._echo_answers is None:
            self._echo_answers = _load_echo_answers(self._manifest_path)
        digest = hashlib.sha256(audio).hexdigest()
        return self._echo_answers.get(digest, {"transcript": "", "tasks": []})


def _load_echo_answers(manifest_path: Path) -> dict[str, dict[str, Any]]:
    if not manifest_path.is_file():
        logger.warning("fake gemini: manifest %s not found; echo returns an empty task list", manifest_path)
        return {}

    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    answers: dict[str, dict[str, Any]] = {}
    for entry in manifest.get("files", []):
        if "sha256" not in entry:
            continue
        tasks = [
            {
                "title": task["title"],
                "notes": None,
                "due": task.get("due"),
                "all_day": bool(task.get("all_day", False)),
                "priority": None,
                "recurrence": task.get("rrule"),
            }
            for task in entry.get("expected_tasks") or []
        ]
        answers[entry["sha256"]] = {"transcript": entry.get("text", ""), "tasks": tasks}
    return answers


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def field_value(data: Mapping[str, Any], name: str) -> Any:
    """Read a JSON field by its lowerCamelCase name or its snake_case proto name.

    The API's proto JSON parser accepts both spellings, and google-genai 3.6
    sends some fields (``inlineData.mime_type``) in snake_case.
    """
    if name in data:
        return data[name]
    return data.get(_snake(name))


def _parts(body: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not body:
        return []
    parts: list[dict[str, Any]] = []
    for content in body.get("contents") or []:
        if isinstance(content, dict):
            parts += [part for part in content.get("parts") or [] if isinstance(part, dict)]
    return parts


def decode_base64(text: str) -> bytes:
    """Decode standard or URL-safe base64, as proto JSON accepts both.

    google-genai 3.6 sends bytes URL-safe encoded.

    Raises:
        binascii.Error: the text is not base64 in either alphabet.
    """
    standard = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)


def _summarise_body(body: Mapping[str, Any] | None) -> Any:
    if body is None:
        return None
    summary = json.loads(json.dumps(body))
    for part in _parts(summary):
        inline = field_value(part, "inlineData")
        if isinstance(inline, dict) and isinstance(inline.get("data"), str):
            raw = decode_base64(inline["data"])
            inline["data"] = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    return summary


def check_generate_request(body: Any, expect_audio: bytes | None) -> tuple[str | None, bytes]:
    """Check a generateContent body the way the backend must build it.

    Returns:
        ``(problem, audio)``: a description of the first problem found (None when
        the body is well formed) and the decoded inline audio.
    """
    if not isinstance(body, dict):
        return "the body is not a JSON object", b""

    parts = _parts(body)
    inline = [field_value(part, "inlineData") for part in parts if isinstance(field_value(part, "inlineData"), dict)]
    if len(inline) != 1:
        return f"expected one inlineData part, found {len(inline)}", b""
    mime_type = field_value(inline[0], "mimeType")
    if not str(mime_type or "").startswith("audio/"):
        return f"inlineData.mimeType {mime_type!r} is not an audio type", b""
    try:
        audio = decode_base64(str(inline[0].get("data", "")))
    except binascii.Error:
        return "inlineData.data is not valid base64", b""
    if not audio:
        return "inlineData.data is empty", b""
    if expect_audio is not None and audio != expect_audio:
        return f"inlineData holds {len(audio)} bytes that differ from the {len(expect_audio)} expected", audio

    if not any(str(part.get("text", "")).strip() for part in parts):
        return "the request has no text part with the prompt", audio

    config = field_value(body, "generationConfig")
    if not isinstance(config, dict):
        return "generationConfig is missing", audio
    response_mime_type = field_value(config, "responseMimeType")
    if response_mime_type != "application/json":
        return f"responseMimeType is {response_mime_type!r}, not 'application/json'", audio
    if not field_value(config, "responseSchema") and not field_value(config, "responseJsonSchema"):
        return "responseSchema is missing", audio
    return None, audio


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Build a Google JSON error body."""
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    return {"error": error}


def _candidate_answer(text: str, finish_reason: str, usage: Mapping[str, int], model: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish_reason, "index": 0}
        ],
        "usageMetadata": {**usage, "totalTokenCount": sum(usage.values())},
        "modelVersion": model,
    }


def answer_for(step: Step, *, model: str, echo: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Build ``(status, headers, body)`` for a step other than ``stall``."""
    usage = step.usage or DEFAULT_USAGE
    result = step.result if step.result is not None else echo
    text = step.text

    if step.kind in ("success", "echo"):
        return 200, {}, _candidate_answer(text or json.dumps(result), "STOP", usage, model)
    if step.kind == "invalid_json":
        return 200, {}, _candidate_answer(text or "Sure! Here are your tasks: call the dentist.", "STOP", usage, model)
    if step.kind == "max_tokens":
        full = json.dumps(result)
        return 200, {}, _candidate_answer(text or full[: max(1, len(full) // 2)], "MAX_TOKENS", usage, model)
    if step.kind == "safety":
        body = {"candidates": [{"finishReason": "SAFETY", "index": 0}], "usageMetadata": dict(usage)}
        return 200, {}, body
    if step.kind == "blocked":
        body = {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": usage["promptTokenCount"]},
        }
        return 200, {}, body

    headers: dict[str, str] = {}
    details: list[dict[str, Any]] = []
    if step.retry_after is not None:
        headers["Retry-After"] = step.retry_after
    if step.retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": step.retry_delay})
    return step.status, headers, error_body(step.status, text or f"scripted {step.status} error", details)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeGemini/1"

    @property
    def fake(self) -> FakeGemini:
        return self.server.fake  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake gemini: " + format, *args)

    def do_GET(self) -> None:
        arrived = self.fake._clock()
        path = self.path.split("?", 1)[0]

        if path == "/_control/requests":
            self._send_json(200, {"requests": [record.summary() for record in self.fake.requests]})
            return

        match = _GET_MODEL.match(path)
        if match is None:
            self._send_json(404, error_body(404, f"no route for GET {path}"))
            return

        status = self.fake.get_model_status
        if not self._key_accepted():
            status = 400
        self.fake._record(RecordedRequest("GET", path, arrived, None, self._api_key(), status, "get_model"))
        if status != 200:
            self._send_json(status, error_body(status, f"scripted {status} error for models.get"))
            return
        model = match.group(2)
        self._send_json(
            200,
            {
                "name": f"models/{model}",
                "displayName": model,
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            },
        )

    def do_POST(self) -> None:
        arrived = self.fake._clock()
        path = self.path.split("?", 1)[0]
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

        if path == "/_control/script":
            self._control_script(raw)
            return
        if path == "/_control/reset":
            self.fake.load(NAMED_SCRIPTS["echo"])
            self._send_json(200, {"ok": True})
            return

        match = _GENERATE.match(path)
        if match is None:
            self._send_json(404, error_body(404, f"no route for POST {path}"))
            return

        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        self._generate(path, match.group(2), body, arrived)

    def _generate(self, path: str, model: str, body: Any, arrived: float) -> None:
        fake = self.fake
        api_key = self._api_key()
        problem, audio = check_generate_request(body, fake._script.expect_audio)
        record_body = body if isinstance(body, dict) else None

        if not self._key_accepted():
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ]
            fake._record(
                RecordedRequest("POST", path, arrived, record_body, api_key, 400, "rejected", "API key not valid")
            )
            self._send_json(400, error_body(400, "API key not valid. Please pass a valid API key.", details))
            return
        if problem is not None:
            fake._record(RecordedRequest("POST", path, arrived, record_body, api_key, 400, "rejected", problem))
            self._send_json(400, error_body(400, f"Invalid request: {problem}"))
            return

        step = fake._next_step()
        if step.kind == "stall":
            fake._record(RecordedRequest("POST", path, arrived, record_body, api_key, 0, "stall"))
            fake._released.wait(step.delay_seconds or STALL_SECONDS)
            self.close_connection = True
            return

        status, headers, answer = answer_for(step, model=model, echo=fake._echo_answer(audio))
        fake._record(RecordedRequest("POST", path, arrived, record_body, api_key, status, step.kind))
        if step.delay_seconds > 0:
            fake._released.wait(step.delay_seconds)
        self._send_json(status, answer, headers)

    def _control_script(self, raw: bytes) -> None:
        try:
            data = json.loads(raw or b"{}")
            script = NAMED_SCRIPTS[data["name"]] if "name" in data else Script.from_json(data)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            self._send_json(400, error_body(400, f"invalid script: {err}"))
            return
        self.fake.load(script)
        self._send_json(200, {"ok": True, "steps": len(script.steps), "fallback": script.fallback.kind})

    def _api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key")

    def _key_accepted(self) -> bool:
        return self.fake.api_key is None or self._api_key() == self.fake.api_key

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout ran out), which is what some tests provoke.
            logger.debug("fake gemini: client closed the connection before the response")


def load_script(value: str) -> Script:
    """Load a script from a name in :data:`NAMED_SCRIPTS`, a JSON file path or inline JSON."""
    if value in NAMED_SCRIPTS:
        return NAMED_SCRIPTS[value]
    if value.lstrip().startswith("{"):
        return Script.from_json(json.loads(value))
    path = Path(value)
    if path.is_file():
        return Script.from_json(json.loads(path.read_text(encoding="utf-8")))
    raise ValueError(f"script {value!r} is not a name ({', '.join(NAMED_SCRIPTS)}), a JSON file or inline JSON")


def main(argv: list[str] | None = None) -> int:
    """Run the fake as a process until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="Fake Gemini API on 127.0.0.1 for tests and the local stack.")
    parser.add_argument("--port", type=int, default=0, help="TCP port to listen on; 0 picks a free one")
    parser.add_argument(
        "--script",
        default=os.environ.get("FAKE_GEMINI_SCRIPT", "echo"),
        help="script name, JSON file or inline JSON (default: $FAKE_GEMINI_SCRIPT, else echo)",
    )
    parser.add_argument("--api-key", default=None, help="reject requests without this x-goog-api-key")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="sample manifest for echo responses")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        script = load_script(args.script)
    except (ValueError, json.JSONDecodeError) as err:
        parser.error(str(err))
    fake = FakeGemini(script, api_key=args.api_key, manifest_path=args.manifest, port=args.port)

    def stop(signum: int, _frame: object) -> None:
        logger.info("fake gemini: signal %d received, stopping", signum)
        threading.Thread(target=fake.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The parent process reads this line to learn the port when --port is 0.
    print(f"FAKE_GEMINI_URL={fake.base_url}", flush=True)
    logger.info("fake gemini: listening on %s with script %s", fake.base_url, args.script)
    fake.serve_forever()
    logger.info("fake gemini: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
