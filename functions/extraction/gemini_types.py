"""The one mapping from our canonical audio types to the MIME type sent to Gemini.

The Gemini audio guide (https://ai.google.dev/gemini-api/docs/audio) lists WAV
(``audio/wav``), MP3 (``audio/mp3``), AIFF, AAC (``audio/aac``), OGG Vorbis
(``audio/ogg``) and FLAC (``audio/flac``). Our uploads also arrive as MP4/M4A,
3GPP and WebM, which that list does not name. Operators can change any entry
with ``GEMINI_AUDIO_TYPE_OVERRIDES`` (for example ``audio/mp4=audio/aac``)
without a code change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from functions.audio import canonical_type
from functions.errors import PermanentProcessingError
from functions.models import FailureReason

logger = logging.getLogger(__name__)

# NOTE: audio/mp4, audio/3gpp and audio/webm are sent under their own names,
# and no test against the live API has shown that Gemini accepts them. A 400
# for these types ends the note as extraction_rejected, and an override fixes it.
GEMINI_AUDIO_TYPES: Mapping[str, str] = {
    "audio/wav": "audio/wav",
    "audio/mpeg": "audio/mp3",
    "audio/aac": "audio/aac",
    "audio/ogg": "audio/ogg",
    "audio/flac": "audio/flac",
    "audio/mp4": "audio/mp4",
    "audio/3gpp": "audio/3gpp",
    "audio/webm": "audio/webm",
}


def gemini_mime_type(content_type: str, overrides: Mapping[str, str]) -> str:
    """Return the MIME type to send to Gemini for a stored content type.

    Args:
        content_type: The note's content type. Aliases such as ``audio/x-m4a``
            are normalised first.
        overrides: ``settings.gemini_type_overrides``, keyed by canonical type,
            which wins over :data:`GEMINI_AUDIO_TYPES`.

    Raises:
        PermanentProcessingError: reason ``unsupported_audio`` when the type is
            not one of our accepted audio types.
    """
    audio_type = canonical_type(content_type)
    if audio_type is None:
        raise PermanentProcessingError(
            f"content type {content_type!r} is not a supported audio type; "
            "upload m4a, 3gp, ogg, opus, webm, mp3, aac, wav or flac",
            code=FailureReason.UNSUPPORTED_AUDIO.value,
        )

    override = overrides.get(audio_type.mime)
    if override is not None:
        return override
    return GEMINI_AUDIO_TYPES[audio_type.mime]
