"""The Firestore document models against docs/data-contract.md and against documents the pipeline writes."""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from devstack.client import BackendClient
from devstack.stack import REPO_ROOT, LocalStack
from functions.documents import TaskDocument, VoiceNoteDocument
from functions.models import NoteStatus

DOC_PATH = REPO_ROOT / "docs" / "data-contract.md"
WAIT_SECONDS = 180.0
FIELD_ROW = re.compile(r"^\| `([^`]+)` \|")

NOW = dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)
NOTE_ID = "950cb597acd3bd02d8a3226549540300"
CREATED_NOTE: dict[str, Any] = {
    "status": "awaiting_upload",
    "contentType": "audio/mp4",
    "declaredContentType": "audio/x-m4a",
    "declaredSizeBytes": 50597,
    "objectName": f"voice-notes/u1/{NOTE_ID}.m4a",
    "bucket": "braindump-local",
    "timezone": "Europe/Berlin",
    "recordedAt": NOW,
    "uploadExpiresAt": NOW,
    "attempt": 0,
    "createdAt": NOW,
    "updatedAt": NOW,
    "history": [{"status": "awaiting_upload", "at": NOW, "attempt": 0}],
}
DONE_FIELDS: dict[str, Any] = {
    "status": "done",
    "attempt": 1,
    "transcript": "call the dentist",
    "taskIds": [f"{NOTE_ID}-00"],
    "taskCount": 1,
    "extraction": {"model": "m", "promptTokens": None, "candidateTokens": None, "attempts": 1},
    "timingsMs": {"downloadMs": 1, "extractMs": 2},
    "completedAt": NOW,
}


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """Return the pydantic model inside ``annotation`` and whether it sits in a list."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            model, in_list = _nested_model(argument)
            if model is not None:
                return model, in_list
        return None, False
    if origin is list:
        model, _ = _nested_model(typing.get_args(annotation)[0])
        return model, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def model_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Return the Firestore field paths of ``model``: ``lease``, ``lease.eventId``, ``history[].status``."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        paths.append(path)
        nested, in_list = _nested_model(info.annotation)
        if nested is not None:
            paths.extend(model_fields(nested, path + ("[]." if in_list else ".")))
    return paths


def documented_fields(path: Path, heading: str) -> list[str]:
    """Return the field names in the first table after ``heading``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fields: list[str] = []
    in_table = False
    for line in lines[lines.index(heading) + 1 :]:
        if not line.startswith("|"):
            if in_table:
                break
            continue
        in_table = True
        match = FIELD_ROW.match(line)
        if match:
            fields.append(match.group(1))
    return fields


@pytest.mark.parametrize(
    ("model", "heading"),
    [
        pytest.param(VoiceNoteDocument, "## `voiceNotes` documents", id="voice-note"),
        pytest.param(TaskDocument, "## `tasks` documents", id="task"),
    ],
)
def test_doc_lists_model_fields(model: type[BaseModel], heading: str) -> None:
    documented = documented_fields(DOC_PATH, heading)
    expected = model_fields(model)

    assert len(documented) == len(set(documented)), f"fields listed twice: {documented}"
    assert sorted(documented) == sorted(expected)


def test_doc_lists_failure_reasons() -> None:
    from functions.models import FailureReason

    text = DOC_PATH.read_text(encoding="utf-8")
    section = text[text.index("### Failure reasons") : text.index("## `tasks` documents")]
    listed = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)

    assert listed == [reason.value for reason in FailureReason]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"status": "done"}, "a done note needs transcript", id="done-without-result"),
        pytest.param({**DONE_FIELDS, "taskCount": 2}, "taskCount is 2 but taskIds has 1 ids", id="count-mismatch"),
        pytest.param({"status": "failed"}, "a failed note needs failure", id="failed-without-reason"),
        pytest.param({"status": "processing"}, "a processing note needs lease", id="processing-without-lease"),
        pytest.param(
            {"status": "failed", "failure": {"reason": "bogus", "message": "m"}}, "reason", id="unknown-reason"
        ),
        pytest.param({"owner": "u1"}, "owner", id="unknown-field"),
        pytest.param({"recordedAt": NOW.replace(tzinfo=None)}, "recordedAt", id="naive-timestamp"),
    ],
)
def test_note_model_rejects(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        VoiceNoteDocument.model_validate({**CREATED_NOTE, **changes})

    assert message in str(caught.value)


def test_note_model_accepts_done() -> None:
    note = VoiceNoteDocument.model_validate({**CREATED_NOTE, **DONE_FIELDS})

    assert note.status is NoteStatus.DONE
    assert note.task_count == 1


def _upload(backend: BackendClient, uid: str, path: Path, content_type: str) -> str:
    token = backend.token(uid)
    ticket = backend.ticket(
        token, content_type=content_type, size_bytes=max(path.stat().st_size, 1), timezone="Europe/Berlin"
    )
    reply = backend.put_file(ticket, path)
    assert reply.status_code == 200, reply.text
    return ticket.note_id


def test_created_note_validates(stack: LocalStack, uid: str) -> None:
    backend = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
    ticket = backend.ticket(backend.token(uid), content_type="audio/ogg", size_bytes=1000, timezone="Asia/Tokyo")

    note = VoiceNoteDocument.model_validate(backend.note(uid, ticket.note_id))

    assert note.status is NoteStatus.AWAITING_UPLOAD
    assert note.content_type == "audio/ogg"


def test_done_note_and_tasks_validate(stack: LocalStack, uid: str, sample_path: Callable[[str], Path]) -> None:
    backend = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
    note_id = _upload(backend, uid, sample_path("02-dry-cleaning-friday.ogg"), "audio/ogg")

    raw_note = backend.wait_for_note(uid, note_id, timeout_seconds=WAIT_SECONDS)
    note = VoiceNoteDocument.model_validate(raw_note)
    tasks = [
        TaskDocument.model_validate({key: value for key, value in task.items() if key != "id"})
        for task in backend.tasks(uid, note_id)
    ]

    assert note.status is NoteStatus.DONE, raw_note.get("failure")
    assert note.task_count == len(tasks)
    assert note.task_count is not None and note.task_count > 0
    assert sorted(task.index for task in tasks) == list(range(len(tasks)))
    assert {task.source_note_id for task in tasks} == {note_id}


def test_failed_note_validates(stack: LocalStack, uid: str, sample_path: Callable[[str], Path]) -> None:
    backend = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
    note_id = _upload(backend, uid, sample_path("edge-text-file.mp3"), "audio/mpeg")

    note = VoiceNoteDocument.model_validate(backend.wait_for_note(uid, note_id, timeout_seconds=WAIT_SECONDS))

    assert note.status is NoteStatus.FAILED
    assert note.failure is not None
    assert note.failure.reason.value == "unsupported_audio"
    assert [entry.status for entry in note.history] == [
        NoteStatus.AWAITING_UPLOAD,
        NoteStatus.PROCESSING,
        NoteStatus.FAILED,
    ]
