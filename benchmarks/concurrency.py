"""The bridge's limit of 3 deliveries in flight, with Gemini taking a fixed second per note.

Each run obtains ``NOTES`` upload tickets first, then PUTs all notes at once
from ``NOTES`` threads, and times from the start of the PUTs until Firestore
shows every note ``done``. With 3 in flight and 1 s per extraction the ideal
is ``NOTES / 3`` seconds. The overlap check uses the fake Gemini server's
arrival timestamps (each request then lasts ``DELAY_SECONDS``) and the
bridge's own ``max_in_flight`` counter.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from typing import Any

from benchmarks.context import SHORT_NOTE, SHORT_NOTE_TYPE, BenchContext
from benchmarks.stats import median, ratio
from devstack.client import UploadTicket
from devstack.processes import DevstackError
from tests.fakes.gemini import Script, Step

logger = logging.getLogger(__name__)

NOTES = 30
MAX_IN_FLIGHT = 3
DELAY_SECONDS = 1.0
GOAL_RATIO = 1.15
DRAIN_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.05


def max_overlap(arrivals: list[float], duration: float) -> int:
    """Return the maximum number of intervals ``[arrival, arrival + duration)`` that contain one instant."""
    events = sorted([(at, 1) for at in arrivals] + [(at + duration, -1) for at in arrivals])
    current = 0
    highest = 0
    for _, change in events:
        current += change
        highest = max(highest, current)
    return highest


def _put_all(context: BenchContext, tickets: list[tuple[str, UploadTicket]]) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(tickets)) as pool:
        replies = list(pool.map(lambda pair: context.client.put_file(pair[1], SHORT_NOTE), tickets))
    failed = [reply.status_code for reply in replies if reply.status_code != 200]
    if failed:
        raise DevstackError(f"{len(failed)} of {len(tickets)} PUTs failed with statuses {failed}")


def _wait_all_done(context: BenchContext, tickets: list[tuple[str, UploadTicket]]) -> float:
    """Return the monotonic time at which every note was seen ``done``."""
    pending = list(tickets)
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while pending:
        if time.monotonic() > deadline:
            raise DevstackError(
                f"{len(pending)} of {len(tickets)} notes were not done within {DRAIN_TIMEOUT_SECONDS:.0f} s"
            )
        still = []
        for uid, ticket in pending:
            note = context.client.note(uid, ticket.note_id)
            status = note.get("status") if note else None
            if status == "failed":
                raise DevstackError(f"note {ticket.note_id} failed: {note.get('failure')!r}")  # type: ignore[union-attr]
            if status != "done":
                still.append((uid, ticket))
        pending = still
        if pending:
            time.sleep(POLL_SECONDS)
    return time.monotonic()


def one_run(context: BenchContext) -> dict[str, Any]:
    """Upload ``NOTES`` notes at once and return the drain time and the overlap measurements."""
    context.stack.reset()
    context.fake.load(Script(fallback=Step("echo", delay_seconds=DELAY_SECONDS)))
    tickets = []
    for _ in range(NOTES):
        uid = context.new_uid("burst")
        ticket = context.client.ticket(
            context.token(uid),
            content_type=SHORT_NOTE_TYPE,
            size_bytes=SHORT_NOTE.stat().st_size,
            timezone="Europe/London",
        )
        tickets.append((uid, ticket))

    started = time.monotonic()
    _put_all(context, tickets)
    finished = _wait_all_done(context, tickets)

    arrivals = [record.at for record in context.fake.generate_requests]
    stats = context.stack.bridge.stats()
    drain = finished - started
    return {
        "drain_seconds": drain,
        "ideal_seconds": NOTES * DELAY_SECONDS / MAX_IN_FLIGHT,
        "ratio": ratio(drain, NOTES * DELAY_SECONDS / MAX_IN_FLIGHT),
        "gemini_requests": len(arrivals),
        "gemini_max_overlap": max_overlap(arrivals, DELAY_SECONDS),
        "bridge_max_in_flight": stats.max_in_flight,
        "bridge_failed_attempts": stats.failed,
        "first_arrival_after_start_seconds": min(arrivals) - started if arrivals else None,
    }


def run(context: BenchContext, runs: int) -> dict[str, Any]:
    """Run the burst ``runs`` times; return per-run figures, medians and the goal verdicts."""
    per_run = []
    try:
        for index in range(runs):
            per_run.append(one_run(context))
            logger.info(
                "concurrency run %d: drained %d notes in %.2f s (ratio %.3f), Gemini overlap %d, bridge max %d",
                index + 1, NOTES, per_run[-1]["drain_seconds"], per_run[-1]["ratio"],
                per_run[-1]["gemini_max_overlap"], per_run[-1]["bridge_max_in_flight"],
            )  # fmt: skip
    finally:
        context.fake.load(Script())

    median_ratio = median([figures["ratio"] for figures in per_run])
    never_over_limit = all(
        figures["gemini_max_overlap"] <= MAX_IN_FLIGHT and figures["bridge_max_in_flight"] <= MAX_IN_FLIGHT
        for figures in per_run
    )
    return {
        "notes": NOTES,
        "max_in_flight": MAX_IN_FLIGHT,
        "delay_seconds": DELAY_SECONDS,
        "goal_ratio": GOAL_RATIO,
        "runs": per_run,
        "median_drain_seconds": median([figures["drain_seconds"] for figures in per_run]),
        "median_ratio": median_ratio,
        "every_note_one_request": all(figures["gemini_requests"] == NOTES for figures in per_run),
        "never_over_limit": never_over_limit,
        "goal_met": median_ratio <= GOAL_RATIO and never_over_limit,
    }
