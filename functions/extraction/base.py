"""The extractor interface that turns one voice note into tasks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from functions.models import ExtractionResult


@dataclass(frozen=True)
class AudioInput:
    """One voice note to extract tasks from.

    ``deadline`` is a ``time.monotonic()`` value after which the extractor must
    stop trying; it is derived from the function timeout.
    """

    data: bytes
    content_type: str
    recorded_at: dt.datetime
    zone: ZoneInfo
    deadline: float
    duration_seconds: float | None = None

    @property
    def local_now(self) -> dt.datetime:
        """The recording time as wall-clock time in the note's zone."""
        return self.recorded_at.astimezone(self.zone)


class Extractor(Protocol):
    """Turns audio into a transcript and tasks.

    Implementations raise ``PermanentProcessingError`` for input that can never
    succeed and ``TransientError`` for failures worth a redelivery.
    """

    name: str

    def extract(self, audio: AudioInput) -> ExtractionResult: ...

    def probe(self) -> None:
        """Check that the extractor can serve; raise on failure. Used by ``health``."""
        ...
