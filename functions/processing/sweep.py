"""Ending notes that no delivery can finish any more.

Two kinds of note would otherwise wait forever:

- ``awaiting_upload`` whose upload URL expired: any upload had to start
  before the expiry, so its event is at least that old.
- ``processing`` whose lease expired: the holder crashed and Eventarc gave
  up redelivering, or every redelivery was refused.

Once ``MAX_EVENT_AGE_SECONDS`` has passed since the URL or the lease expired,
any event that could still arrive for the note is older than that limit, and
the pipeline would fail it as ``expired`` anyway. The sweep does the same
without waiting for an event: ``upload_missing`` for a note whose audio never
arrived, ``expired`` for one whose processing stopped. Scheduled ``health``
pings run it, a bounded batch at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from functions.models import FailureReason, NoteStatus
from functions.processing import state

if TYPE_CHECKING:
    from google.cloud import firestore

logger = logging.getLogger(__name__)

# Notes ended per kind and per sweep, so one ping stays short.
SWEEP_BATCH = 50
QUERY_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class _StaleKind:
    """Notes of one status that the sweep ends once ``field_path`` is older than the cutoff."""

    status: NoteStatus
    field_path: str
    reason: FailureReason
    message: str


_KINDS = (
    _StaleKind(
        NoteStatus.AWAITING_UPLOAD,
        "uploadExpiresAt",
        FailureReason.UPLOAD_MISSING,
        "no audio arrived before the upload URL expired; record the note again",
    ),
    _StaleKind(
        NoteStatus.PROCESSING,
        "lease.expiresAt",
        FailureReason.EXPIRED,
        "processing stopped and was not retried in time; record the note again",
    ),
)


@dataclass(frozen=True)
class SweepCounts:
    """Notes failed by one sweep."""

    upload_missing: int
    processing_stalled: int


def _stale(
    client: firestore.Client, status: NoteStatus, field_path: str, cutoff: dt.datetime
) -> list[Any]:
    from google.cloud import firestore

    query = (
        client.collection_group("voiceNotes")
        .where(filter=firestore.FieldFilter("status", "==", status.value))
        .where(filter=firestore.FieldFilter(field_path, "<", cutoff))
        .limit(SWEEP_BATCH)
    )
    return list(query.stream(timeout=QUERY_TIMEOUT_SECONDS, retry=None))


def _owner(snapshot: Any) -> tuple[str, str]:
    # users/{uid}/voiceNotes/{noteId}
    return snapshot.reference.parent.parent.id, snapshot.id


def sweep_stale_notes(client: firestore.Client, now: dt.datetime, max_event_age_seconds: int) -> SweepCounts:
    """Fail notes that no event can finish any more, at most ``SWEEP_BATCH`` of each kind.

    Each note is failed in its own transaction that checks its status again,
    so a note that an event claims meanwhile is left alone.
    """
    cutoff = now - dt.timedelta(seconds=max_event_age_seconds)

    ended: dict[NoteStatus, int] = {}
    for kind in _KINDS:
        ended[kind.status] = 0
        for snapshot in _stale(client, kind.status, kind.field_path, cutoff):
            uid, note_id = _owner(snapshot)
            if state.fail_stale_note(
                client, uid, note_id, expected=kind.status, field_path=kind.field_path, cutoff=cutoff,
                reason=kind.reason.value, message=kind.message, now=now,
            ):  # fmt: skip
                ended[kind.status] += 1

    missing = ended[NoteStatus.AWAITING_UPLOAD]
    stalled = ended[NoteStatus.PROCESSING]
    if missing or stalled:
        logger.warning("sweep failed %d notes without audio and %d stalled notes", missing, stalled)
    return SweepCounts(upload_missing=missing, processing_stalled=stalled)
