"""``process_audio``: claim → expiry check → download → check audio → extract → commit.

Returning normally acknowledges the event. Raising makes Eventarc redeliver it,
which happens only for :class:`TransientError` and unexpected errors; every
permanent problem ends the note ``failed`` with a reason code instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions import audio
from functions.clients import firestore_client
from functions.config import Settings
from functions.errors import PermanentProcessingError, TransientError
from functions.extraction import AudioInput, get_extractor
from functions.models import FailureReason, NoteStatus, zone_or_error
from functions.objects import ObjectRef
from functions.processing import state
from functions.processing.blobs import delete_audio, download_audio
from functions.processing.event import StorageEvent

logger = logging.getLogger(__name__)

# Time kept back from the function timeout for the final Firestore write.
COMMIT_RESERVE_SECONDS = 20


@dataclass(frozen=True)
class Clock:
    """Wall clock and monotonic clock, injectable for tests."""

    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    monotonic: Callable[[], float] = time.monotonic


def _check(settings: Settings, data: bytes, content_type: str) -> float | None:
    """Check the bytes and return the duration read from the headers, if any.

    Raises:
        PermanentProcessingError: the reason code of the first check that failed.
    """
    declared = audio.canonical_type(content_type)
    if declared is None:
        raise PermanentProcessingError(
            f"the stored content type {content_type!r} is not an accepted audio type",
            code=FailureReason.UNSUPPORTED_AUDIO.value,
        )

    container = audio.check_audio(data, declared, max_bytes=settings.max_upload_bytes)
    if container == "wav":
        audio.check_wav_length(data)

    duration = audio.duration_seconds(data)
    if duration is not None and duration > settings.max_audio_seconds:
        raise PermanentProcessingError(
            f"the audio lasts {duration:.0f} s, above the limit of {settings.max_audio_seconds} s",
            code=FailureReason.TOO_LONG.value,
        )
    return duration


def _is_expired(settings: Settings, event: StorageEvent, now: dt.datetime) -> bool:
    if event.event_time is None:
        return False
    return (now - event.event_time).total_seconds() > settings.max_event_age_seconds


def process_note(settings: Settings, event: StorageEvent, ref: ObjectRef, clock: Clock = Clock()) -> None:
    """Process one finalized upload of a note.

    Returns normally, which acknowledges the event, when the note ended
    ``done`` or ``failed`` here or needs no work from this delivery.

    Raises:
        TransientError: a dependency failed or another delivery of the same
            event holds the note's lease; the event must be delivered again.
        Exception: any unexpected error, also after releasing the lease.
    """
    started = clock.monotonic()
    db = firestore_client()

    claim = state.claim_note(
        db, ref.uid, ref.note_id,
        event_id=event.event_id, generation=event.generation, now=clock.now(),
        lease_seconds=settings.function_timeout_seconds, object_name=event.name,
    )  # fmt: skip
    if claim.outcome is state.ClaimOutcome.LEASED_BY_SAME_EVENT:
        raise TransientError("another delivery of this event holds the note's lease; retry later")
    if claim.outcome is state.ClaimOutcome.MISSING:
        logger.warning("event acknowledged without work: note document users/<uid>/voiceNotes/%s not found", ref.note_id)
        return
    if claim.outcome is not state.ClaimOutcome.CLAIMED:
        logger.info("event acknowledged without work: %s", claim.outcome.value)
        # A PUT retried after the note was done can store the audio again (on
        # real GCS once the first object is deleted, since the create-only
        # precondition only checks the live object). Nothing else removes it.
        finished = claim.outcome is state.ClaimOutcome.FINAL and claim.note.get("status") == NoteStatus.DONE.value
        if finished and settings.delete_audio_after_done:
            delete_audio(event)
        return

    logger.info("note processing, attempt %d", claim.attempt, extra={"labels": {"attempt": claim.attempt}})
    try:
        # The expiry check runs under the lease, so an expired event never
        # fails a note that a newer event is processing.
        if _is_expired(settings, event, clock.now()):
            raise PermanentProcessingError(
                f"the storage event is older than {settings.max_event_age_seconds} s; record the note again",
                code=FailureReason.EXPIRED.value,
            )
        _run(settings, event, ref, claim, started, clock)
    except PermanentProcessingError as err:
        _fail(settings, db, event, ref, claim, err, clock)
    except Exception as err:
        code = err.code if isinstance(err, TransientError) else "unexpected_error"
        state.release_note(db, ref.uid, ref.note_id, event_id=event.event_id, error_code=code, now=clock.now())
        logger.warning("note processing will be retried after %s: %s", type(err).__name__, err)
        raise


def _fail(
    settings: Settings,
    db: Any,
    event: StorageEvent,
    ref: ObjectRef,
    claim: state.Claim,
    err: PermanentProcessingError,
    clock: Clock,
) -> None:
    marked = state.fail_note(
        db, ref.uid, ref.note_id,
        event_id=event.event_id, attempt=claim.attempt, reason=err.code, message=err.message, now=clock.now(),
    )  # fmt: skip
    if not marked:
        logger.warning("lease lost before marking the note failed (%s); another delivery owns the note", err.code)
        return

    logger.warning("note failed: %s: %s", err.code, err.message)
    if settings.delete_audio_after_failed:
        delete_audio(event)


def _run(settings: Settings, event: StorageEvent, ref: ObjectRef, claim: state.Claim, started: float, clock: Clock) -> None:
    note = claim.note
    timings: dict[str, int] = {}

    step = clock.monotonic()
    data = download_audio(settings, event)
    content_type = note.get("contentType") or event.content_type or ""
    duration = _check(settings, data, content_type)
    timings["downloadMs"] = round((clock.monotonic() - step) * 1000)

    step = clock.monotonic()
    audio_input = AudioInput(
        data=data,
        content_type=content_type,
        recorded_at=note.get("recordedAt") or clock.now(),
        zone=zone_or_error(note.get("timezone") or "UTC"),
        deadline=started + settings.function_timeout_seconds - COMMIT_RESERVE_SECONDS,
        duration_seconds=duration,
    )
    result = get_extractor().extract(audio_input)
    timings["extractMs"] = round((clock.monotonic() - step) * 1000)

    step = clock.monotonic()
    db = firestore_client()
    committed = state.complete_note(
        db, ref.uid, ref.note_id,
        event_id=event.event_id, attempt=claim.attempt, result=result, timings_ms=timings, now=clock.now(),
    )  # fmt: skip
    if not committed:
        logger.warning("lease lost before commit; another delivery owns the note")
        return
    write_ms = round((clock.monotonic() - step) * 1000)
    state.record_write_time(db, ref.uid, ref.note_id, write_ms=write_ms)
    logger.info(
        "note done with %d tasks (download %d ms, extract %d ms, write %d ms)",
        len(result.tasks), timings["downloadMs"], timings["extractMs"], write_ms,
    )  # fmt: skip

    if settings.delete_audio_after_done:
        delete_audio(event)
