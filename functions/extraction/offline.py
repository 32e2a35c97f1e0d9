"""The offline extractor: local Whisper speech recognition plus rules for tasks and dates.

It needs no network and no API key, so it is the default when ``GEMINI_API_KEY``
is not set. Only :func:`functions.extraction.build_extractor` imports this module.
"""

from __future__ import annotations

import logging
import time

from functions.config import Settings
from functions.errors import TransientError
from functions.extraction.base import AudioInput
from functions.extraction.offline_dates import find_dates, load_date_model
from functions.extraction.offline_speech import SAMPLE_RATE_HZ, SpeechModel, decode_audio
from functions.extraction.offline_tasks import TaskDraft, split_tasks
from functions.models import ExtractedTask, ExtractionResult, resolve_due

logger = logging.getLogger(__name__)

MODEL_LABEL = "whisper-tiny.en+rules"

_speech_model = SpeechModel(cpu_threads=2)
"""One model per process, shared by every extractor instance and thread."""


class OfflineExtractor:
    """Extract tasks with Whisper ``tiny.en`` on the CPU and rule-based task and date parsing."""

    name = "offline"

    def __init__(self, settings: Settings) -> None:
        self._max_audio_seconds = settings.max_audio_seconds

    def probe(self) -> None:
        """Load the speech and date models, so a health check fails when they cannot be loaded.

        Raises:
            TransientError: the speech model files are missing or could not be loaded.
        """
        _speech_model.load()
        load_date_model()

    def extract(self, audio: AudioInput) -> ExtractionResult:
        """Transcribe ``audio`` and turn the transcript into tasks with due dates.

        Raises:
            PermanentProcessingError: reason ``empty_file``, ``unsupported_audio``,
                ``corrupt_audio`` or ``too_long`` (decoded audio longer than
                ``MAX_AUDIO_SECONDS``).
            TransientError: the model could not be loaded or ``audio.deadline`` passed.
        """
        started = time.monotonic()
        samples = decode_audio(audio.data, max_seconds=self._max_audio_seconds)
        if time.monotonic() > audio.deadline:
            raise TransientError("the deadline passed while decoding the audio; raise FUNCTION_TIMEOUT_SECONDS")

        transcript = _speech_model.transcribe(samples, deadline=audio.deadline)
        drafts = split_tasks(transcript, find_dates(transcript, audio.local_now)) if transcript else []
        tasks = [_to_task(draft, audio) for draft in drafts]

        logger.info(
            "extracted %d tasks from %.1f s of audio in %.2f s",
            len(tasks),
            samples.size / SAMPLE_RATE_HZ,
            time.monotonic() - started,
        )
        return ExtractionResult(transcript=transcript, tasks=tasks, model=MODEL_LABEL)


def _to_task(draft: TaskDraft, audio: AudioInput) -> ExtractedTask:
    mention = draft.due
    due_at, due_date, all_day = resolve_due(mention.due if mention else None, audio.zone)
    return ExtractedTask(
        title=draft.title,
        due_at=due_at,
        due_date=due_date,
        all_day=all_day,
        recurrence=mention.recurrence if mention else None,
    )
