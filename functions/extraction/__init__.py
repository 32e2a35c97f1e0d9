"""Extractors, chosen by configuration and imported only when first used."""

from __future__ import annotations

import functools

from functions.config import Settings, get_settings
from functions.extraction.base import AudioInput, Extractor

__all__ = ["AudioInput", "Extractor", "build_extractor", "get_extractor"]


def build_extractor(settings: Settings) -> Extractor:
    """Create the extractor that ``settings.extractor`` names.

    The import happens here, so an entry point that never extracts never loads
    google-genai or the offline speech engine.
    """
    if settings.extractor == "gemini":
        from functions.extraction.gemini import GeminiExtractor

        return GeminiExtractor(settings)

    from functions.extraction.offline import OfflineExtractor

    return OfflineExtractor(settings)


@functools.cache
def get_extractor() -> Extractor:
    """Return this instance's extractor, created on first use."""
    return build_extractor(get_settings())
