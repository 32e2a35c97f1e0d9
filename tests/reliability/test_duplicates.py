"""The same storage event delivered five times at once: exactly one set of tasks.

Eventarc delivers at least once, so two deliveries of one event can run at the
same time. Each trial posts one CloudEvent five times in parallel straight to
process_audio, then posts again each delivery that got a non-2xx response, as
Eventarc would, until every one has a 2xx.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devstack.bridge import StorageEvent, storage_object_data
from tests.reliability.conftest import expected_task_ids, object_resource, upload_samples, wait_final

TRIALS = 20
COPIES = 5
MAX_ROUNDS = 20
REDELIVERY_WAIT_SECONDS = 0.3
SAMPLE = "02-dry-cleaning-friday.ogg"
# Nothing listens here, so the bridge's own delivery of each upload fails and
# only this test's copies reach the function.
CLOSED_PORT_URL = "http://127.0.0.1:9"


def post_all(url: str, event: StorageEvent, count: int) -> list[int]:
    """POST ``event`` ``count`` times, released together by a barrier; return the status codes."""
    barrier = threading.Barrier(count)

    def post(_: int) -> int:
        barrier.wait()
        reply = requests.post(url, data=event.body(), headers=event.headers(), timeout=120)
        return reply.status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(post, range(count)))


@pytest.mark.reliability
def test_duplicate_event_one_task_set(gemini, clean_stack, backend, sample_path, figures):
    stack = clean_stack
    target = stack.endpoints.process_audio
    stack.bridge.set_target(CLOSED_PORT_URL)
    deliveries = 0
    retried = 0
    started = time.monotonic()
    try:
        for trial in range(TRIALS):
            uid = f"dup-{trial}"
            (ticket,) = upload_samples(backend, [(uid, sample_path(SAMPLE))])
            resource = object_resource(stack, ticket.object_name)
            data = storage_object_data(resource, stack.storage.base_url)
            event = StorageEvent(
                event_id=f"dup-{trial}-{data['generation']}",
                bucket=stack.bucket,
                name=ticket.object_name,
                time=resource["updated"],
                data=data,
            )

            pending = COPIES
            for _ in range(MAX_ROUNDS):
                statuses = post_all(target, event, pending)
                deliveries += len(statuses)
                pending = sum(1 for status in statuses if not 200 <= status < 300)
                retried += pending
                if pending == 0:
                    break
                time.sleep(REDELIVERY_WAIT_SECONDS)
            assert pending == 0, f"trial {trial}: {pending} deliveries still failing after {MAX_ROUNDS} rounds"

            note = wait_final(backend, [(uid, ticket.note_id)], timeout_seconds=30)[ticket.note_id]
            tasks = backend.tasks(uid, ticket.note_id)
            assert note["status"] == "done", f"trial {trial}: {note.get('failure')}"
            assert note["attempt"] == 1
            assert [entry["status"] for entry in note["history"]] == ["awaiting_upload", "processing", "done"]
            assert sorted(task["id"] for task in tasks) == expected_task_ids(ticket.note_id, SAMPLE)
            assert note["taskIds"] == expected_task_ids(ticket.note_id, SAMPLE)
    finally:
        stack.bridge.discard_pending()
        stack.bridge.set_target(target)

    assert len(gemini.generate_requests) == TRIALS
    figures["duplicates"] = {
        "notes": TRIALS,
        "events_delivered": deliveries,
        "deliveries_answered_non_2xx": retried,
        "duplicate_task_sets": 0,
        "notes_lost": 0,
        "seconds": round(time.monotonic() - started, 1),
    }
