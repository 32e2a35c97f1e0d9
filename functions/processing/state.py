"""The voice note's state machine, moved only by Firestore transactions.

``awaiting_upload`` → ``processing`` → ``done`` | ``failed``. A delivery claims
the note with a lease as long as the function timeout. Every transition appends
``{status, at, attempt}`` to the note's ``history``.

Duplicate deliveries are resolved here:

- the note is ``done`` or ``failed``: acknowledge and do nothing;
- another event holds an unexpired lease: acknowledge and do nothing, because
  that event is redelivered by Eventarc if its own delivery fails;
- the same event holds an unexpired lease: this is either a concurrent
  duplicate or a redelivery after the holder crashed, which look the same, so
  the delivery is retried later instead of acknowledged, and no note is lost;
- the lease has expired: take the note over with the next attempt number.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from functions.models import ExtractionResult, NoteStatus
from functions.store import note_path, task_id_for, task_path

if TYPE_CHECKING:
    from google.cloud import firestore

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({NoteStatus.DONE.value, NoteStatus.FAILED.value})


class ClaimOutcome(enum.Enum):
    """Outcome of a delivery's attempt to claim a note."""

    CLAIMED = "claimed"
    MISSING = "missing"
    FINAL = "final"
    LEASED_BY_OTHER_EVENT = "leased_by_other_event"
    LEASED_BY_SAME_EVENT = "leased_by_same_event"
    OTHER_OBJECT = "other_object"


@dataclass(frozen=True)
class Claim:
    """The result of a claim attempt, with the note as read inside the transaction."""

    outcome: ClaimOutcome
    attempt: int = 0
    note: dict[str, Any] = field(default_factory=dict)


# Bound on retrying one Firestore call. An instance that waits longer occupies
# one of the few instances (process_audio is deployed with at most 3) while other events
# queue, so a longer outage is left to Eventarc's redelivery.
# NOTE: the BeginTransaction call that opens each transaction keeps the
# client library's own retry (60 s deadline in google-cloud-firestore 2.34),
# so during an outage a transaction fails after about 60 s, not 15 s.
FIRESTORE_RETRY_SECONDS = 15.0
FIRESTORE_CALL_TIMEOUT_SECONDS = 10.0


def firestore_retry() -> Any:
    """Return the retry policy for Firestore calls: transient gRPC errors, bounded at :data:`FIRESTORE_RETRY_SECONDS`."""
    from google.api_core import exceptions, retry

    return retry.Retry(
        predicate=retry.if_exception_type(
            exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.Aborted, exceptions.InternalServerError
        ),
        initial=0.2,
        maximum=3.0,
        multiplier=2.0,
        timeout=FIRESTORE_RETRY_SECONDS,
    )


def _run_in_transaction(client: firestore.Client, function: Any) -> Any:
    """Run a ``@transactional`` function, retrying transient errors with a fresh transaction each time."""
    return firestore_retry()(lambda: function(client.transaction()))()


def _history_entry(status: NoteStatus, now: dt.datetime, attempt: int) -> dict[str, Any]:
    return {"status": status.value, "at": now, "attempt": attempt}


