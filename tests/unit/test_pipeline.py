"""process_note and the process_audio handler, in-process against real emulators and a fake Gemini.

The module starts the Firestore emulator, fake-gcs-server and the fake Gemini
server on 127.0.0.1. fake-gcs-server points its notifications at a closed
loopback port, so no event reaches anything but these tests. The wall clock
of the pipeline is injected; its monotonic clock stays real because the
Gemini retry deadline runs on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cloudevents.http import CloudEvent
from google.cloud import firestore

from devstack.emulators import FakeGcsServer, FirestoreEmulator
from devstack.processes import free_port
from functions import clients, config, extraction
from functions.config import Settings
from functions.errors import TransientError
from functions.objects import ObjectRef
from functions.processing import handle_storage_event, state
from functions.processing.event import StorageEvent
from functions.processing.pipeline import Clock, process_note
from tests.fakes.gemini import FakeGemini, Script, Step

PROJECT = "demo-pipeline-unit"
BUCKET = "pipeline-unit"
UID = "u-pipeline"
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NOW = dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)
DENTIST = {
    "transcript": "Call the dentist tomorrow.",
    "tasks": [
        {"title": "Call the dentist", "notes": None, "due": None, "all_day": False, "priority": None, "recurrence": None},
        {"title": "Buy milk", "notes": None, "due": None, "all_day": False, "priority": None, "recurrence": None},
    ],
}


@dataclasses.dataclass
class Env:
    """The running servers, a Firestore client and the pipeline's settings."""

    db: firestore.Client
    storage_url: str
    gemini: FakeGemini
    settings: Settings


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FirestoreEmulator, FakeGcsServer, FakeGemini]]:
    log_dir = tmp_path_factory.mktemp("pipeline-logs")
    firestore_emulator = FirestoreEmulator(log_dir=log_dir)
    storage = FakeGcsServer(
        log_dir=log_dir, project_id=PROJECT, topic="unused", pubsub_endpoint=f"127.0.0.1:{free_port()}"
    )
    gemini = FakeGemini(api_key="test-key")
    try:
        firestore_emulator.start()
        storage.start()
        storage.create_bucket(BUCKET)
        gemini.start()
        yield firestore_emulator, storage, gemini
    finally:
        gemini.stop()
        storage.stop()
        firestore_emulator.stop()


