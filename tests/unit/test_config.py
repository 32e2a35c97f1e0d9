import pytest

from functions.config import Settings
from functions.errors import ConfigError

BASE = {"GOOGLE_CLOUD_PROJECT": "demo-braindump", "UPLOAD_BUCKET": "voice-bucket"}


def test_defaults_without_key_use_offline():
    settings = Settings.from_env(BASE)

    assert settings.extractor == "offline"
    assert settings.max_upload_bytes == 10 * 1024 * 1024
    assert settings.max_audio_seconds == 600
    assert settings.upload_url_ttl_seconds == 900


def test_key_selects_gemini_and_stays_out_of_repr():
    settings = Settings.from_env({**BASE, "GEMINI_API_KEY": "secret-value"})

    assert settings.extractor == "gemini"
    assert "secret-value" not in repr(settings)


def test_settings_are_frozen():
    settings = Settings.from_env(BASE)

    with pytest.raises(AttributeError):
        settings.bucket = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"UPLOAD_BUCKET": "b"}, "GOOGLE_CLOUD_PROJECT"),
        ({"GOOGLE_CLOUD_PROJECT": "p"}, "UPLOAD_BUCKET"),
        ({**BASE, "EXTRACTOR": "gemini"}, "GEMINI_API_KEY"),
        ({**BASE, "EXTRACTOR": "whisper"}, "EXTRACTOR"),
        ({**BASE, "MAX_UPLOAD_BYTES": "ten"}, "MAX_UPLOAD_BYTES"),
        ({**BASE, "MAX_AUDIO_SECONDS": "0"}, "MAX_AUDIO_SECONDS"),
        ({**BASE, "CHECK_REVOKED": "maybe"}, "CHECK_REVOKED"),
        ({**BASE, "GEMINI_AUDIO_TYPE_OVERRIDES": "audio/mp4"}, "GEMINI_AUDIO_TYPE_OVERRIDES"),
    ],
    ids=["no-project", "no-bucket", "gemini-without-key", "unknown-extractor", "not-integer", "zero", "not-bool", "bad-map"],
)
def test_invalid_setting_names_variable(environ, variable):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)

    assert variable in caught.value.message


def test_type_overrides_parsed():
    settings = Settings.from_env({**BASE, "GEMINI_AUDIO_TYPE_OVERRIDES": "audio/mp4=audio/aac, audio/webm=audio/ogg"})

    assert dict(settings.gemini_type_overrides) == {"audio/mp4": "audio/aac", "audio/webm": "audio/ogg"}