def claim_note(
    client: firestore.Client,
    uid: str,
    note_id: str,
    *,
    event_id: str,
    generation: str,
    now: dt.datetime,
    lease_seconds: int,
    object_name: str | None = None,
) -> Claim:
    """Try to move the note to ``processing`` for this event, in a transaction.

    With ``object_name`` set, an event for any object other than the one
    ``upload_url`` issued for the note (another extension, say) leaves the note
    untouched and returns ``OTHER_OBJECT``.
    """
    from google.cloud import firestore

    ref = client.document(note_path(uid, note_id))

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> Claim:
        snapshot = ref.get(transaction=transaction, retry=firestore_retry(), timeout=FIRESTORE_CALL_TIMEOUT_SECONDS)
        if not snapshot.exists:
            return Claim(ClaimOutcome.MISSING)

        note = snapshot.to_dict() or {}
        if object_name is not None and note.get("objectName") not in (None, object_name):
            return Claim(ClaimOutcome.OTHER_OBJECT, note.get("attempt", 0), note)
        if note.get("status") in FINAL_STATUSES:
            return Claim(ClaimOutcome.FINAL, note.get("attempt", 0), note)

        lease = note.get("lease") or {}
        lease_expires = lease.get("expiresAt")
        if note.get("status") == NoteStatus.PROCESSING.value and lease_expires and lease_expires > now:
            if lease.get("eventId") == event_id:
                return Claim(ClaimOutcome.LEASED_BY_SAME_EVENT, note.get("attempt", 0), note)
            return Claim(ClaimOutcome.LEASED_BY_OTHER_EVENT, note.get("attempt", 0), note)

        attempt = int(note.get("attempt", 0)) + 1
        transaction.update(
            ref,
            {
                "status": NoteStatus.PROCESSING.value,
                "attempt": attempt,
                "lease": {
                    "eventId": event_id,
                    "generation": generation,
                    "expiresAt": now + dt.timedelta(seconds=lease_seconds),
                },
                "updatedAt": now,
                "history": firestore.ArrayUnion([_history_entry(NoteStatus.PROCESSING, now, attempt)]),
            },
        )
        return Claim(ClaimOutcome.CLAIMED, attempt, note)

    result: Claim = _run_in_transaction(client, run)
    return result


def _holds_lease(note: dict[str, Any], event_id: str) -> bool:
    lease = note.get("lease") or {}
    return note.get("status") == NoteStatus.PROCESSING.value and lease.get("eventId") == event_id


def _task_document(note_id: str, index: int, task: Any, now: dt.datetime) -> dict[str, Any]:
    return {
        "title": task.title,
        "notes": task.notes,
        "dueAt": task.due_at,
        "dueDate": task.due_date.isoformat() if task.due_date else None,
        "allDay": task.all_day,
        "recurrence": task.recurrence,
        "priority": task.priority,
        "completed": False,
        "sourceNoteId": note_id,
        "index": index,
        "createdAt": now,
    }


def complete_note(
    client: firestore.Client,
    uid: str,
    note_id: str,
    *,
    event_id: str,
    attempt: int,
    result: ExtractionResult,
    timings_ms: dict[str, int],
    now: dt.datetime,
) -> bool:
    """Write the tasks and mark the note ``done``, in one transaction.

    Task ids derive from the note id and the task's position, so a re-run
    overwrites instead of adding.

    Returns:
        False when this delivery no longer holds the note's lease; nothing is written then.
    """
    from google.cloud import firestore

    ref = client.document(note_path(uid, note_id))
    task_ids = [task_id_for(note_id, index) for index in range(len(result.tasks))]

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> bool:
        snapshot = ref.get(transaction=transaction, retry=firestore_retry(), timeout=FIRESTORE_CALL_TIMEOUT_SECONDS)
        if not _holds_lease(snapshot.to_dict() or {}, event_id):
            return False

        for index, task in enumerate(result.tasks):
            transaction.set(client.document(task_path(uid, task_ids[index])), _task_document(note_id, index, task, now))

        transaction.update(
            ref,
            {
                "status": NoteStatus.DONE.value,
                "transcript": result.transcript,
                "taskIds": task_ids,
                "taskCount": len(task_ids),
                "extraction": {
                    "model": result.model,
                    "promptTokens": result.prompt_tokens,
                    "candidateTokens": result.candidate_tokens,
                    "attempts": result.attempts,
                },
                "timingsMs": timings_ms,
                "lease": firestore.DELETE_FIELD,
                "failure": firestore.DELETE_FIELD,
                "updatedAt": now,
                "completedAt": now,
                "history": firestore.ArrayUnion([_history_entry(NoteStatus.DONE, now, attempt)]),
            },
        )
        return True

    committed: bool = _run_in_transaction(client, run)
    return committed


