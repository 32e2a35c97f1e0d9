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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from functions.errors import QuotaExceeded
from functions.models import NoteStatus

if TYPE_CHECKING:
    from google.cloud import firestore

logger = logging.getLogger(__name__)


def note_path(uid: str, note_id: str) -> str:
    """Return the document path of a voice note."""
    return f"users/{uid}/voiceNotes/{note_id}"


def task_path(uid: str, task_id: str) -> str:
    """Return the document path of a task."""
    return f"users/{uid}/tasks/{task_id}"


def task_id_for(note_id: str, index: int) -> str:
    """Return the deterministic id of the task at ``index`` in a note, so re-runs overwrite."""
    return f"{note_id}-{index:02d}"


@dataclass(frozen=True)
class QuotaLimits:
    """Uploads allowed per user in a rolling clock hour and UTC day."""

    per_hour: int
    per_day: int


def _window_start(now: dt.datetime, *, hourly: bool) -> dt.datetime:
    if hourly:
        return now.replace(minute=0, second=0, microsecond=0)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _next_counts(
    quota: dict[str, Any], now: dt.datetime, limits: QuotaLimits
) -> dict[str, Any]:
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


def create_note_with_quota(
    client: firestore.Client,
    *,
    uid: str,
    note_id: str,
    note: dict[str, Any],
    limits: QuotaLimits,
    now: dt.datetime,
) -> None:
    """Count one upload against the user's quota and create the note, in one transaction.

    Raises:
        QuotaExceeded: the hourly or daily limit is used up; nothing is written.
    """
    from google.cloud import firestore

    quota_ref = client.document(f"users/{uid}/quota/uploads")
    note_ref = client.document(note_path(uid, note_id))

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> None:
        snapshot = quota_ref.get(transaction=transaction)
        counts = _next_counts(snapshot.to_dict() or {}, now, limits)

        transaction.set(quota_ref, counts)
        transaction.create(
            note_ref,
            {
                **note,
                "status": NoteStatus.AWAITING_UPLOAD.value,
                "attempt": 0,
                "createdAt": firestore.SERVER_TIMESTAMP,
                "updatedAt": firestore.SERVER_TIMESTAMP,
                "history": [{"status": NoteStatus.AWAITING_UPLOAD.value, "at": now, "attempt": 0}],
            },
        )

    run(client.transaction())
