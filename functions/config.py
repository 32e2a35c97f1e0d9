"""Settings, read once per instance from the environment.

Precedence: an explicit ``environ`` mapping passed to :meth:`Settings.from_env`
(tests), otherwise ``os.environ``. Nothing else in the package reads the
environment for configuration, with one exception: the Google client libraries
read the ``*_EMULATOR_HOST`` variables themselves.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from functions.errors import ConfigError

ExtractorName = Literal["gemini", "offline"]

DEFAULT_GEMINI_MODEL = "gemini-3.5-flash-lite"
MIB = 1024 * 1024


def _text(environ: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = environ.get(name, "").strip()
    return value or default


def _required(environ: Mapping[str, str], name: str, what: str) -> str:
    value = _text(environ, name)
    if value is None:
        raise ConfigError(f"{name} is not set; set it to {what}")
    return value


def _integer(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = _text(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ConfigError(f"{name}={raw!r} is not an integer; set it to a whole number") from err
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}")
    return value


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _text(environ, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; set it to true or false")


def _mapping(environ: Mapping[str, str], name: str) -> dict[str, str]:
    """Parse ``a=b,c=d`` into a dict of lower-cased keys and values."""
    raw = _text(environ, name)
    if raw is None:
        return {}
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"{name} item {item!r} is invalid; write comma-separated pairs such as "
                "audio/mp4=audio/aac"
            )
        pairs[key.strip().lower()] = value.strip().lower()
    return pairs


@dataclass(frozen=True)
class Settings:
    """Every setting of the backend, with units in the names."""

    project_id: str
    bucket: str
    extractor: ExtractorName
    gemini_api_key: str | None = field(default=None, repr=False)
    gemini_model: str = DEFAULT_GEMINI_MODEL
    gemini_base_url: str | None = None
    gemini_attempt_timeout_seconds: int = 120
    gemini_max_output_tokens: int = 4096
    gemini_type_overrides: Mapping[str, str] = field(default_factory=dict)
    max_upload_bytes: int = 10 * MIB
    max_audio_seconds: int = 600
    upload_url_ttl_seconds: int = 900
    function_timeout_seconds: int = 540
    max_event_age_seconds: int = 3600
    uploads_per_hour: int = 30
    uploads_per_day: int = 200
    signing_key_file: str | None = None
    signing_service_account: str | None = None
    check_revoked: bool = False
    delete_audio_after_done: bool = True
    delete_audio_after_failed: bool = False
    health_gemini_cache_seconds: int = 60
    health_probe_timeout_seconds: int = 3
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``).

        Raises:
            ConfigError: a required variable is missing or a value is invalid.
                The message names the variable.
        """
        env = os.environ if environ is None else environ

        project_id = _text(env, "GOOGLE_CLOUD_PROJECT") or _text(env, "GCLOUD_PROJECT")
        if project_id is None:
            raise ConfigError("GOOGLE_CLOUD_PROJECT is not set; set it to the Google Cloud project id")

        api_key = _text(env, "GEMINI_API_KEY")
        extractor = _text(env, "EXTRACTOR", "gemini" if api_key else "offline")
        if extractor not in ("gemini", "offline"):
            raise ConfigError(f"EXTRACTOR={extractor!r} is invalid; set it to gemini or offline")
        if extractor == "gemini" and api_key is None:
            raise ConfigError("GEMINI_API_KEY is not set; set it, or set EXTRACTOR=offline")

        return cls(
            project_id=project_id,
            bucket=_required(env, "UPLOAD_BUCKET", "the Cloud Storage bucket for voice notes"),
            extractor=extractor,  # type: ignore[arg-type]
            gemini_api_key=api_key,
            gemini_model=_text(env, "GEMINI_MODEL", DEFAULT_GEMINI_MODEL) or DEFAULT_GEMINI_MODEL,
            gemini_base_url=_text(env, "GEMINI_BASE_URL"),
            gemini_attempt_timeout_seconds=_integer(env, "GEMINI_ATTEMPT_TIMEOUT_SECONDS", 120),
            gemini_max_output_tokens=_integer(env, "GEMINI_MAX_OUTPUT_TOKENS", 4096),
            gemini_type_overrides=_mapping(env, "GEMINI_AUDIO_TYPE_OVERRIDES"),
            max_upload_bytes=_integer(env, "MAX_UPLOAD_BYTES", 10 * MIB),
            max_audio_seconds=_integer(env, "MAX_AUDIO_SECONDS", 600),
            upload_url_ttl_seconds=_integer(env, "UPLOAD_URL_TTL_SECONDS", 900, minimum=60),
            function_timeout_seconds=_integer(env, "FUNCTION_TIMEOUT_SECONDS", 540, minimum=10),
            max_event_age_seconds=_integer(env, "MAX_EVENT_AGE_SECONDS", 3600),
            uploads_per_hour=_integer(env, "UPLOADS_PER_HOUR", 30),
            uploads_per_day=_integer(env, "UPLOADS_PER_DAY", 200),
            signing_key_file=_text(env, "SIGNING_KEY_FILE"),
            signing_service_account=_text(env, "SIGNING_SERVICE_ACCOUNT"),
            check_revoked=_boolean(env, "CHECK_REVOKED", False),
            delete_audio_after_done=_boolean(env, "DELETE_AUDIO_AFTER_DONE", True),
            delete_audio_after_failed=_boolean(env, "DELETE_AUDIO_AFTER_FAILED", False),
            health_gemini_cache_seconds=_integer(env, "HEALTH_GEMINI_CACHE_SECONDS", 60, minimum=0),
            health_probe_timeout_seconds=_integer(env, "HEALTH_PROBE_TIMEOUT_SECONDS", 3),
            log_level=(_text(env, "LOG_LEVEL", "INFO") or "INFO").upper(),
        )


@functools.cache
def get_settings() -> Settings:
    """Return the settings of this instance, read from the environment on first use."""
    return Settings.from_env()
