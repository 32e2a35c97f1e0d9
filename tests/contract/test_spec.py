"""openapi.yaml itself: valid OpenAPI 3.1, and its lists of audio types equal to those in functions/audio.py."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate

from functions.audio import ACCEPTED_TYPES, audio_type_for_extension

PUT_PATH = "/{bucket}/voice-notes/{uid}/{objectFile}"
CANONICAL_TYPES = sorted(
    {
        audio_type.mime
        for extension in ("m4a", "ogg", "webm", "mp3", "wav", "flac", "3gp", "aac")
        if (audio_type := audio_type_for_extension(extension)) is not None
    }
)


def test_spec_valid(spec: dict[str, Any]) -> None:
    validate(spec)


def test_spec_accepted_types(spec: dict[str, Any]) -> None:
    description = spec["components"]["schemas"]["UploadRequest"]["properties"]["contentType"]["description"]

    listed = re.findall(r"`(audio/[^`]+)`", description.split("Accepted:", 1)[1].split("Any other", 1)[0])

    assert listed == sorted(ACCEPTED_TYPES)


def test_spec_signed_types(spec: dict[str, Any]) -> None:
    signed = spec["components"]["schemas"]["UploadHeaders"]["properties"]["Content-Type"]["enum"]
    put_body = spec["paths"][PUT_PATH]["put"]["requestBody"]["content"]

    assert len(CANONICAL_TYPES) == 8
    assert sorted(signed) == CANONICAL_TYPES
    assert sorted(put_body) == CANONICAL_TYPES
