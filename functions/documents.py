"""Pydantic models of the Firestore documents that the app reads.

Each field's alias is its Firestore field name. The models describe what
``upload_url`` (:mod:`functions.store`) and ``process_audio``
(:mod:`functions.processing.state`) write, and ``docs/data-contract.md`` lists
the same fields; a contract test keeps the two equal. ``extra="forbid"`` makes
a stored field that is missing here fail validation.

Firestore returns timestamps as timezone-aware ``datetime`` values, so every
timestamp field is an :class:`~pydantic.AwareDatetime`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from functions.models import FailureReason, NoteStatus

logger = logging.getLogger(__name__)

VOICE_NOTES_COLLECTION = "voiceNotes"
TASKS_COLLECTION = "tasks"

_CONFIG = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class HistoryEntry(BaseModel):
    """One status transition of a note, appended in the same transaction as the change."""

    model_config = _CONFIG

    status: NoteStatus
    at: AwareDatetime
    attempt: Annotated[int, Field(ge=0, description="Processing attempt that made the transition; 0 before any.")]


class Lease(BaseModel):
    """The claim of one storage event on a ``processing`` note."""

    model_config = _CONFIG

    event_id: Annotated[str, Field(alias="eventId", description="CloudEvent id of the delivery that owns the lease.")]
    generation: Annotated[str, Field(description="Cloud Storage generation of the uploaded object, as a string.")]
    expires_at: Annotated[
        AwareDatetime,
        Field(alias="expiresAt", description="After this instant another delivery may take the note over."),
    ]


class LastError(BaseModel):
    """The most recent transient failure; processing was retried after it."""

    model_config = _CONFIG

    code: Annotated[str, Field(description="Error code, for example ``transient`` or ``unexpected_error``.")]
    at: AwareDatetime


class Failure(BaseModel):
    """Reason and message of a ``failed`` note."""

    model_config = _CONFIG

    reason: FailureReason
    message: Annotated[str, Field(description="English sentence for logs and support; the app shows its own text.")]


class ExtractionStats(BaseModel):
    """Model and token usage of the extraction of a ``done`` note."""

    model_config = _CONFIG

    model: str
    prompt_tokens: Annotated[int | None, Field(alias="promptTokens", ge=0)] = None
    candidate_tokens: Annotated[int | None, Field(alias="candidateTokens", ge=0)] = None
    attempts: Annotated[int, Field(ge=1, description="Extractor requests made, retries included.")]


class Timings(BaseModel):
    """Durations of the processing steps, in milliseconds."""

    model_config = _CONFIG

    download_ms: Annotated[int, Field(alias="downloadMs", ge=0)]
    extract_ms: Annotated[int, Field(alias="extractMs", ge=0)]
    write_ms: Annotated[
        int | None,
        Field(
            alias="writeMs", ge=0, description="Duration of the commit that made the note done; written just after it."
        ),
    ] = None


class VoiceNoteDocument(BaseModel):
    """``users/{uid}/voiceNotes/{noteId}``: one recording and its processing status.

    ``upload_url`` creates the document with the fields that have no default;
    ``process_audio`` adds the others as the note moves on.
    """

    model_config = _CONFIG

    status: NoteStatus
    content_type: Annotated[
        str, Field(alias="contentType", description="Canonical audio type signed into the upload URL.")
    ]
    declared_content_type: Annotated[
        str, Field(alias="declaredContentType", description="contentType as the app sent it, before normalisation.")
    ]
    declared_size_bytes: Annotated[int, Field(alias="declaredSizeBytes", gt=0)]
    object_name: Annotated[
        str, Field(alias="objectName", pattern=r"^voice-notes/[A-Za-z0-9_-]{1,128}/[0-9a-f]{32}\.[a-z0-9]{2,5}$")
    ]
    bucket: str
    timezone: Annotated[str, Field(description="IANA time zone the tasks' local dates refer to.")]
    recorded_at: Annotated[AwareDatetime, Field(alias="recordedAt")]
    upload_expires_at: Annotated[AwareDatetime, Field(alias="uploadExpiresAt")]
    attempt: Annotated[int, Field(ge=0, description="Processing attempts so far; 0 until the upload arrives.")]
    created_at: Annotated[AwareDatetime, Field(alias="createdAt")]
    updated_at: Annotated[AwareDatetime, Field(alias="updatedAt")]
    history: list[HistoryEntry]

    lease: Lease | None = None
    last_error: Annotated[LastError | None, Field(alias="lastError")] = None

    transcript: str | None = None
    task_ids: Annotated[list[str] | None, Field(alias="taskIds")] = None
    task_count: Annotated[int | None, Field(alias="taskCount", ge=0)] = None
    extraction: ExtractionStats | None = None
    timings_ms: Annotated[Timings | None, Field(alias="timingsMs")] = None
    completed_at: Annotated[AwareDatetime | None, Field(alias="completedAt")] = None

    failure: Failure | None = None

    @model_validator(mode="after")
    def _fields_of_status(self) -> VoiceNoteDocument:
        """Require the fields that the transition into the current status writes."""
        if self.status is NoteStatus.DONE:
            missing = [
                alias
                for alias, value in (
                    ("transcript", self.transcript),
                    ("taskIds", self.task_ids),
                    ("taskCount", self.task_count),
                    ("extraction", self.extraction),
                    ("completedAt", self.completed_at),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"a done note needs {', '.join(missing)}")
            if self.task_ids is not None and len(self.task_ids) != self.task_count:
                raise ValueError(f"taskCount is {self.task_count} but taskIds has {len(self.task_ids)} ids")
        if self.status is NoteStatus.FAILED and self.failure is None:
            raise ValueError("a failed note needs failure")
        if self.status is NoteStatus.PROCESSING and self.lease is None:
            raise ValueError("a processing note needs lease")
        if self.status in (NoteStatus.DONE, NoteStatus.FAILED) and self.lease is not None:
            raise ValueError(f"a {self.status.value} note has no lease")
        return self


Priority = Literal["high", "medium", "low"]


class TaskDocument(BaseModel):
    """``users/{uid}/tasks/{taskId}``: one task found in a voice note.

    The id is ``{noteId}-{index:02d}``, so processing a note again overwrites
    its tasks. The owner may change ``title``, ``completed`` and ``completedAt``
    (the Firestore rules allow no other client write).
    """

    model_config = _CONFIG

    title: Annotated[str, Field(min_length=1)]
    notes: str | None
    due_at: Annotated[
        AwareDatetime | None,
        Field(
            alias="dueAt", description="UTC instant of a timed task; null for all-day tasks and tasks without a date."
        ),
    ]
    due_date: Annotated[
        str | None,
        Field(
            alias="dueDate",
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="Local calendar date (YYYY-MM-DD) in the note's time zone; null without a date.",
        ),
    ]
    all_day: Annotated[bool, Field(alias="allDay")]
    recurrence: Annotated[
        str | None,
        # NOTE: the Gemini extractor stores an RFC 5545 RRULE such as
        # FREQ=WEEKLY;BYDAY=TU, the offline extractor the spoken phrase.
        Field(description="How the task repeats; null for a one-off task."),
    ]
    priority: Priority | None
    completed: bool
    completed_at: Annotated[
        AwareDatetime | None,
        Field(alias="completedAt", description="Set by the app when the owner ticks the task off."),
    ] = None
    source_note_id: Annotated[str, Field(alias="sourceNoteId", pattern=r"^[0-9a-f]{32}$")]
    index: Annotated[int, Field(ge=0, description="Position of the task in the note, as spoken.")]
    created_at: Annotated[AwareDatetime, Field(alias="createdAt")]
