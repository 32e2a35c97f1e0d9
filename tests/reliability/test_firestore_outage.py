"""Firestore down while uploads arrive: every note ends done through Eventarc's redelivery.

The Firestore emulator keeps documents in memory only, so a restart loses
them (the test asserts this first). Cloud Firestore keeps them through an
outage. The test therefore:

1. creates the notes through upload_url and copies their documents;
2. stops Firestore and uploads the audio, so every delivery finds Firestore
   down, retries inside the function (about 60 s, the client library's
   retry deadline of BeginTransaction) and then fails, and the bridge
   schedules a redelivery;
3. keeps the deliveries that have not started waiting (the bridge points at a
   closed port) until the running ones have failed, starts Firestore again
   and writes the copies back, which is the state Cloud Firestore would have
   kept, because no claim succeeded;
4. lets the bridge redeliver, and checks that each note is done once.

Step 3 is the only change forced by the emulator: a delivery that reached an
empty emulator would find no note and acknowledge the event.
"""

from __future__ import annotations

import time

import pytest

from tests.reliability.conftest import ENTRIES, SPEECH_SAMPLES, expected_task_ids, wait_final

NOTES = 6
CLOSED_PORT_URL = "http://127.0.0.1:9"
# Covers the 60 s BeginTransaction retry deadline of google-cloud-firestore 2.34.
FAILURE_WAIT_SECONDS = 120


def wait_for(condition, timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_seconds:.0f} s"
        time.sleep(0.2)


def unhandled_errors(stack) -> int:
    """Count the deliveries for which process_audio returned an error since it started (Flask logs each one)."""
    stdout_log, _ = stack.functions.log_paths("process_audio")
    return stdout_log.read_text(encoding="utf-8").count("Exception on / [POST]")


@pytest.mark.reliability
def test_firestore_outage_redelivered(gemini, clean_stack, backend, sample_path, figures):
    stack = clean_stack
    target = stack.endpoints.process_audio
    samples = [sample_path(SPEECH_SAMPLES[index]) for index in range(NOTES)]
    uid = "outage"
    tickets = []
    for path in samples:
        entry = ENTRIES[path.name]
        tickets.append(
            backend.ticket(
                backend.token(uid),
                content_type=entry["mime_type"],
                size_bytes=path.stat().st_size,
                timezone=entry["reference"]["time_zone"],
                recorded_at=entry["reference"]["recorded_at"],
            )
        )
    saved = {ticket.note_id: backend.note(uid, ticket.note_id) for ticket in tickets}

    errors_before = unhandled_errors(stack)
    stack.stop_emulator("firestore")
    outage_started = time.monotonic()
    try:
        for ticket, path in zip(tickets, samples):
            reply = backend.put_file(ticket, path)
            assert reply.status_code == 200, reply.text
        wait_for(lambda: stack.bridge.stats().received == NOTES, 30, "the bridge receiving every event")
        wait_for(lambda: stack.bridge.stats().in_flight >= 1, 30, "a delivery reaching the function")
        # Deliveries that have not started yet are refused from now on, as
        # Eventarc's are when every instance is busy.
        stack.bridge.set_target(CLOSED_PORT_URL)
        wait_for(lambda: stack.bridge.stats().in_flight == 0, FAILURE_WAIT_SECONDS, "no delivery in flight")
    finally:
        stack.start_emulator("firestore")
    outage_seconds = time.monotonic() - outage_started
    failed_while_down = stack.bridge.stats().failed
    function_failures = unhandled_errors(stack) - errors_before

    try:
        assert all(backend.note(uid, note_id) is None for note_id in saved)
        for note_id, document in saved.items():
            backend.db.document("users", uid, "voiceNotes", note_id).set(document)
    finally:
        stack.bridge.set_target(target)

    notes = wait_final(backend, [(uid, ticket.note_id) for ticket in tickets], timeout_seconds=90)
    drained = time.monotonic() - outage_started

    for ticket, path in zip(tickets, samples):
        note = notes[ticket.note_id]
        assert note["status"] == "done", note.get("failure")
        assert note["attempt"] == 1
        assert note["taskIds"] == expected_task_ids(ticket.note_id, path.name)
        assert sorted(task["id"] for task in backend.tasks(uid, ticket.note_id)) == note["taskIds"]

    stats = stack.bridge.stats()
    assert failed_while_down >= 1
    assert function_failures >= 1
    assert stats.received == NOTES
    figures["firestore_outage"] = {
        "notes": NOTES,
        "events_delivered": stats.attempted,
        "deliveries_answered_non_2xx": stats.failed,
        "deliveries_failed_by_firestore_outage": function_failures,
        "outage_seconds": round(outage_seconds, 1),
        "duplicate_task_sets": 0,
        "notes_lost": 0,
        "seconds_to_drain": round(drained, 1),
    }
