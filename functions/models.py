"""Data shapes shared by the entry points, the pipeline and the extractors.

These pydantic models are the source of truth for the HTTP contract and for the
Firestore documents that the app reads.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from enum import Enum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


class NoteStatus(str, Enum):
    """Lifecycle of a voice note document."""

    AWAITING_UPLOAD = "awaiting_upload"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class FailureReason(str, Enum):
    """Reason codes stored on a ``failed`` note, which the app maps to messages."""

    EMPTY_FILE = "empty_file"
    TOO_LARGE = "too_large"
    TOO_LONG = "too_long"
    UNSUPPORTED_AUDIO = "unsupported_audio"
    TYPE_MISMATCH = "type_mismatch"
    CORRUPT_AUDIO = "corrupt_audio"
    EXPIRED = "expired"
    AUDIO_MISSING = "audio_missing"
    UPLOAD_MISSING = "upload_missing"
    EXTRACTION_REJECTED = "extraction_rejected"
    EXTRACTION_BLOCKED = "extraction_blocked"
    EXTRACTION_INVALID = "extraction_invalid"
    EXTRACTION_TRUNCATED = "extraction_truncated"
    EXTRACTION_FAILED = "extraction_failed"


@functools.cache
def _iana_zones() -> frozenset[str]:
    # Only names from the zone list: ZoneInfo() would also open files such as
    # "localtime" or a folder such as "America".
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


def zone_or_error(name: str) -> ZoneInfo:
    """Return the IANA zone ``name``, or raise ValueError naming it."""
    if name not in _iana_zones():
        raise ValueError(f"'{name[:64]}' is not an IANA time zone such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValueError(f"'{name}' is not an IANA time zone such as Europe/Berlin") from err


_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


class UploadRequest(BaseModel):
    """Body of ``POST upload_url``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    content_type: Annotated[str, Field(alias="contentType", min_length=1, max_length=100)]
    size_bytes: Annotated[int, Field(alias="sizeBytes", gt=0, strict=True)]
    timezone: Annotated[str, Field(min_length=1, max_length=64)]
    recorded_at: Annotated[dt.datetime | None, Field(alias="recordedAt")] = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_or_error(value)
        return value

    @field_validator("recorded_at", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        # Lax pydantic would read a number, or a string of digits, as a Unix
        # time, but the contract is an RFC 3339 date-time string.
        if value is not None and not (isinstance(value, str) and _ISO_DATE_TIME.match(value)):
            raise ValueError("recordedAt must be an ISO 8601 date-time, for example 2026-03-10T18:30:00-07:00")
        return value

    @field_validator("recorded_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("recordedAt must carry a UTC offset, for example 2026-03-10T18:30:00-07:00")
        return value


class UploadResponse(BaseModel):
    """Body of a ``201`` reply from ``upload_url``."""

    model_config = ConfigDict(populate_by_name=True)

    note_id: str = Field(alias="noteId")
    upload_url: str = Field(alias="uploadUrl")
    method: str = "PUT"
    headers: dict[str, str]
    expires_at: dt.datetime = Field(alias="expiresAt")
    object_name: str = Field(alias="objectName")


class ExtractedTask(BaseModel):
    """One task found in a note, with its due time resolved in the note's zone."""

    title: str
    notes: str | None = None
    due_at: dt.datetime | None = None
    """UTC instant for a timed task, or None for all-day tasks and tasks with no date."""
    due_date: dt.date | None = None
    """Local calendar date in the note's time zone."""
    all_day: bool = False
    recurrence: str | None = None
    priority: str | None = None


class ExtractionResult(BaseModel):
    """Transcript and tasks that an extractor returns for one note."""

    transcript: str
    tasks: list[ExtractedTask]
    model: str
    prompt_tokens: int | None = None
    candidate_tokens: int | None = None
    attempts: int = 1


def resolve_due(
    local: dt.date | dt.datetime | None, zone: ZoneInfo
) -> tuple[dt.datetime | None, dt.date | None, bool]:
    """Turn a local date or naive local date-time into ``(due_at_utc, due_date, all_day)``."""
    if local is None:
        return None, None, False
    if isinstance(local, dt.datetime):
        aware = local.replace(tzinfo=zone) if local.tzinfo is None else local.astimezone(zone)
        return aware.astimezone(dt.UTC), aware.date(), False
    return None, local, True
