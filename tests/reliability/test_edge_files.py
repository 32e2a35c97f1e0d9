"""Every edge-case file in samples/ ends with its own status and reason code.

The files go through upload_url and the signed PUT, with two exceptions.
note.m4a is declared with 1 byte, because upload_url rejects a size of 0 and
fake-gcs-server does not enforce the signed length range. The oversize WAV is
written with the emulator's JSON API under a valid note's object name,
because upload_url rejects a request for a file above the limit.
"""

from __future__ import annotations

import io
import random
import time
import wave

import pytest
import requests

from tests.reliability.conftest import ENTRIES, object_resource, wait_final

OVERSIZE_BYTES = 11_010_048  # 10.5 MiB, as samples/make-large.sh makes it
WAV_HEADER_BYTES = 44
# Reason codes in the words samples/manifest.json uses for expected outcomes.
OUTCOME_WORDS = {
    "empty_file": "rejected: empty file",
    "corrupt_audio": "rejected: corrupt audio",
    "unsupported_audio": "rejected: unsupported audio",
    "too_long": "rejected: too long",
    "too_large": "rejected: too large",
}
CASES = [
    ("edge-silence-5s.m4a", "done", None),
    ("edge-white-noise-5s.ogg", "done", None),
    ("note.m4a", "failed", "empty_file"),
    ("edge-truncated.m4a", "failed", "corrupt_audio"),
    ("edge-png-image.m4a", "failed", "unsupported_audio"),
    ("edge-text-file.mp3", "failed", "unsupported_audio"),
    ("edge-lying-header.wav", "failed", "corrupt_audio"),
    ("edge-12-minutes.m4a", "failed", "too_long"),
    ("large-noise-10.5MiB.wav", "failed", "too_large"),
]


def noise_wav(size_bytes: int) -> bytes:
    """Return a 16 kHz mono 16-bit WAV of white noise, exactly ``size_bytes`` long."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(random.Random(10).randbytes(size_bytes - WAV_HEADER_BYTES))
    data = buffer.getvalue()
    assert len(data) == size_bytes
    return data


def manifest_accepts(file: str, status: str, reason: str | None) -> bool:
    entry = ENTRIES[file]
    outcome = "no tasks" if status == "done" else OUTCOME_WORDS[reason or ""]
    return outcome in [entry["expected_outcome"], *entry.get("also_acceptable", [])]


@pytest.mark.reliability
def test_edge_files_outcomes(gemini, clean_stack, backend, sample_path, figures):
    stack = clean_stack
    uid = "edge"
    token = backend.token(uid)
    notes: dict[str, tuple[str, str]] = {}
    started = time.monotonic()

    for file, _, _ in CASES:
        entry = ENTRIES[file]
        declared = max(entry["size_bytes"], 1) if entry.get("present_in_set", True) else 1000
        ticket = backend.ticket(token, content_type=entry["mime_type"], size_bytes=declared, timezone="Europe/Berlin")
        if entry.get("present_in_set", True):
            reply = backend.put_file(ticket, sample_path(file))
            assert reply.status_code == 200, reply.text
        else:
            reply = requests.post(
                f"{stack.storage.base_url}/upload/storage/v1/b/{stack.bucket}/o",
                params={"uploadType": "media", "name": ticket.object_name},
                data=noise_wav(OVERSIZE_BYTES),
                headers={"Content-Type": entry["mime_type"]},
                timeout=60,
            )
            assert reply.status_code == 200, reply.text
        notes[file] = (ticket.note_id, ticket.object_name)

    final = wait_final(backend, [(uid, note_id) for note_id, _ in notes.values()], timeout_seconds=90)
    drained = time.monotonic() - started
    remaining = set(stack.storage.list_objects(stack.bucket))

    for file, status, reason in CASES:
        note_id, object_name = notes[file]
        note = final[note_id]
        assert (file, note["status"]) == (file, status)
        assert (file, (note.get("failure") or {}).get("reason")) == (file, reason)
        assert manifest_accepts(file, status, reason)
        assert backend.tasks(uid, note_id) == []
        # Audio is deleted after done and kept after failed (the defaults).
        assert (file, object_name in remaining) == (file, status == "failed")
    assert object_resource(stack, notes["large-noise-10.5MiB.wav"][1])["size"] == str(OVERSIZE_BYTES)

    stats = stack.bridge.stats()
    assert stats.failed == 0
    figures["edge_files"] = {
        "notes": len(CASES),
        "events_delivered": stats.attempted,
        "deliveries_answered_non_2xx": stats.failed,
        "notes_lost": 0,
        "seconds_to_drain": round(drained, 1),
    }
