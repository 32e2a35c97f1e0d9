"""The whole path on the local stack: upload_url, the signed PUT, the Pub/Sub
notification and the bridge, process_audio, and the tasks in Firestore."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from devstack.client import BackendClient
from devstack.stack import LocalStack
from tests.fakes.gemini import FakeGemini, Script, Step

MANIFEST = json.loads((Path(__file__).resolve().parents[2] / "samples" / "manifest.json").read_text())
ENTRIES = {entry["file"]: entry for entry in MANIFEST["files"]}


def reference(name: str) -> tuple[str, str]:
    """Return the recording time (ISO with offset) and the IANA zone of a sample."""
    ref = ENTRIES[name]["reference"]
    return ref["recorded_at"], ref["time_zone"]


def object_exists(stack: LocalStack, object_name: str) -> bool:
    return object_name in stack.storage.list_objects(stack.bucket)


def upload_sample(backend: BackendClient, token: str, path: Path) -> tuple[str, str]:
    recorded_at, zone = reference(path.name)
    ticket = backend.upload(
        token, path, content_type=ENTRIES[path.name]["mime_type"], timezone=zone, recorded_at=recorded_at
    )
    return ticket.note_id, ticket.object_name


def test_offline_note_reaches_done(backend, clean_stack, mint_token, sample_path):
    path = sample_path("01-dentist-tomorrow-3pm.m4a")

    note_id, object_name = upload_sample(backend, mint_token("alice"), path)
    note = backend.wait_for_note("alice", note_id, timeout_seconds=180)

    assert note["status"] == "done"
    assert [step["status"] for step in note["history"]] == ["awaiting_upload", "processing", "done"]
    assert note["contentType"] == "audio/mp4"
    assert note["timezone"] == "America/Los_Angeles"
    assert "dentist" in note["transcript"].lower()

    tasks = backend.tasks("alice", note_id)
    assert len(tasks) == 1
    assert note["taskIds"] == [tasks[0]["id"]]
    assert "dentist" in tasks[0]["title"].lower()
    assert tasks[0]["dueDate"] == "2026-03-11"
    assert tasks[0]["allDay"] is False
    local_due = tasks[0]["dueAt"].astimezone(ZoneInfo("America/Los_Angeles"))
    assert (local_due.date(), local_due.hour, local_due.minute) == (dt.date(2026, 3, 11), 15, 0)
    assert not object_exists(clean_stack, object_name)


def test_bad_audio_fails_with_reason(backend, clean_stack, mint_token, sample_path):
    path = sample_path("edge-png-image.m4a")

    note_id, object_name = upload_sample(backend, mint_token("bob"), path)
    note = backend.wait_for_note("bob", note_id, timeout_seconds=60)

    assert note["status"] == "failed"
    assert note["failure"]["reason"] == "unsupported_audio"
    assert backend.tasks("bob", note_id) == []
    assert object_exists(clean_stack, object_name)


def test_foreign_object_is_ignored(clean_stack):
    url = f"{clean_stack.storage.base_url}/upload/storage/v1/b/{clean_stack.bucket}/o"
    reply = requests.post(url, params={"uploadType": "media", "name": "exports/report.csv"}, data=b"a,b\n", timeout=10)
    assert reply.status_code == 200

    deadline = time.monotonic() + 30
    while clean_stack.bridge.stats().succeeded < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    stats = clean_stack.bridge.stats()

    assert stats.succeeded == 1
    assert stats.failed == 0
    assert object_exists(clean_stack, "exports/report.csv")


@pytest.fixture
def gemini_stack(stack: LocalStack) -> Iterator[tuple[LocalStack, FakeGemini]]:
    """The session stack with its functions switched to Gemini against a fake server, then back."""
    with FakeGemini(Script(fallback=Step("echo"))) as fake:
        stack.restart_functions(
            {"EXTRACTOR": "gemini", "GEMINI_API_KEY": "test-key", "GEMINI_BASE_URL": fake.base_url}
        )
        try:
            stack.reset()
            yield stack, fake
        finally:
            stack.restart_functions({"EXTRACTOR": "offline"})


def test_gemini_note_reaches_done(gemini_stack, mint_token, sample_path):
    stack, fake = gemini_stack
    backend = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
    path = sample_path("02-dry-cleaning-friday.ogg")

    note_id, _ = upload_sample(backend, mint_token("carol"), path)
    note = backend.wait_for_note("carol", note_id, timeout_seconds=60)

    assert note["status"] == "done"
    assert note["extraction"]["model"] == "gemini-3.5-flash-lite"
    assert note["extraction"]["attempts"] == 1
    assert note["extraction"]["promptTokens"] == 1200

    generate = fake.generate_requests
    assert len(generate) == 1
    assert generate[0].audio_mime_type == "audio/ogg"
    assert "2026" in generate[0].prompt_text

    expected = ENTRIES[path.name]["expected_tasks"]
    tasks = sorted(backend.tasks("carol", note_id), key=lambda task: task["index"])
    assert [task["title"] for task in tasks] == [task["title"] for task in expected]
    assert [task["dueDate"] for task in tasks] == [(task["due"] or "")[:10] or None for task in expected]


def test_reupload_after_done_is_deleted(backend, clean_stack, mint_token, sample_path):
    path = sample_path("01-dentist-tomorrow-3pm.m4a")
    recorded_at, zone = reference(path.name)
    ticket = backend.ticket(
        mint_token("dave"), content_type="audio/x-m4a", size_bytes=path.stat().st_size, timezone=zone,
        recorded_at=recorded_at,
    )
    assert backend.put_file(ticket, path).status_code == 200
    note = backend.wait_for_note("dave", ticket.note_id, timeout_seconds=180)
    assert note["status"] == "done"
    deliveries = clean_stack.bridge.stats().succeeded

    # fake-gcs-server ignores x-goog-if-generation-match, so the retried PUT stores a new generation.
    assert backend.put_file(ticket, path).status_code == 200
    deadline = time.monotonic() + 60
    while clean_stack.bridge.stats().succeeded <= deliveries and time.monotonic() < deadline:
        time.sleep(0.1)

    assert clean_stack.bridge.stats().succeeded == deliveries + 1
    assert not object_exists(clean_stack, ticket.object_name)
    assert len(backend.tasks("dave", ticket.note_id)) == 1
    assert backend.note("dave", ticket.note_id)["history"] == note["history"]
