"""Sixty notes uploaded at once while the fake Gemini is slow and fails 30% of calls."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from tests.fakes.gemini import Script, Step
from tests.reliability.conftest import SPEECH_SAMPLES, expected_task_ids, upload_samples, wait_final

NOTES = 60
USERS = 12  # 5 notes each, within the default quota of 30 uploads per user and hour
GEMINI_DELAY_SECONDS = 0.2
FAILURE_SHARE = 0.3
SCRIPT_STEPS = 1000
DRAIN_TIMEOUT_SECONDS = 150


def flaky_script(seed: int) -> Script:
    """Return a script in which each call waits 0.2 s and 30% of calls fail with 429 or 503."""
    rng = random.Random(seed)
    steps = []
    for _ in range(SCRIPT_STEPS):
        if rng.random() < FAILURE_SHARE:
            steps.append(Step.error(rng.choice([429, 503]), delay_seconds=GEMINI_DELAY_SECONDS))
        else:
            steps.append(Step("echo", delay_seconds=GEMINI_DELAY_SECONDS))
    return Script(tuple(steps), fallback=Step("echo", delay_seconds=GEMINI_DELAY_SECONDS))


@pytest.mark.reliability
def test_sixty_notes_flaky_gemini(gemini, clean_stack, backend, sample_path, figures):
    gemini.load(flaky_script(seed=60))
    uploads = [(f"load-{index % USERS}", sample_path(SPEECH_SAMPLES[index % len(SPEECH_SAMPLES)])) for index in range(NOTES)]

    started = time.monotonic()
    tickets = upload_samples(backend, uploads)
    notes = wait_final(backend, [(uid, ticket.note_id) for (uid, _), ticket in zip(uploads, tickets)], timeout_seconds=DRAIN_TIMEOUT_SECONDS)
    drained = time.monotonic() - started

    statuses = Counter(note["status"] for note in notes.values())
    assert statuses == {"done": NOTES}, {note_id: note.get("failure") for note_id, note in notes.items() if note["status"] != "done"}

    for (uid, path), ticket in zip(uploads, tickets):
        expected = expected_task_ids(ticket.note_id, path.name)
        assert notes[ticket.note_id]["taskIds"] == expected
        assert sorted(task["id"] for task in backend.tasks(uid, ticket.note_id)) == expected

    all_tasks = [task for user in range(USERS) for task in backend.db.collection("users", f"load-{user}", "tasks").stream()]
    assert len(all_tasks) == sum(len(expected_task_ids("", path.name)) for _, path in uploads)

    stats = clean_stack.bridge.stats()
    generate = gemini.generate_requests
    failed_calls = sum(1 for record in generate if record.status >= 400)
    assert stats.received == NOTES
    assert failed_calls > 0
    figures["load"] = {
        "notes": NOTES,
        "events_delivered": stats.attempted,
        "deliveries_answered_non_2xx": stats.failed,
        "gemini_calls": len(generate),
        "gemini_calls_failed": failed_calls,
        "notes_retaken_after_transient_failure": sum(1 for note in notes.values() if note["attempt"] > 1),
        "duplicate_task_sets": 0,
        "notes_lost": 0,
        "seconds_to_drain": round(drained, 1),
    }
