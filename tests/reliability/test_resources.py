"""500 failing invocations of the pipeline in one process leak no file descriptor and no temporary file.

The pipeline runs in this process against the stack's emulators. Four in five
invocations get audio that fails a check (the note ends ``failed``), one in
five finds its note leased by the same event and raises ``TransientError``.
The objects live in a bucket of their own, so the deployed functions, which
also receive their finalize events, acknowledge them without work.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from functions import clients, config, extraction
from functions.config import Settings
from functions.errors import TransientError
from functions.objects import ObjectRef
from functions.processing import state
from functions.processing.event import StorageEvent
from functions.processing.pipeline import process_note

INVOCATIONS = 500
WARM_UP = 20
BUCKET = "reliability-in-process"
UID = "resources"
BAD_FILES = [
    ("edge-png-image.m4a", "audio/mp4", "unsupported_audio"),
    ("edge-truncated.m4a", "audio/mp4", "corrupt_audio"),
    ("edge-text-file.mp3", "audio/mpeg", "unsupported_audio"),
    ("edge-lying-header.wav", "audio/wav", "corrupt_audio"),
]
NOW = dt.datetime.now(dt.UTC)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fds_under(directory: str) -> list[str]:
    """Return the paths under ``directory`` that this process has open."""
    paths = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(directory.rstrip("/") + "/"):
            paths.append(target)
    return paths


def usage_bytes(directory: Path) -> tuple[int, int]:
    """Return ``(entries, bytes)`` of the files under ``directory``."""
    entries = 0
    size = 0
    for path in directory.rglob("*"):
        entries += 1
        if path.is_file():
            size += path.stat().st_size
    return entries, size


@pytest.fixture
def in_process(clean_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for the pipeline in this process, with its temporary directory redirected to an empty one."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setenv("EXTRACTOR", "offline")
    monkeypatch.setattr(tempfile, "tempdir", None)
    clean_stack.storage.create_bucket(BUCKET)
    config.get_settings.cache_clear()
    extraction.get_extractor.cache_clear()
    clients.reset_clients()
    try:
        yield Settings.from_env()
    finally:
        config.get_settings.cache_clear()
        extraction.get_extractor.cache_clear()
        clients.reset_clients()


@pytest.mark.reliability
def test_failing_invocations_leak_nothing(in_process, clean_stack, backend, sample_path, figures):
    stack = clean_stack
    settings = in_process
    events = []
    for index, (file, content_type, _) in enumerate(BAD_FILES):
        name = f"voice-notes/{UID}/bad-{index}"
        reply = requests.post(
            f"{stack.storage.base_url}/upload/storage/v1/b/{BUCKET}/o",
            params={"uploadType": "media", "name": name},
            data=sample_path(file).read_bytes(),
            headers={"Content-Type": content_type},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        stored = reply.json()
        events.append((name, str(stored["generation"]), int(stored["size"]), content_type))

    total = WARM_UP + INVOCATIONS
    note_ids = [f"{index:032x}" for index in range(total)]
    for start in range(0, total, 250):
        batch = backend.db.batch()
        for index in range(start, min(start + 250, total)):
            _, _, _, content_type = events[index % len(BAD_FILES)]
            batch.set(
                backend.db.document("users", UID, "voiceNotes", note_ids[index]),
                {"status": "awaiting_upload", "contentType": content_type, "timezone": "UTC", "attempt": 0, "history": []},
            )
        batch.commit()

    def invoke(index: int) -> str:
        name, generation, size, content_type = events[index % len(BAD_FILES)]
        event = StorageEvent(f"ev-{index}", NOW, BUCKET, name, generation, content_type, size)
        ref = ObjectRef(uid=UID, note_id=note_ids[index], extension="m4a")
        if index % 5 == 4:
            state.claim_note(
                backend.db, UID, ref.note_id, event_id=event.event_id, generation=generation, now=NOW, lease_seconds=600
            )
        try:
            process_note(settings, event, ref)
        except TransientError:
            return "transient"
        return "returned"

    for index in range(WARM_UP):
        invoke(index)
    gc.collect()
    fds_before = open_fds()
    tmp_fds_before = fds_under("/tmp")
    private_before = usage_bytes(Path(tempfile.gettempdir()))
    system_tmp_before = usage_bytes(Path("/tmp"))
    started = time.monotonic()

    outcomes = Counter(invoke(index) for index in range(WARM_UP, total))
    elapsed = time.monotonic() - started
    gc.collect()
    fds_after = open_fds()
    private_after = usage_bytes(Path(tempfile.gettempdir()))
    system_tmp_after = usage_bytes(Path("/tmp"))

    reasons = Counter(
        (snapshot.to_dict() or {}).get("failure", {}).get("reason")
        for snapshot in backend.db.collection("users", UID, "voiceNotes").stream()
    )
    assert outcomes == {"returned": 400, "transient": 100}
    assert fds_after == fds_before
    assert private_after == private_before == (0, 0)
    # pytest's output capture keeps a few deleted files in /tmp open from the start.
    assert fds_under("/tmp") == tmp_fds_before
    assert reasons == {"unsupported_audio": 208, "corrupt_audio": 208, None: 104}
    figures["resources"] = {
        "invocations": INVOCATIONS,
        "open_fds_before": fds_before,
        "open_fds_after": fds_after,
        "private_tmpdir_before": list(private_before),
        "private_tmpdir_after": list(private_after),
        "shared_tmp_entries_before_after": [system_tmp_before[0], system_tmp_after[0]],
        "seconds": round(elapsed, 1),
    }
