"""``process_audio`` from the finalize event to ``done``, with Gemini replying at once, against its floor.

Each run uploads ``NOTES_PER_RUN`` short notes one after another through the
whole stack (signed PUT, fake-gcs-server, Pub/Sub emulator, bridge, function)
while the fake Gemini server replies in echo mode without delay. For each
note it records:

- end to end: from the PUT's response (the object is finalized) until a
  Firestore read shows ``done``, polled every ``POLL_SECONDS``;
- delivery: from the PUT's response to the function's ``processing``
  history entry, both wall-clock times on this machine;
- function: from the ``processing`` entry to the ``done`` entry.

The floor, in the same run and process: one download of a note-sized object
and one Firestore batch write of a note update plus one task.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from benchmarks.context import SHORT_NOTE, SHORT_NOTE_TYPE, BenchContext
from benchmarks.stats import median, ratio
from devstack.processes import DevstackError
from tests.fakes.gemini import Script

logger = logging.getLogger(__name__)

NOTES_PER_RUN = 3
FLOOR_CALLS = 10
POLL_SECONDS = 0.01
NOTE_TIMEOUT_SECONDS = 60.0
GOAL_RATIO = 1.5
# Outside voice-notes/, so process_audio acknowledges its finalize event without work.
FLOOR_OBJECT = "benchmarks/floor-note.m4a"


def _history_time(note: dict[str, Any], status: str) -> dt.datetime:
    for entry in note.get("history", []):
        if entry.get("status") == status:
            at: dt.datetime = entry["at"]
            return at
    raise DevstackError(f"note has no {status!r} history entry; history: {note.get('history')!r}")


def _wait_done(context: BenchContext, uid: str, note_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + NOTE_TIMEOUT_SECONDS
    while True:
        note = context.client.note(uid, note_id)
        if note is not None and note.get("status") in ("done", "failed"):
            return note
        if time.monotonic() > deadline:
            raise DevstackError(f"note {note_id} did not finish within {NOTE_TIMEOUT_SECONDS:.0f} s; last: {note!r}")
        time.sleep(POLL_SECONDS)


def one_note(context: BenchContext) -> dict[str, Any]:
    """Upload one note and return its end-to-end, delivery and function times in seconds."""
    uid = context.new_uid("process")
    ticket = context.client.ticket(
        context.token(uid), content_type=SHORT_NOTE_TYPE, size_bytes=SHORT_NOTE.stat().st_size, timezone="Europe/London"
    )
    reply = context.client.put_file(ticket, SHORT_NOTE)
    finalized = time.monotonic()
    finalized_wall = dt.datetime.now(dt.UTC)
    if reply.status_code != 200:
        raise DevstackError(f"PUT of {SHORT_NOTE.name} returned HTTP {reply.status_code}: {reply.text[:300]}")

    note = _wait_done(context, uid, ticket.note_id)
    end_to_end = time.monotonic() - finalized
    if note["status"] != "done":
        raise DevstackError(f"note {ticket.note_id} ended {note['status']}: {note.get('failure')!r}")

    processing = _history_time(note, "processing")
    done = _history_time(note, "done")
    return {
        "end_to_end_seconds": end_to_end,
        "delivery_seconds": (processing - finalized_wall).total_seconds(),
        "function_seconds": (done - processing).total_seconds(),
        "timings_ms": note.get("timingsMs", {}),
    }


def floor_seconds(context: BenchContext) -> list[float]:
    """Time ``FLOOR_CALLS`` rounds of one download and one batch write, called directly."""
    from functions.clients import firestore_client, storage_client

    bucket = storage_client().bucket(context.stack.bucket)
    bucket.blob(FLOOR_OBJECT).upload_from_filename(str(SHORT_NOTE), content_type=SHORT_NOTE_TYPE)
    db = firestore_client()
    uid = context.new_uid("process-floor")

    samples = []
    for index in range(FLOOR_CALLS):
        started = time.perf_counter()
        data = bucket.blob(FLOOR_OBJECT).download_as_bytes()
        batch = db.batch()
        now = dt.datetime.now(dt.UTC)
        batch.set(db.document(f"users/{uid}/tasks/floor-{index}"), {"title": "Call the dentist", "createdAt": now})
        batch.set(
            db.document(f"users/{uid}/voiceNotes/floor-{index}"),
            {"status": "done", "size": len(data), "updatedAt": now},
        )
        batch.commit()
        samples.append(time.perf_counter() - started)
    return samples


def run(context: BenchContext, runs: int) -> dict[str, Any]:
    """Measure ``runs`` times; return per-note times, floors, medians, ratios and the goal verdict."""
    context.fake.load(Script())
    one_note(context)

    per_run: list[dict[str, Any]] = []
    for index in range(runs):
        notes = [one_note(context) for _ in range(NOTES_PER_RUN)]
        floor = median(floor_seconds(context))
        end_to_end = median([note["end_to_end_seconds"] for note in notes])
        function = median([note["function_seconds"] for note in notes])
        per_run.append(
            {
                "notes": notes,
                "median_end_to_end_seconds": end_to_end,
                "median_delivery_seconds": median([note["delivery_seconds"] for note in notes]),
                "median_function_seconds": function,
                "floor_seconds": floor,
                "ratio": ratio(end_to_end, floor),
                "function_ratio": ratio(function, floor),
            }
        )
        logger.info(
            "process_audio run %d: %.0f ms end to end (function %.0f ms), floor %.0f ms, ratio %.2f",
            index + 1, end_to_end * 1000, function * 1000, floor * 1000, per_run[-1]["ratio"],
        )  # fmt: skip

    medians = {
        key: median([figures[key] for figures in per_run])
        for key in (
            "median_end_to_end_seconds",
            "median_delivery_seconds",
            "median_function_seconds",
            "floor_seconds",
            "ratio",
            "function_ratio",
        )
    }
    return {
        "notes_per_run": NOTES_PER_RUN,
        "floor_calls": FLOOR_CALLS,
        "poll_seconds": POLL_SECONDS,
        "goal_ratio": GOAL_RATIO,
        "runs": per_run,
        "medians": medians,
        "goal_met": medians["ratio"] <= GOAL_RATIO,
    }
