"""``process_audio``: parse event → claim → fetch → check audio → extract → commit.

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
from functions.clients import firestore_client, storage_client
from functions.config import Settings
from functions.errors import PermanentProcessingError, TransientError
from functions.extraction import AudioInput, get_extractor
from functions.models import FailureReason, zone_or_error
from functions.objects import ObjectRef
from functions.processing import state
from functions.processing.event import StorageEvent

logger = logging.getLogger(__name__)

# Time kept back from the function timeout for the final Firestore write.
COMMIT_RESERVE_SECONDS = 20


@dataclass(frozen=True)
class Clock:
    """Wall clock and monotonic clock, injectable for tests."""

    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
    monotonic: Callable[[], float] = time.monotonic


def _storage_retry() -> Any:
    from google.api_core import exceptions, retry

    return retry.Retry(
        predicate=retry.if_exception_type(
            exceptions.ServiceUnavailable,
            exceptions.InternalServerError,
            exceptions.BadGateway,
            exceptions.GatewayTimeout,
            exceptions.TooManyRequests,
            ConnectionError,
        ),
        initial=0.5,
        maximum=5.0,
        timeout=60.0,
    )


def _download(settings: Settings, event: StorageEvent) -> bytes:
    """Read the object into memory; its size is bounded by the upload limit.

    Raises:
        PermanentProcessingError: ``too_large`` or ``audio_missing``.
        TransientError: Cloud Storage kept failing.
    """
    from google.api_core import exceptions

    if event.size_bytes is not None and event.size_bytes > settings.max_upload_bytes:
        raise PermanentProcessingError(
            f"the uploaded file has {event.size_bytes} bytes, above the limit of {settings.max_upload_bytes}",
            code=FailureReason.TOO_LARGE.value,
        )

    generation = int(event.generation) if event.generation.isdigit() else None
    blob = storage_client().bucket(event.bucket).blob(event.name, generation=generation)
    try:
        return blob.download_as_bytes(retry=_storage_retry(), timeout=60)
    except exceptions.NotFound as err:
        raise PermanentProcessingError(
            "the uploaded audio no longer exists in Cloud Storage", code=FailureReason.AUDIO_MISSING.value
        ) from err
    except (exceptions.GoogleAPICallError, exceptions.RetryError, ConnectionError) as err:
        raise TransientError(f"downloading the audio failed: {type(err).__name__}") from err


def _check(settings: Settings, data: bytes, content_type: str) -> float | None:
    """Check the bytes and return the duration read from the headers, if any."""
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


def _delete_audio(event: StorageEvent) -> None:
    from google.api_core import exceptions

    try:
        storage_client().bucket(event.bucket).blob(event.name).delete(
            if_generation_match=int(event.generation) if event.generation.isdigit() else None
        )
    except exceptions.GoogleAPICallError as err:
        # The bucket's lifecycle rule removes the object later.
        logger.warning("deleting the processed audio failed: %s", type(err).__name__)


def process_note(settings: Settings, event: StorageEvent, ref: ObjectRef, clock: Clock = Clock()) -> None:
    """Process one finalized upload of a note. Raises only for a redelivery."""
    started = clock.monotonic()
    now = clock.now()
    db = firestore_client()

    if event.event_time is not None and (now - event.event_time).total_seconds() > settings.max_event_age_seconds:
        failed = state.fail_note(
            db, ref.uid, ref.note_id, event_id=None, attempt=0,
            reason=FailureReason.EXPIRED.value,
            message="the note could not be processed in time; record it again",
            now=now,
        )
        logger.warning("event older than %s s acknowledged; note marked failed: %s", settings.max_event_age_seconds, failed)
        return

    claim = state.claim_note(
        db, ref.uid, ref.note_id,
        event_id=event.event_id, generation=event.generation, now=now,
        lease_seconds=settings.function_timeout_seconds,
    )
    if claim.outcome is state.ClaimOutcome.LEASED_BY_SAME_EVENT:
        raise TransientError("another delivery of this event holds the note's lease; retry later")
    if claim.outcome is not state.ClaimOutcome.CLAIMED:
        logger.info("event acknowledged without work: %s", claim.outcome.value)
        return

    logger.info("note processing, attempt %d", claim.attempt, extra={"labels": {"attempt": claim.attempt}})
    try:
        _run(settings, event, ref, claim, started, clock)
    except PermanentProcessingError as err:
        state.fail_note(
            db, ref.uid, ref.note_id, event_id=event.event_id, attempt=claim.attempt,
            reason=err.code, message=err.message, now=clock.now(),
        )
        logger.warning("note failed: %s: %s", err.code, err.message)
        if settings.delete_audio_after_failed:
            _delete_audio(event)
    except Exception as err:
        code = err.code if isinstance(err, TransientError) else "unexpected_error"
        state.release_note(db, ref.uid, ref.note_id, event_id=event.event_id, error_code=code, now=clock.now())
        logger.warning("note processing will be retried after %s", type(err).__name__)
        raise


def _run(settings: Settings, event: StorageEvent, ref: ObjectRef, claim: state.Claim, started: float, clock: Clock) -> None:
    note = claim.note
    timings: dict[str, int] = {}

    step = clock.monotonic()
    data = _download(settings, event)
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
    committed = state.complete_note(
        firestore_client(), ref.uid, ref.note_id,
        event_id=event.event_id, attempt=claim.attempt, result=result, timings_ms=timings, now=clock.now(),
    )
    if not committed:
        logger.warning("lease lost before commit; another delivery owns the note")
        return
    logger.info(
        "note done with %d tasks (download %d ms, extract %d ms, commit %d ms)",
        len(result.tasks), timings["downloadMs"], timings["extractMs"], round((clock.monotonic() - step) * 1000),
    )

    if settings.delete_audio_after_done:
        _delete_audio(event)
