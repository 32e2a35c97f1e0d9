"""Firestore paths and the writes that create a voice note and count quota.

Document layout:

- ``users/{uid}/voiceNotes/{noteId}``: one voice note and its status.
- ``users/{uid}/tasks/{taskId}``: tasks found in notes; ids derive from the note id.
- ``users/{uid}/quota/uploads``: upload counters for the current hour and day.

State changes of a note during processing live in :mod:`functions.processing.state`.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from functions.errors import QuotaExceeded, TransientError
from functions.models import NoteStatus

if TYPE_CHECKING:
    from google.cloud import firestore

logger = logging.getLogger(__name__)

# Concurrent uploads of one user race for the quota document. Each attempt
# reads it and commits only if it is unchanged since, so a lost race costs one
# more read. The attempts back off with jitter to spread the retries.
MAX_COMMIT_ATTEMPTS = 20
MAX_BACKOFF_SECONDS = 0.8


def note_path(uid: str, note_id: str) -> str:
    """Return the document path of a voice note."""
    return f"users/{uid}/voiceNotes/{note_id}"


def task_path(uid: str, task_id: str) -> str:
    """Return the document path of a task."""
    return f"users/{uid}/tasks/{task_id}"


def quota_path(uid: str) -> str:
    """Return the document path of a user's upload counters."""
    return f"users/{uid}/quota/uploads"


def task_id_for(note_id: str, index: int) -> str:
    """Return the deterministic id of the task at ``index`` in a note, so re-runs overwrite."""
    return f"{note_id}-{index:02d}"


@dataclass(frozen=True)
class QuotaLimits:
    """Uploads allowed per user in one clock hour and in one UTC day."""

    per_hour: int
    per_day: int


def _window_start(now: dt.datetime, *, hourly: bool) -> dt.datetime:
    if hourly:
        return now.replace(minute=0, second=0, microsecond=0)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _next_counts(quota: dict[str, Any], now: dt.datetime, limits: QuotaLimits) -> dict[str, Any]:
    """Return the quota document after one more upload, or raise QuotaExceeded."""
    hour_start = _window_start(now, hourly=True)
    day_start = _window_start(now, hourly=False)

    hour_count = quota.get("hourCount", 0) if quota.get("hourStart") == hour_start else 0
    day_count = quota.get("dayCount", 0) if quota.get("dayStart") == day_start else 0

    if day_count >= limits.per_day:
        retry_after = int((day_start + dt.timedelta(days=1) - now).total_seconds()) + 1
        raise QuotaExceeded(
            f"the daily limit of {limits.per_day} uploads is used up; try again later",
            retry_after_seconds=retry_after,
        )
    if hour_count >= limits.per_hour:
        retry_after = int((hour_start + dt.timedelta(hours=1) - now).total_seconds()) + 1
        raise QuotaExceeded(
            f"the hourly limit of {limits.per_hour} uploads is used up; try again later",
            retry_after_seconds=retry_after,
        )

    return {
        "hourStart": hour_start,
        "hourCount": hour_count + 1,
        "dayStart": day_start,
        "dayCount": day_count + 1,
        "updatedAt": now,
    }


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.05 * 2**attempt)))


# Each Firestore call of upload_url gets this timeout per attempt and this
# overall retry budget, so that a hanging Firestore yields a 503 well inside
# the function's 60 s timeout instead of the client library's 300 s default.
FIRESTORE_CALL_TIMEOUT_SECONDS = 10.0
FIRESTORE_RETRY_SECONDS = 20.0


def _call_retry() -> Any:
    from google.api_core import exceptions, retry

    return retry.Retry(
        predicate=retry.if_exception_type(exceptions.ServiceUnavailable, exceptions.DeadlineExceeded),
        initial=0.2,
        maximum=2.0,
        timeout=FIRESTORE_RETRY_SECONDS,
    )


def create_note_with_quota(
    client: firestore.Client,
    *,
    uid: str,
    note_id: str,
    note: dict[str, Any],
    limits: QuotaLimits,
    now: dt.datetime,
) -> None:
    """Count one upload against the user's quota and create the note, in one atomic commit.

    The commit writes the quota document and creates the note together, and
    carries a precondition that the quota document is unchanged since it was
    read (or still absent). A concurrent upload that committed first fails the
    precondition, and this one reads the new counts and tries again, so
    concurrent requests never create more notes than the limits allow.

    NOTE: a read-write transaction would have the same effect with a lock. The
    Firestore emulator (google-cloud-cli-firestore-emulator 528.0.0) aborts
    contending transactions with "Transaction lock timeout" after seconds, and
    nine or ten of twelve concurrent uploads of one user failed that way there
    in two runs. The precondition takes no lock.

    Raises:
        QuotaExceeded: the hourly or daily limit is used up; nothing is written.
        TransientError: ``MAX_COMMIT_ATTEMPTS`` commits in a row lost the race;
            nothing is written.
    """
    from google.api_core import exceptions as api_exceptions
    from google.cloud import firestore

    quota_ref = client.document(quota_path(uid))
    note_ref = client.document(note_path(uid, note_id))
    document = {
        **note,
        "status": NoteStatus.AWAITING_UPLOAD.value,
        "attempt": 0,
        "createdAt": firestore.SERVER_TIMESTAMP,
        "updatedAt": firestore.SERVER_TIMESTAMP,
        "history": [{"status": NoteStatus.AWAITING_UPLOAD.value, "at": now, "attempt": 0}],
    }

    retry = _call_retry()
    for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
        try:
            snapshot = quota_ref.get(retry=retry, timeout=FIRESTORE_CALL_TIMEOUT_SECONDS)
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as err:
            raise TransientError(f"reading the upload quota failed: {type(err).__name__}; retry shortly") from err
        counts = _next_counts(snapshot.to_dict() or {}, now, limits)

        batch = client.batch()
        if snapshot.exists:
            batch.update(quota_ref, counts, option=client.write_option(last_update_time=snapshot.update_time))
        else:
            batch.create(quota_ref, counts)
        batch.create(note_ref, document)

        try:
            batch.commit(retry=retry, timeout=FIRESTORE_CALL_TIMEOUT_SECONDS)
            return
        except (api_exceptions.FailedPrecondition, api_exceptions.AlreadyExists, api_exceptions.NotFound) as err:
            # The note id is 128 random bits, so AlreadyExists comes from the
            # quota document that a concurrent upload created first.
            logger.info(
                "quota commit lost a race (attempt %d of %d): %s", attempt, MAX_COMMIT_ATTEMPTS, type(err).__name__
            )
        except (api_exceptions.GoogleAPICallError, api_exceptions.RetryError) as err:
            raise TransientError(f"creating the note failed: {type(err).__name__}; retry shortly") from err
        _backoff(attempt)

    raise TransientError(
        f"the upload quota changed under {MAX_COMMIT_ATTEMPTS} concurrent commits in a row; retry in a few seconds"
    )
