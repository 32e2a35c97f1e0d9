"""The note state machine in functions/processing/state.py against the real Firestore emulator.

Time is injected through the ``now`` arguments, so lease expiry needs no sleep.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore

from devstack.emulators import FirestoreEmulator
from functions.models import ExtractedTask, ExtractionResult
from functions.processing import state
from functions.processing.state import ClaimOutcome

PROJECT = "demo-state-unit"
UID = "u-state"
T0 = dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)
LEASE_SECONDS = 60


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[firestore.Client]:
    """A Firestore client of an emulator on 127.0.0.1 that this module starts and stops."""
    emulator = FirestoreEmulator(log_dir=tmp_path_factory.mktemp("firestore-logs"))
    emulator.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FIRESTORE_EMULATOR_HOST", emulator.endpoint)
            yield firestore.Client(project=PROJECT)
    finally:
        emulator.stop()


def new_note(db: firestore.Client, **fields: Any) -> str:
    """Create an ``awaiting_upload`` note (as upload_url does) and return its id."""
    note_id = secrets.token_hex(16)
    document = {
        "status": "awaiting_upload",
        "contentType": "audio/mp4",
        "timezone": "Europe/Berlin",
        "attempt": 0,
        "history": [{"status": "awaiting_upload", "at": T0, "attempt": 0}],
        **fields,
    }
    db.document(f"users/{UID}/voiceNotes/{note_id}").set(document)
    return note_id


def read_note(db: firestore.Client, note_id: str) -> dict[str, Any]:
    snapshot = db.document(f"users/{UID}/voiceNotes/{note_id}").get()
    assert snapshot.exists
    return snapshot.to_dict() or {}


def task_ids(db: firestore.Client, note_id: str) -> list[str]:
    query = db.collection(f"users/{UID}/tasks").where(filter=firestore.FieldFilter("sourceNoteId", "==", note_id))
    return sorted(snapshot.id for snapshot in query.stream())


def claim(db: firestore.Client, note_id: str, event_id: str, at: dt.datetime = T0) -> state.Claim:
    return state.claim_note(
        db, UID, note_id, event_id=event_id, generation="17", now=at, lease_seconds=LEASE_SECONDS
    )


def result(*titles: str) -> ExtractionResult:
    return ExtractionResult(
        transcript=" ".join(titles), tasks=[ExtractedTask(title=title) for title in titles], model="unit"
    )


def complete(db: firestore.Client, note_id: str, event_id: str, attempt: int, *titles: str) -> bool:
    return state.complete_note(
        db, UID, note_id, event_id=event_id, attempt=attempt, result=result(*titles),
        timings_ms={"downloadMs": 1, "extractMs": 2}, now=T0,
    )  # fmt: skip


def fail(db: firestore.Client, note_id: str, event_id: str, attempt: int = 1) -> bool:
    return state.fail_note(
        db, UID, note_id, event_id=event_id, attempt=attempt, reason="corrupt_audio", message="m", now=T0
    )


def test_claim_fresh_note(db):
    note_id = new_note(db)

    claimed = claim(db, note_id, "ev-1")
    note = read_note(db, note_id)

    assert claimed.outcome is ClaimOutcome.CLAIMED
    assert claimed.attempt == 1
    assert note["status"] == "processing"
    assert note["attempt"] == 1
    assert note["lease"] == {
        "eventId": "ev-1",
        "generation": "17",
        "expiresAt": T0 + dt.timedelta(seconds=LEASE_SECONDS),
    }
    assert note["history"][-1] == {"status": "processing", "at": T0, "attempt": 1}


def test_claim_missing_note(db):
    assert claim(db, secrets.token_hex(16), "ev-1").outcome is ClaimOutcome.MISSING


@pytest.mark.parametrize(
    ("holder", "claimant", "seconds_later", "expected", "attempt"),
    [
        ("ev-1", "ev-1", 10, ClaimOutcome.LEASED_BY_SAME_EVENT, 1),
        ("ev-1", "ev-2", 10, ClaimOutcome.LEASED_BY_OTHER_EVENT, 1),
        ("ev-1", "ev-1", LEASE_SECONDS + 1, ClaimOutcome.CLAIMED, 2),
        ("ev-1", "ev-2", LEASE_SECONDS + 1, ClaimOutcome.CLAIMED, 2),
    ],
    ids=["same-event-live", "other-event-live", "same-event-expired", "other-event-expired"],
)
def test_claim_against_lease(db, holder, claimant, seconds_later, expected, attempt):
    note_id = new_note(db)
    assert claim(db, note_id, holder).outcome is ClaimOutcome.CLAIMED

    second = claim(db, note_id, claimant, T0 + dt.timedelta(seconds=seconds_later))
    note = read_note(db, note_id)

    assert second.outcome is expected
    assert note["attempt"] == attempt
    assert note["lease"]["eventId"] == (claimant if expected is ClaimOutcome.CLAIMED else holder)
    assert [entry["attempt"] for entry in note["history"]] == list(range(attempt + 1))


def test_claim_after_release_is_immediate(db):
    note_id = new_note(db)
    claim(db, note_id, "ev-1")

    state.release_note(db, UID, note_id, event_id="ev-1", error_code="transient", now=T0)
    again = claim(db, note_id, "ev-1", T0 + dt.timedelta(seconds=1))
    note = read_note(db, note_id)

    assert again.outcome is ClaimOutcome.CLAIMED
    assert again.attempt == 2
    assert note["lastError"] == {"code": "transient", "at": T0}


def test_release_by_non_holder_ignored(db):
    note_id = new_note(db)
    claim(db, note_id, "ev-1")

    state.release_note(db, UID, note_id, event_id="ev-2", error_code="transient", now=T0)
    note = read_note(db, note_id)

    assert note["lease"]["expiresAt"] == T0 + dt.timedelta(seconds=LEASE_SECONDS)
    assert "lastError" not in note


@pytest.mark.parametrize("final", ["done", "failed"])
def test_claim_final_note(db, final):
    note_id = new_note(db)
    claim(db, note_id, "ev-1")
    if final == "done":
        assert complete(db, note_id, "ev-1", 1, "Call the dentist")
    else:
        assert fail(db, note_id, "ev-1")

    again = claim(db, note_id, "ev-1", T0 + dt.timedelta(hours=2))
    note = read_note(db, note_id)

    assert again.outcome is ClaimOutcome.FINAL
    assert note["status"] == final
    assert note["attempt"] == 1


def test_complete_writes_tasks_and_done(db):
    note_id = new_note(db)
    claim(db, note_id, "ev-1")

    committed = complete(db, note_id, "ev-1", 1, "Call the dentist", "Buy milk")
    note = read_note(db, note_id)

    assert committed is True
    assert note["status"] == "done"
    assert note["taskIds"] == [f"{note_id}-00", f"{note_id}-01"]
    assert note["taskCount"] == 2
    assert note["timingsMs"] == {"downloadMs": 1, "extractMs": 2}
    assert "lease" not in note
    assert [entry["status"] for entry in note["history"]] == ["awaiting_upload", "processing", "done"]
    assert note["history"][-1] == {"status": "done", "at": T0, "attempt": 1}
    assert task_ids(db, note_id) == [f"{note_id}-00", f"{note_id}-01"]


@pytest.mark.parametrize("action", ["complete", "fail"])
def test_write_needs_lease(db, action):
    note_id = new_note(db)
    claim(db, note_id, "ev-1")

    if action == "complete":
        written = complete(db, note_id, "ev-2", 1, "Call the dentist")
    else:
        written = fail(db, note_id, "ev-2")
    note = read_note(db, note_id)

    assert written is False
    assert note["status"] == "processing"
    assert task_ids(db, note_id) == []


@pytest.mark.parametrize("action", ["complete", "fail"])
def test_write_after_takeover_rejected(db, action):
    note_id = new_note(db)
    claim(db, note_id, "ev-1")
    assert claim(db, note_id, "ev-2", T0 + dt.timedelta(seconds=LEASE_SECONDS + 1)).attempt == 2

    if action == "complete":
        written = complete(db, note_id, "ev-1", 1, "Call the dentist")
    else:
        written = fail(db, note_id, "ev-1")
    note = read_note(db, note_id)

    assert written is False
    assert note["status"] == "processing"
    assert note["lease"]["eventId"] == "ev-2"
    assert task_ids(db, note_id) == []


def test_fail_records_reason(db):
    note_id = new_note(db)
    claim(db, note_id, "ev-1")

    assert fail(db, note_id, "ev-1") is True
    note = read_note(db, note_id)

    assert note["status"] == "failed"
    assert note["failure"] == {"reason": "corrupt_audio", "message": "m"}
    assert "lease" not in note
    assert note["history"][-1] == {"status": "failed", "at": T0, "attempt": 1}


def test_rerun_overwrites_tasks(db):
    note_id = new_note(db)
    stale = {"title": "stale", "sourceNoteId": note_id, "index": 0}
    db.document(f"users/{UID}/tasks/{note_id}-00").set(stale)
    claim(db, note_id, "ev-1")

    assert complete(db, note_id, "ev-1", 1, "Call the dentist")
    task = db.document(f"users/{UID}/tasks/{note_id}-00").get().to_dict() or {}

    assert task_ids(db, note_id) == [f"{note_id}-00"]
    assert task["title"] == "Call the dentist"


def test_write_time_added(db):
    note_id = new_note(db)
    claim(db, note_id, "ev-1")
    complete(db, note_id, "ev-1", 1, "Call the dentist")

    state.record_write_time(db, UID, note_id, write_ms=7)
    note = read_note(db, note_id)

    assert note["timingsMs"] == {"downloadMs": 1, "extractMs": 2, "writeMs": 7}
    assert note["status"] == "done"



def test_claim_other_object_untouched(db):
    issued = f"voice-notes/{UID}/n.m4a"
    note_id = new_note(db, objectName=issued)

    other = state.claim_note(
        db, UID, note_id, event_id="ev-1", generation="17", now=T0, lease_seconds=LEASE_SECONDS,
        object_name=f"voice-notes/{UID}/n.wav",
    )  # fmt: skip
    same = state.claim_note(
        db, UID, note_id, event_id="ev-2", generation="17", now=T0, lease_seconds=LEASE_SECONDS,
        object_name=issued,
    )  # fmt: skip

    assert other.outcome is ClaimOutcome.OTHER_OBJECT
    assert same.outcome is ClaimOutcome.CLAIMED
    assert read_note(db, note_id)["lease"]["eventId"] == "ev-2"