@pytest.fixture
def env(servers: tuple[FirestoreEmulator, FakeGcsServer, FakeGemini], monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """Point this process's cached clients, settings and extractor at the module's servers."""
    firestore_emulator, storage, gemini = servers
    variables = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "UPLOAD_BUCKET": BUCKET,
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.endpoint,
        "STORAGE_EMULATOR_HOST": storage.base_url,
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "GCE_METADATA_IP": "127.0.0.1:9",
        "EXTRACTOR": "gemini",
        "GEMINI_API_KEY": "test-key",
        "GEMINI_BASE_URL": gemini.base_url,
        "FUNCTION_TIMEOUT_SECONDS": "60",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    gemini.load(Script(fallback=Step.success(DENTIST)))
    _drop_caches()
    try:
        yield Env(firestore.Client(project=PROJECT), storage.base_url, gemini, config.get_settings())
    finally:
        _drop_caches()


def _drop_caches() -> None:
    config.get_settings.cache_clear()
    extraction.get_extractor.cache_clear()
    clients.reset_clients()


def new_note(env: Env, content_type: str = "audio/mp4") -> ObjectRef:
    """Create an ``awaiting_upload`` note as upload_url does; return its object reference."""
    note_id = secrets.token_hex(16)
    env.db.document(f"users/{UID}/voiceNotes/{note_id}").set(
        {
            "status": "awaiting_upload",
            "contentType": content_type,
            "timezone": "Europe/Berlin",
            "recordedAt": NOW,
            "attempt": 0,
            "history": [{"status": "awaiting_upload", "at": NOW, "attempt": 0}],
        }
    )
    return ObjectRef(uid=UID, note_id=note_id, extension="m4a")


def upload(env: Env, ref: ObjectRef, data: bytes, content_type: str, *, event_time: dt.datetime = NOW) -> StorageEvent:
    """Store ``data`` as the note's object and return the finalize event for it."""
    name = f"voice-notes/{UID}/{ref.note_id}.{ref.extension}"
    reply = requests.post(
        f"{env.storage_url}/upload/storage/v1/b/{BUCKET}/o",
        params={"uploadType": "media", "name": name},
        data=data,
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    stored = reply.json()
    return StorageEvent(
        event_id=f"ev-{secrets.token_hex(4)}",
        event_time=event_time,
        bucket=BUCKET,
        name=name,
        generation=str(stored["generation"]),
        content_type=content_type,
        size_bytes=int(stored["size"]),
    )


def read_note(env: Env, ref: ObjectRef) -> dict[str, Any]:
    return env.db.document(f"users/{UID}/voiceNotes/{ref.note_id}").get().to_dict() or {}


def task_ids(env: Env, ref: ObjectRef) -> list[str]:
    query = env.db.collection(f"users/{UID}/tasks").where(
        filter=firestore.FieldFilter("sourceNoteId", "==", ref.note_id)
    )
    return sorted(snapshot.id for snapshot in query.stream())


def object_exists(env: Env, event: StorageEvent) -> bool:
    quoted = requests.utils.quote(event.name, safe="")
    return requests.get(f"{env.storage_url}/storage/v1/b/{BUCKET}/o/{quoted}", timeout=10).status_code == 200


def clock_at(moment: dt.datetime) -> Clock:
    return Clock(now=lambda: moment)


def test_note_done_with_timings(env):
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")

    process_note(env.settings, event, ref, clock_at(NOW))
    note = read_note(env, ref)

    assert note["status"] == "done"
    assert note["attempt"] == 1
    assert [(entry["status"], entry["attempt"]) for entry in note["history"]] == [
        ("awaiting_upload", 0),
        ("processing", 1),
        ("done", 1),
    ]
    assert all(entry["at"] == NOW for entry in note["history"])
    assert sorted(note["timingsMs"]) == ["downloadMs", "extractMs", "writeMs"]
    assert all(value >= 0 for value in note["timingsMs"].values())
    assert task_ids(env, ref) == [f"{ref.note_id}-00", f"{ref.note_id}-01"]
    assert not object_exists(env, event)


def test_redelivery_after_done_ignored(env):
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")
    process_note(env.settings, event, ref, clock_at(NOW))

    process_note(env.settings, event, ref, clock_at(NOW + dt.timedelta(minutes=5)))
    note = read_note(env, ref)

    assert note["attempt"] == 1
    assert len(env.gemini.generate_requests) == 1
    assert task_ids(env, ref) == [f"{ref.note_id}-00", f"{ref.note_id}-01"]


@pytest.mark.parametrize(
    ("file", "declared", "reason"),
    [
        ("note.m4a", "audio/mp4", "empty_file"),
        ("edge-truncated.m4a", "audio/mp4", "corrupt_audio"),
        ("edge-png-image.m4a", "audio/mp4", "unsupported_audio"),
        ("edge-text-file.mp3", "audio/mpeg", "unsupported_audio"),
        ("edge-lying-header.wav", "audio/wav", "corrupt_audio"),
        ("edge-12-minutes.m4a", "audio/mp4", "too_long"),
        ("02-dry-cleaning-friday.ogg", "audio/mp4", "type_mismatch"),
        ("01-dentist-tomorrow-3pm.m4a", "video/mp4", "unsupported_audio"),
    ],
    ids=["empty", "truncated", "png", "text", "lying-wav", "twelve-minutes", "ogg-as-m4a", "stored-type-not-audio"],
)
def test_bad_audio_fails(env, file, declared, reason):
    ref = new_note(env, content_type=declared)
    event = upload(env, ref, (SAMPLES / file).read_bytes(), declared)

    process_note(env.settings, event, ref, clock_at(NOW))
    note = read_note(env, ref)

    assert note["status"] == "failed"
    assert note["failure"]["reason"] == reason
    assert [entry["status"] for entry in note["history"]] == ["awaiting_upload", "processing", "failed"]
    assert env.gemini.generate_requests == []
    assert object_exists(env, event)


@pytest.mark.parametrize("event_size", [True, False], ids=["size-in-event", "size-missing"])
def test_oversize_fails(env, event_size):
    settings = dataclasses.replace(env.settings, max_upload_bytes=20_000)
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")
    if not event_size:
        event = dataclasses.replace(event, size_bytes=None)

    process_note(settings, event, ref, clock_at(NOW))

    assert read_note(env, ref)["failure"]["reason"] == "too_large"


def test_webm_duration_limit(env):
    settings = dataclasses.replace(env.settings, max_audio_seconds=5)
    ref = new_note(env, content_type="audio/webm")
    event = upload(env, ref, (SAMPLES / "12-electricity-free-trial.webm").read_bytes(), "audio/webm")

    process_note(settings, event, ref, clock_at(NOW))

    assert read_note(env, ref)["failure"]["reason"] == "too_long"


def test_failed_audio_deleted_when_configured(env):
    settings = dataclasses.replace(env.settings, delete_audio_after_failed=True)
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "edge-png-image.m4a").read_bytes(), "audio/mp4")

    process_note(settings, event, ref, clock_at(NOW))

    assert read_note(env, ref)["status"] == "failed"
    assert not object_exists(env, event)


def test_done_audio_kept_when_configured(env):
    settings = dataclasses.replace(env.settings, delete_audio_after_done=False)
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")

    process_note(settings, event, ref, clock_at(NOW))

    assert read_note(env, ref)["status"] == "done"
    assert object_exists(env, event)


def test_audio_missing_fails(env):
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")
    quoted = requests.utils.quote(event.name, safe="")
    requests.delete(f"{env.storage_url}/storage/v1/b/{BUCKET}/o/{quoted}", timeout=10)

    process_note(env.settings, event, ref, clock_at(NOW))

    assert read_note(env, ref)["failure"]["reason"] == "audio_missing"


