"""Reading and deleting the uploaded audio in Cloud Storage, with bounded retries.

The audio is read into memory and never written to a temporary file. The read
is capped at one byte over the upload limit, so an object that is larger than
the size in its event still costs at most that much memory.
"""

from __future__ import annotations

import logging
from typing import Any

from functions.clients import storage_client
from functions.config import Settings
from functions.errors import PermanentProcessingError, TransientError
from functions.models import FailureReason
from functions.processing.event import StorageEvent

logger = logging.getLogger(__name__)

# Bound on retrying one Cloud Storage call. A longer outage fails the delivery,
# and Eventarc delivers the event again.
STORAGE_RETRY_SECONDS = 20.0
STORAGE_CALL_TIMEOUT_SECONDS = 60.0


def storage_retry() -> Any:
    """Return the retry policy for Cloud Storage calls.

    It keeps the predicate of ``google.cloud.storage.retry.DEFAULT_RETRY``
    (HTTP 408, 429 and 5xx, connection resets and timeouts) and bounds the
    total time at :data:`STORAGE_RETRY_SECONDS`.
    """
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_delay(initial=0.2, maximum=3.0, multiplier=2.0).with_timeout(STORAGE_RETRY_SECONDS)


def _generation(event: StorageEvent) -> int | None:
    return int(event.generation) if event.generation.isdigit() else None


def download_audio(settings: Settings, event: StorageEvent) -> bytes:
    """Read the object of ``event`` into memory.

    Returns:
        The object's bytes, at most ``max_upload_bytes + 1`` of them.

    Raises:
        PermanentProcessingError: ``too_large`` (from the event's size) or
            ``audio_missing`` (the object generation no longer exists).
        TransientError: Cloud Storage kept failing through the retries.
    """
    from google.api_core import exceptions

    if event.size_bytes is not None and event.size_bytes > settings.max_upload_bytes:
        raise PermanentProcessingError(
            f"the uploaded file has {event.size_bytes} bytes, above the limit of {settings.max_upload_bytes}",
            code=FailureReason.TOO_LARGE.value,
        )

    blob = storage_client().bucket(event.bucket).blob(event.name, generation=_generation(event))
    try:
        # ``end`` is inclusive, so one byte past the limit is read and
        # audio.check_audio reports the object as too large.
        data: bytes = blob.download_as_bytes(
            start=0, end=settings.max_upload_bytes, retry=storage_retry(), timeout=STORAGE_CALL_TIMEOUT_SECONDS
        )
        return data
    except exceptions.RequestRangeNotSatisfiable:
        # Cloud Storage returns HTTP 416 for a range read of an empty object.
        return b""
    except exceptions.NotFound as err:
        raise PermanentProcessingError(
            "the uploaded audio no longer exists in Cloud Storage", code=FailureReason.AUDIO_MISSING.value
        ) from err
    except (exceptions.GoogleAPICallError, exceptions.RetryError, ConnectionError, OSError) as err:
        raise TransientError(f"downloading gs://{event.bucket}/{event.name} failed: {type(err).__name__}") from err


def delete_audio(event: StorageEvent) -> None:
    """Delete the object generation of ``event``. Best effort: a failure is logged, not raised.

    The generation precondition keeps a newer upload under the same name.
    """
    from google.api_core import exceptions

    blob = storage_client().bucket(event.bucket).blob(event.name)
    try:
        blob.delete(if_generation_match=_generation(event), retry=storage_retry(), timeout=STORAGE_CALL_TIMEOUT_SECONDS)
    except exceptions.NotFound:
        logger.info("audio gs://%s/%s was already deleted", event.bucket, event.name)
    except (exceptions.GoogleAPICallError, exceptions.RetryError, ConnectionError, OSError) as err:
        # The bucket's lifecycle rule (infra/terraform/storage.tf) removes leftovers.
        logger.warning("deleting the audio gs://%s/%s failed: %s", event.bucket, event.name, type(err).__name__)
