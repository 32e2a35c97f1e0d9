"""Integration tests of the functions' JSON log lines for one processed note.

The note goes through the whole stack with the fake Gemini server, and the
tests read what ``upload_url`` and ``process_audio`` wrote to their stdout
log files, as Cloud Logging would receive it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.client import BackendClient, UploadTicket
from devstack.stack import LocalStack
from functions.log import LABELS_KEY, TRACE_KEY, uid_hash
from tests.fakes.gemini import FakeGemini

pytestmark = pytest.mark.timeout(600)

API_KEY = "fake-gemini-key"
SAMPLE = "01-dentist-tomorrow-3pm.m4a"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
HTTP_TIMEOUT_SECONDS = 30
NOTE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class ProcessedNote:
    """A note that went through the stack, with the log lines written meanwhile."""

    uid: str
    token: str
    ticket: UploadTicket
    note: dict[str, Any]
    logs: dict[str, str]
    """Each function's stdout written while the note was processed."""

    def entries(self, target: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs[target].splitlines() if line.strip()]

    def note_entries(self, target: str) -> list[dict[str, Any]]:
        return [
            entry for entry in self.entries(target) if entry.get(LABELS_KEY, {}).get("note_id") == self.ticket.note_id
        ]


@pytest.fixture(scope="module")
def gemini_stack(stack: LocalStack) -> Iterator[LocalStack]:
    """The session stack with its functions extracting through the fake Gemini server."""
    original = dict(stack.extra_env)
    with FakeGemini(api_key=API_KEY) as fake:
        stack.restart_functions({"EXTRACTOR": "gemini", "GEMINI_API_KEY": API_KEY, "GEMINI_BASE_URL": fake.base_url})
        try:
            yield stack
        finally:
            stack.restart_functions(original)


def _stdout_offsets(stack: LocalStack) -> dict[str, int]:
    return {target: stack.functions.log_paths(target)[0].stat().st_size for target in ("upload_url", "process_audio")}


def _stdout_since(stack: LocalStack, offsets: dict[str, int]) -> dict[str, str]:
    texts = {}
    for target, offset in offsets.items():
        with stack.functions.log_paths(target)[0].open("rb") as handle:
            handle.seek(offset)
            texts[target] = handle.read().decode("utf-8")
    return texts


@pytest.fixture(scope="module")
def processed(
    gemini_stack: LocalStack, mint_token: Callable[..., str], sample_path: Callable[[str], Path]
) -> ProcessedNote:
    gemini_stack.reset()
    backend = BackendClient(upload_endpoint=gemini_stack.endpoints.upload_url, project_id=gemini_stack.project_id)
    uid = "log-user"
    token = mint_token(uid)
    audio = sample_path(SAMPLE)
    offsets = _stdout_offsets(gemini_stack)

    reply = requests.post(
        gemini_stack.endpoints.upload_url,
        json={"contentType": "audio/x-m4a", "sizeBytes": audio.stat().st_size, "timezone": "America/Los_Angeles"},
        headers={"Authorization": f"Bearer {token}", "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert reply.status_code == 201, reply.text
    ticket = UploadTicket.from_reply(reply.json())
    assert 200 <= backend.put_file(ticket, audio).status_code < 300
    note = backend.wait_for_note(uid, ticket.note_id, timeout_seconds=NOTE_TIMEOUT_SECONDS)
    assert gemini_stack.bridge.wait_idle(HTTP_TIMEOUT_SECONDS)

    return ProcessedNote(uid, token, ticket, note, _stdout_since(gemini_stack, offsets))


def test_logs_note_done(processed: ProcessedNote) -> None:
    assert processed.note["status"] == "done", processed.note.get("failure")


@pytest.mark.parametrize("target", ["upload_url", "process_audio"])
def test_logs_every_line_json(processed: ProcessedNote, target: str) -> None:
    entries = processed.entries(target)

    assert entries
    for entry in entries:
        assert entry["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert isinstance(entry["message"], str)


def test_logs_upload_trace(processed: ProcessedNote) -> None:
    entries = processed.note_entries("upload_url")

    assert entries
    for entry in entries:
        assert entry[TRACE_KEY] == f"projects/demo-braindump/traces/{TRACE_ID}"
        assert entry[LABELS_KEY] == {
            "function": "upload_url",
            "note_id": processed.ticket.note_id,
            "uid_hash": uid_hash(processed.uid),
        }


def test_logs_process_labels(processed: ProcessedNote) -> None:
    entries = processed.note_entries("process_audio")

    assert entries
    event_ids = {entry[LABELS_KEY].get("event_id") for entry in entries}
    assert len(event_ids) == 1
    assert event_ids != {None}
    assert event_ids != {""}
    for entry in entries:
        assert entry[LABELS_KEY]["function"] == "process_audio"
        assert entry[LABELS_KEY]["uid_hash"] == uid_hash(processed.uid)
    attempts = [entry[LABELS_KEY]["attempt"] for entry in entries if "attempt" in entry[LABELS_KEY]]
    assert attempts == ["1"]


def test_logs_process_trace(processed: ProcessedNote) -> None:
    entries = processed.note_entries("process_audio")

    traces = {entry.get(TRACE_KEY) for entry in entries}
    assert len(traces) == 1
    (trace,) = traces
    assert trace is not None
    assert re.fullmatch(r"projects/demo-braindump/traces/[0-9a-f]{32}", trace)


def test_logs_no_secrets(processed: ProcessedNote) -> None:
    text = "".join(processed.logs.values())
    signature = processed.ticket.upload_url.split("?", 1)[1]

    assert processed.token not in text
    assert processed.token.split(".")[1] not in text
    assert signature not in text
    assert "X-Goog-Signature" not in text
    assert processed.uid not in text
