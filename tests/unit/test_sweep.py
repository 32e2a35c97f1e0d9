"""The sweep of notes that no event can finish, against the real Firestore emulator."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore

from devstack.emulators import FirestoreEmulator
from functions.processing.sweep import sweep_stale_notes

PROJECT = "demo-sweep-unit"
NOW = dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)
MAX_AGE_SECONDS = 3600
LONG_AGO = NOW - dt.timedelta(hours=2)
RECENTLY = NOW - dt.timedelta(minutes=10)


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


def put_note(db: firestore.Client, uid: str, **fields: Any) -> firestore.DocumentReference:
    ref = db.document(f"users/{uid}/voiceNotes/{secrets.token_hex(16)}")
    ref.set({"attempt": 1, "history": [], **fields})
    return ref


def test_sweep_ends_only_stale_notes(db):
    uid = secrets.token_hex(4)
    abandoned = put_note(db, uid, status="awaiting_upload", uploadExpiresAt=LONG_AGO, attempt=0)
    waiting = put_note(db, uid, status="awaiting_upload", uploadExpiresAt=RECENTLY, attempt=0)
    stalled = put_note(db, uid, status="processing", lease={"eventId": "ev", "expiresAt": LONG_AGO})
    running = put_note(db, uid, status="processing", lease={"eventId": "ev", "expiresAt": NOW})
    finished = put_note(db, uid, status="done", uploadExpiresAt=LONG_AGO)

    counts = sweep_stale_notes(db, NOW, MAX_AGE_SECONDS)

    assert (counts.upload_missing, counts.processing_stalled) == (1, 1)
    abandoned_note = abandoned.get().to_dict()
    assert abandoned_note["status"] == "failed"
    assert abandoned_note["failure"]["reason"] == "upload_missing"
    assert abandoned_note["history"] == [{"status": "failed", "at": NOW, "attempt": 0}]
    stalled_note = stalled.get().to_dict()
    assert stalled_note["status"] == "failed"
    assert stalled_note["failure"]["reason"] == "expired"
    assert "lease" not in stalled_note
    assert waiting.get().to_dict()["status"] == "awaiting_upload"
    assert running.get().to_dict()["status"] == "processing"
    assert finished.get().to_dict()["status"] == "done"


def test_second_sweep_changes_nothing(db):
    uid = secrets.token_hex(4)
    abandoned = put_note(db, uid, status="awaiting_upload", uploadExpiresAt=LONG_AGO, attempt=0)
    sweep_stale_notes(db, NOW, MAX_AGE_SECONDS)
    first = abandoned.get().to_dict()

    counts = sweep_stale_notes(db, NOW + dt.timedelta(minutes=5), MAX_AGE_SECONDS)

    assert (counts.upload_missing, counts.processing_stalled) == (0, 0)
    assert abandoned.get().to_dict() == first