def test_expired_event_fails_note(env):
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")
    late = NOW + dt.timedelta(seconds=env.settings.max_event_age_seconds + 1)

    process_note(env.settings, event, ref, clock_at(late))
    note = read_note(env, ref)

    assert note["status"] == "failed"
    assert note["failure"]["reason"] == "expired"
    assert note["history"][-1] == {"status": "failed", "at": late, "attempt": 1}
    assert env.gemini.generate_requests == []


def test_expired_event_leaves_live_lease(env):
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")
    late = NOW + dt.timedelta(seconds=env.settings.max_event_age_seconds + 1)
    state.claim_note(env.db, UID, ref.note_id, event_id="ev-newer", generation="1", now=late, lease_seconds=60)

    process_note(env.settings, event, ref, clock_at(late))
    note = read_note(env, ref)

    assert note["status"] == "processing"
    assert note["lease"]["eventId"] == "ev-newer"


def test_same_event_lease_raises(env):
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")
    state.claim_note(env.db, UID, ref.note_id, event_id=event.event_id, generation="1", now=NOW, lease_seconds=60)

    with pytest.raises(TransientError):
        process_note(env.settings, event, ref, clock_at(NOW + dt.timedelta(seconds=10)))
    note = read_note(env, ref)

    assert note["attempt"] == 1
    assert note["lease"]["expiresAt"] == NOW + dt.timedelta(seconds=60)


def test_takeover_after_crash(env):
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")
    # A delivery that claimed the note and then died without releasing it.
    state.claim_note(env.db, UID, ref.note_id, event_id=event.event_id, generation="1", now=NOW, lease_seconds=60)

    process_note(env.settings, event, ref, clock_at(NOW + dt.timedelta(seconds=61)))
    note = read_note(env, ref)

    assert note["status"] == "done"
    assert note["attempt"] == 2
    assert [entry["attempt"] for entry in note["history"]] == [0, 1, 2, 2]


def test_transient_failure_releases_lease(env):
    settings = dataclasses.replace(env.settings, function_timeout_seconds=23)
    env.gemini.load(Script(fallback=Step.error(503)))
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")

    with pytest.raises(TransientError):
        process_note(settings, event, ref, clock_at(NOW))
    released = read_note(env, ref)
    env.gemini.load(Script(fallback=Step.success(DENTIST)))
    process_note(settings, event, ref, clock_at(NOW + dt.timedelta(seconds=1)))
    note = read_note(env, ref)

    assert released["status"] == "processing"
    assert released["lease"]["expiresAt"] == NOW
    assert released["lastError"] == {"code": "transient", "at": NOW}
    assert note["status"] == "done"
    assert note["attempt"] == 2
    assert task_ids(env, ref) == [f"{ref.note_id}-00", f"{ref.note_id}-01"]


def storage_cloud_event(name: str, bucket: str = BUCKET) -> CloudEvent:
    attributes = {
        "id": f"ev-{secrets.token_hex(4)}",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "time": NOW.isoformat(),
    }
    data = {"bucket": bucket, "name": name, "generation": "1", "contentType": "audio/mp4", "size": "10"}
    return CloudEvent(attributes, data)


@pytest.mark.parametrize(
    ("name", "bucket", "log_line"),
    [
        ("exports/report.csv", BUCKET, "object is outside voice-notes/"),
        ("voice-notes/u1/not-a-note-id.m4a", BUCKET, "does not parse"),
        (f"voice-notes/{UID}/{'0' * 32}.m4a", BUCKET, "not found"),
        (f"voice-notes/{UID}/{'0' * 32}.m4a", "another-bucket", "is in bucket another-bucket"),
    ],
    ids=["outside-prefix", "unparsable-name", "no-note-document", "other-bucket"],
)
def test_foreign_object_acknowledged(env, caplog, name, bucket, log_line):
    caplog.set_level(logging.INFO, logger="functions.processing")

    handle_storage_event(storage_cloud_event(name, bucket))

    assert any(log_line in record.getMessage() for record in caplog.records)
    assert any("acknowledged without work" in record.getMessage() for record in caplog.records)
    assert env.gemini.generate_requests == []


def test_handler_processes_own_upload(env):
    ref = new_note(env)
    event = upload(env, ref, (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes(), "audio/mp4")
    now = dt.datetime.now(dt.UTC)
    attributes = {
        "id": event.event_id,
        "type": "google.cloud.storage.object.v1.finalized",
        "source": f"//storage.googleapis.com/projects/_/buckets/{BUCKET}",
        "time": now.isoformat(),
    }
    data = {
        "bucket": BUCKET,
        "name": event.name,
        "generation": event.generation,
        "contentType": "audio/mp4",
        "size": str(event.size_bytes),
    }

    handle_storage_event(CloudEvent(attributes, data))

    assert read_note(env, ref)["status"] == "done"
    assert task_ids(env, ref) == [f"{ref.note_id}-00", f"{ref.note_id}-01"]

