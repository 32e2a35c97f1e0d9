from pathlib import Path

import pytest

from functions import audio
from functions.errors import PermanentProcessingError

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
LIMIT = 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("audio/x-m4a", "audio/mp4"),
        ("audio/m4a", "audio/mp4"),
        ("AUDIO/MP4", "audio/mp4"),
        ("audio/opus", "audio/ogg"),
        ("audio/ogg; codecs=opus", "audio/ogg"),
        ("audio/x-wav", "audio/wav"),
        ("audio/mpeg", "audio/mpeg"),
        ("audio/3gpp", "audio/3gpp"),
    ],
)
def test_alias_normalised(alias, canonical):
    audio_type = audio.canonical_type(alias)

    assert audio_type is not None
    assert audio_type.mime == canonical


@pytest.mark.parametrize("content_type", ["video/mp4", "image/png", "text/plain", "", "audio/"])
def test_non_audio_type_rejected(content_type):
    assert audio.canonical_type(content_type) is None


@pytest.mark.parametrize(
    ("file", "container"),
    [
        ("01-dentist-tomorrow-3pm.m4a", "mp4"),
        ("02-dry-cleaning-friday.ogg", "ogg"),
        ("03-report-next-monday.mp3", "mp3"),
        ("04-passport-council-tax.wav", "wav"),
        ("05-plants-bins-recurring.flac", "flac"),
        ("07-landlord-tomorrow-sydney.opus", "ogg"),
        ("08-garage-tomorrow-dst.3gp", "mp4"),
        ("12-electricity-free-trial.webm", "webm"),
    ],
)
def test_sniff_container(file, container):
    assert audio.sniff_container((SAMPLES / file).read_bytes()) == container


@pytest.mark.parametrize(
    ("file", "declared", "reason"),
    [
        ("note.m4a", "audio/mp4", "empty_file"),
        ("edge-png-image.m4a", "audio/mp4", "unsupported_audio"),
        ("edge-text-file.mp3", "audio/mpeg", "unsupported_audio"),
        ("02-dry-cleaning-friday.ogg", "audio/mp4", "type_mismatch"),
    ],
    ids=["empty", "png", "text", "ogg-declared-m4a"],
)
def test_bad_upload_reason(file, declared, reason):
    declared_type = audio.canonical_type(declared)
    assert declared_type is not None

    with pytest.raises(PermanentProcessingError) as caught:
        audio.check_audio((SAMPLES / file).read_bytes(), declared_type, max_bytes=LIMIT)

    assert caught.value.code == reason


def test_oversize_rejected():
    declared_type = audio.canonical_type("audio/wav")
    assert declared_type is not None

    with pytest.raises(PermanentProcessingError) as caught:
        audio.check_audio(b"RIFF" + b"\0" * 100, declared_type, max_bytes=50)

    assert caught.value.code == "too_large"


def test_lying_wav_header_is_corrupt():
    with pytest.raises(PermanentProcessingError) as caught:
        audio.check_wav_length((SAMPLES / "edge-lying-header.wav").read_bytes())

    assert caught.value.code == "corrupt_audio"


def test_truthful_wav_header_passes():
    audio.check_wav_length((SAMPLES / "04-passport-council-tax.wav").read_bytes())


def test_duration_from_headers():
    seconds = audio.duration_seconds((SAMPLES / "edge-12-minutes.m4a").read_bytes())

    assert seconds is not None
    assert 719 < seconds < 721


def test_truncated_mp4_is_corrupt():
    with pytest.raises(PermanentProcessingError) as caught:
        audio.duration_seconds((SAMPLES / "edge-truncated.m4a").read_bytes())

    assert caught.value.code == "corrupt_audio"


def crafted_webm() -> bytes:
    # A SimpleBlock element id with a zero size, cut off at the end of the file.
    return (SAMPLES / "12-electricity-free-trial.webm").read_bytes() + bytes([0xA3, 0x80])


def crafted_mp4() -> bytes:
    # An ftyp box that declares a 64-bit size of 2**63 + 5 bytes.
    rest = (SAMPLES / "01-dentist-tomorrow-3pm.m4a").read_bytes()[16:]
    return (1).to_bytes(4, "big") + b"ftyp" + (2**63 + 5).to_bytes(8, "big") + rest


@pytest.mark.parametrize("build", [crafted_webm, crafted_mp4], ids=["webm-cut-block", "mp4-huge-box"])
def test_crafted_headers_are_corrupt(build):
    with pytest.raises(PermanentProcessingError) as caught:
        audio.duration_seconds(build())

    assert caught.value.code == "corrupt_audio"