def _failed_fields(reason: str, message: str, now: dt.datetime, attempt: int) -> dict[str, Any]:
    """Return the update that moves a note to ``failed`` and ends its lease."""
    from google.cloud import firestore

    return {
        "status": NoteStatus.FAILED.value,
        "failure": {"reason": reason, "message": message},
        "lease": firestore.DELETE_FIELD,
        "updatedAt": now,
        "history": firestore.ArrayUnion([_history_entry(NoteStatus.FAILED, now, attempt)]),
    }


def fail_note(
    client: firestore.Client,
    uid: str,
    note_id: str,
    *,
    event_id: str,
    attempt: int,
    reason: str,
    message: str,
    now: dt.datetime,
) -> bool:
    """Mark the note ``failed`` with a reason code the app can show, while ``event_id`` holds its lease.

    Returns:
        True when the note was marked ``failed``; False when this event no
        longer holds the lease, and nothing was written.
    """
    from google.cloud import firestore

    ref = client.document(note_path(uid, note_id))

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> bool:
        snapshot = ref.get(transaction=transaction, retry=firestore_retry(), timeout=FIRESTORE_CALL_TIMEOUT_SECONDS)
        if not _holds_lease(snapshot.to_dict() or {}, event_id):
            return False

        transaction.update(ref, _failed_fields(reason, message, now, attempt))
        return True

    marked: bool = _run_in_transaction(client, run)
    return marked


def fail_stale_note(
    client: firestore.Client,
    uid: str,
    note_id: str,
    *,
    expected: NoteStatus,
    field_path: str,
    cutoff: dt.datetime,
    reason: str,
    message: str,
    now: dt.datetime,
) -> bool:
    """Mark the note ``failed`` if it still has status ``expected`` and ``field_path`` before ``cutoff``.

    ``field_path`` is a dotted path such as ``lease.expiresAt``.

    Returns:
        True when the note was marked ``failed``; False when it had moved on.
    """
    from google.cloud import firestore

    ref = client.document(note_path(uid, note_id))

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> bool:
        snapshot = ref.get(transaction=transaction, retry=firestore_retry(), timeout=FIRESTORE_CALL_TIMEOUT_SECONDS)
        note = snapshot.to_dict() or {}
        value: Any = note
        for key in field_path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if note.get("status") != expected.value or value is None or not value < cutoff:
            return False

        transaction.update(ref, _failed_fields(reason, message, now, int(note.get("attempt", 0))))
        return True

    marked: bool = _run_in_transaction(client, run)
    return marked


def record_write_time(client: firestore.Client, uid: str, note_id: str, *, write_ms: int) -> None:
    """Add ``timingsMs.writeMs``, the duration of the commit that made the note ``done``.

    The commit cannot contain its own duration, so this is a second write
    after it. Best effort: a failure is logged and the note stays ``done``
    without ``writeMs``.
    """
    from google.api_core import exceptions

    ref = client.document(note_path(uid, note_id))
    try:
        ref.update({"timingsMs.writeMs": write_ms}, retry=firestore_retry())
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as err:
        logger.warning("recording the write time of a done note failed: %s", type(err).__name__)


def release_note(client: firestore.Client, uid: str, note_id: str, *, event_id: str, error_code: str, now: dt.datetime) -> None:
    """End this delivery's lease after a transient failure, so the redelivery can claim the note at once.

    Best effort: if Firestore itself is failing, the lease simply runs out.
    """
    from google.api_core import exceptions
    from google.cloud import firestore

    ref = client.document(note_path(uid, note_id))

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> None:
        snapshot = ref.get(transaction=transaction, retry=firestore_retry(), timeout=FIRESTORE_CALL_TIMEOUT_SECONDS)
        if _holds_lease(snapshot.to_dict() or {}, event_id):
            transaction.update(
                ref,
                {"lease.expiresAt": now, "lastError": {"code": error_code, "at": now}, "updatedAt": now},
            )

    try:
        run(client.transaction())
    except exceptions.GoogleAPICallError as err:
        logger.warning("could not release the lease after a transient failure: %s", type(err).__name__)
