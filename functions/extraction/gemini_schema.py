"""The response schema that Gemini must fill, and the prompt that requests it.

The same pydantic models serve twice: google-genai turns them into the
``responseSchema`` of the request, and we validate the returned JSON against
them again, because the API may still return text that breaks the schema.
"""

from __future__ import annotations

import datetime as dt
import logging
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

logger = logging.getLogger(__name__)

DUE_PATTERN = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2})?$"
RRULE_PATTERN = r"^FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)(;[A-Z]+=[A-Za-z0-9,+-]+)*$"


class Priority(str, Enum):
    """Priority of a task, only when the speaker stated one."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


def _require_every_property(schema: dict[str, Any]) -> None:
    # The schema sent to Gemini lists every field as required (null is allowed),
    # so the model writes each one. Our own validation still accepts a missing
    # optional field, through the pydantic defaults.
    schema["required"] = list(schema.get("properties", {}))


class GeminiTask(BaseModel):
    """One task as Gemini returns it, with the due value in the note's local time."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_require_every_property)

    title: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
        Field(description="Short imperative title in the language spoken, e.g. 'Call the dentist'."),
    ]
    notes: Annotated[
        str | None,
        Field(description="Extra details the speaker gave for this task, or null."),
    ] = None
    due: Annotated[
        str | None,
        Field(
            pattern=DUE_PATTERN,
            description=(
                "Local wall-clock time in the speaker's time zone, without offset: "
                "'YYYY-MM-DD' for a date only, 'YYYY-MM-DDTHH:MM' for a date and time, "
                "null when no date was said."
            ),
        ),
    ] = None
    all_day: Annotated[
        bool,
        Field(description="True when only a date applies; false for a timed task or no due date."),
    ] = False
    priority: Annotated[
        Priority | None,
        Field(description="Priority only if the speaker stated one, else null."),
    ] = None
    recurrence: Annotated[
        str | None,
        Field(
            pattern=RRULE_PATTERN,
            description="RFC 5545 RRULE for a repeating task, e.g. 'FREQ=WEEKLY;BYDAY=TU', else null.",
        ),
    ] = None

    @field_validator("due")
    @classmethod
    def _real_date(cls, value: str | None) -> str | None:
        # The pattern admits 2026-02-30 or 25:00, so parse the value as well.
        if value is not None:
            parse_due(value)
        return value


class GeminiExtraction(BaseModel):
    """The whole JSON response: the transcript and the tasks in it."""

    model_config = ConfigDict(extra="ignore")

    transcript: Annotated[str, Field(description="Verbatim transcript of the voice note.")]
    tasks: Annotated[
        list[GeminiTask],
        Field(description="Every task the speaker wants to do, in spoken order; empty if none."),
    ]


MIN_DUE_YEAR = 1900
MAX_DUE_YEAR = 2199


def parse_due(value: str) -> dt.date | dt.datetime:
    """Parse a due value of the form ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``.

    Returns:
        A date for a date-only value, a naive local date-time otherwise.

    Raises:
        ValueError: the value is not a real calendar date or clock time, or
            its year is outside ``MIN_DUE_YEAR`` to ``MAX_DUE_YEAR``.
    """
    parsed: dt.date | dt.datetime
    if "T" in value:
        parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M")
    else:
        parsed = dt.date.fromisoformat(value)

    # Years near 1 or 9999 overflow when converted between time zones.
    if not MIN_DUE_YEAR <= parsed.year <= MAX_DUE_YEAR:
        raise ValueError(f"due year {parsed.year} is outside {MIN_DUE_YEAR} to {MAX_DUE_YEAR}")
    return parsed


# English names regardless of the process locale, which ``strftime("%A")`` would follow.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_PROMPT = """\
You turn a voice note into a to-do list.

The speaker recorded this note at {local_now} ({weekday}) in the time zone {zone}.
Resolve every relative date or time ("tomorrow", "on Friday", "next Monday", "in two hours",
"tonight") against that moment in that time zone, so "tomorrow" is the speaker's local tomorrow.

Return JSON that matches the response schema:
- transcript: what was said, word for word, in the language spoken.
- tasks: one entry per thing the speaker wants to do or be reminded of. Leave out asides,
  musings and things already done. Return an empty list when there is no task.
- due: local wall-clock time without an offset, "YYYY-MM-DD" for a day or
  "YYYY-MM-DDTHH:MM" for a time of day; null when no date or time was said.
  For a vague time of day ("morning", "evening", "tonight") give the date only.
  "In two hours" means two hours of elapsed time from the recording moment.
- all_day: true when due is a date only, otherwise false.
- priority: "high", "medium" or "low" only when the speaker said how important it is, else null.
- recurrence: an RFC 5545 RRULE such as "FREQ=WEEKLY;BYDAY=TU" for a repeating task, else null.
Do not invent tasks, dates or details that were not spoken.
"""

_REPAIR = """\

Your previous response was not valid JSON for the response schema. Respond again with JSON only,
matching the schema exactly.
"""


def build_prompt(local_now: dt.datetime, zone_name: str, *, repair: bool = False) -> str:
    """Build the instruction text that goes with the audio.

    Args:
        local_now: The recording moment as an aware date-time in the note's zone.
        zone_name: The IANA zone name, for example ``America/Los_Angeles``.
        repair: Add a reminder to return valid JSON, used on the retry after
            a response failed the schema.
    """
    prompt = _PROMPT.format(
        local_now=local_now.isoformat(timespec="seconds"),
        weekday=_WEEKDAYS[local_now.weekday()],
        zone=zone_name,
    )
    if repair:
        prompt += _REPAIR
    return prompt
