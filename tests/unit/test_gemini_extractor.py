"""Tests of GeminiExtractor: the real google-genai client against the fake Gemini server.

Time is injected: the extractor and the fake share a FakeClock that advances
only when the extractor sleeps, so backoff and deadlines are checked exactly.
The two stall tests also wait on a real 1 s attempt timeout.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from functions.config import Settings
from functions.errors import ConfigError, PermanentProcessingError, TransientError
from functions.extraction.base import AudioInput
from functions.extraction.gemini import GeminiExtractor
from functions.extraction.retry import RetryPolicy
from functions.models import ExtractedTask, FailureReason
from tests.fakes.gemini import FakeGemini, Script, Step

REPO = Path(__file__).resolve().parents[2]
START = 1000.0
BUDGET_SECONDS = 120.0
API_KEY = "test-key-0123456789"
AUDIO = b"\x00\x00\x00\x18ftypM4A fake voice note bytes"
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
# 18:30 on Tuesday 10 March 2026 in Los Angeles, already Wednesday in UTC.
RECORDED_AT = dt.datetime(2026, 3, 11, 1, 30, tzinfo=dt.UTC)

DENTIST = {
    "transcript": "Hey, um, remind me to call the dentist tomorrow at 3 pm.",
    "tasks": [
        {
            "title": "Call the dentist",
            "notes": None,
            "due": "2026-03-11T15:00",
            "all_day": False,
            "priority": None,
            "recurrence": None,
        },
    ],
}
DENTIST_TASK = ExtractedTask(
    title="Call the dentist",
    due_at=dt.datetime(2026, 3, 11, 22, 0, tzinfo=dt.UTC),
    due_date=dt.date(2026, 3, 11),
    all_day=False,
)
RATE_LIMITED = Step.error(429, retry_after="7", retry_delay="7s")


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeGemini]:
    with FakeGemini(api_key=API_KEY, clock=clock) as server:
        yield server


def make_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "project_id": "demo-braindumpster",
        "bucket": "demo-uploads",
        "extractor": "gemini",
        "gemini_api_key": API_KEY,
        "gemini_base_url": base_url,
    }
    values.update(overrides)
    return Settings(**values)


def make_extractor(fake: FakeGemini, clock: FakeClock, **overrides: Any) -> GeminiExtractor:
    policy = overrides.pop("policy", None)
    return GeminiExtractor(
        make_settings(fake.base_url, **overrides), clock=clock, sleep=clock.sleep, rng=lambda: 0.5, policy=policy
    )


def make_audio(clock: FakeClock, **overrides: Any) -> AudioInput:
    values: dict[str, Any] = {
        "data": AUDIO,
        "content_type": "audio/mp4",
        "recorded_at": RECORDED_AT,
        "zone": LOS_ANGELES,
        "deadline": clock.now + BUDGET_SECONDS,
    }
    values.update(overrides)
    return AudioInput(**values)


def play(fake: FakeGemini, *steps: Step, fallback: Step | None = None) -> None:
    fake.load(Script(tuple(steps), fallback or Step.error(418, text="the script ran out"), expect_audio=AUDIO))


@dataclasses.dataclass(frozen=True)
class Case:
    steps: tuple[Step, ...]
    attempts: int
    sleeps: tuple[float, ...] = ()
    reason: FailureReason | None = None
    """Expected PermanentProcessingError code; None when the extraction succeeds."""


CASES: dict[str, Case] = {
    "success": Case((Step.success(DENTIST),), attempts=1),
    "503-503-success": Case((Step.error(503), Step.error(503), Step.success(DENTIST)), attempts=3, sleeps=(0.5, 1.0)),
    "500-success": Case((Step.error(500), Step.success(DENTIST)), attempts=2, sleeps=(0.5,)),
    "502-success": Case((Step.error(502), Step.success(DENTIST)), attempts=2, sleeps=(0.5,)),
    "504-success": Case((Step.error(504), Step.success(DENTIST)), attempts=2, sleeps=(0.5,)),
    "408-success": Case((Step.error(408), Step.success(DENTIST)), attempts=2, sleeps=(0.5,)),
    "429-both-hints": Case((RATE_LIMITED, Step.success(DENTIST)), attempts=2, sleeps=(7.0,)),
    "429-retry-after": Case((Step.error(429, retry_after="4"), Step.success(DENTIST)), attempts=2, sleeps=(4.0,)),
    "429-retry-info": Case((Step.error(429, retry_delay="3s"), Step.success(DENTIST)), attempts=2, sleeps=(3.0,)),
    "429-larger-hint-wins": Case(
        (Step.error(429, retry_after="2", retry_delay="9s"), Step.success(DENTIST)), attempts=2, sleeps=(9.0,)
    ),
    "400": Case((Step.error(400),), attempts=1, reason=FailureReason.EXTRACTION_REJECTED),
    "413": Case((Step.error(413),), attempts=1, reason=FailureReason.EXTRACTION_REJECTED),
    "blocked-prompt": Case((Step("blocked"),), attempts=1, reason=FailureReason.EXTRACTION_BLOCKED),
    "safety-finish": Case((Step("safety"),), attempts=1, reason=FailureReason.EXTRACTION_BLOCKED),
    "invalid-then-success": Case((Step("invalid_json"), Step.success(DENTIST)), attempts=2),
    "invalid-twice": Case(
        (Step("invalid_json"), Step("invalid_json")), attempts=2, reason=FailureReason.EXTRACTION_INVALID
    ),
    "impossible-date-twice": Case(
        (Step.success({"transcript": "x", "tasks": [{"title": "Pay", "due": "2026-02-30"}]}),) * 2,
        attempts=2,
        reason=FailureReason.EXTRACTION_INVALID,
    ),
    "empty-title-twice": Case(
        (Step.success({"transcript": "x", "tasks": [{"title": ""}]}),) * 2,
        attempts=2,
        reason=FailureReason.EXTRACTION_INVALID,
    ),
    "blank-title-twice": Case(
        (Step.success({"transcript": "x", "tasks": [{"title": "   "}]}),) * 2,
        attempts=2,
        reason=FailureReason.EXTRACTION_INVALID,
    ),
    "max-tokens-then-success": Case((Step("max_tokens", result=DENTIST), Step.success(DENTIST)), attempts=2),
    "max-tokens-twice": Case(
        (Step("max_tokens", result=DENTIST),) * 2, attempts=2, reason=FailureReason.EXTRACTION_TRUNCATED
    ),
    "503-then-invalid-twice": Case(
        (Step.error(503), Step("invalid_json"), Step.error(503), Step("invalid_json")),
        attempts=4,
        sleeps=(0.5, 0.5),
        reason=FailureReason.EXTRACTION_INVALID,
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_scripted_case(fake: FakeGemini, clock: FakeClock, case: Case) -> None:
    play(fake, *case.steps)
    extractor = make_extractor(fake, clock)
    audio = make_audio(clock)

    if case.reason is None:
        result = extractor.extract(audio)
        assert result.tasks == [DENTIST_TASK]
        assert result.attempts == case.attempts
    else:
        with pytest.raises(PermanentProcessingError) as caught:
            extractor.extract(audio)
        assert caught.value.code == case.reason.value

    requests = fake.generate_requests
    assert len(requests) == case.attempts
    assert [record.problem for record in requests] == [None] * case.attempts
    assert clock.sleeps == list(case.sleeps)
    assert [later.at - earlier.at for earlier, later in pairwise(requests)] == _spacing(case)
    assert clock.now <= audio.deadline


def _spacing(case: Case) -> list[float]:
    # The fake stamps requests with the shared clock, so the gap before each
    # retry is its injected sleep and a repair request follows with no gap.
    gaps: list[float] = []
    sleeps = list(case.sleeps)
    for step in case.steps[: case.attempts - 1]:
        gaps.append(sleeps.pop(0) if step.kind == "error" else 0.0)
    return gaps


def test_503_forever_bounded(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, fallback=Step.error(503))
    audio = make_audio(clock)

    with pytest.raises(TransientError) as caught:
        make_extractor(fake, clock).extract(audio)

    assert len(fake.generate_requests) == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert "failed 5 times" in caught.value.message
    assert "ServerError" in caught.value.message


def test_429_forever_spends_deadline(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, fallback=RATE_LIMITED)
    audio = make_audio(clock, deadline=clock.now + 20)

    with pytest.raises(TransientError) as caught:
        make_extractor(fake, clock).extract(audio)

    # Attempts at 0 s, 7 s and 14 s; waiting 7 s more would end past the 20 s deadline.
    assert len(fake.generate_requests) == 3
    assert clock.sleeps == [7.0, 7.0]
    assert sum(clock.sleeps) < 20
    assert clock.now <= audio.deadline
    assert "would pass the deadline" in caught.value.message


def test_429_forever_long_deadline(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, fallback=RATE_LIMITED)
    audio = make_audio(clock, deadline=clock.now + 3600)

    with pytest.raises(TransientError):
        make_extractor(fake, clock).extract(audio)

    assert len(fake.generate_requests) == 5
    assert clock.sleeps == [7.0, 7.0, 7.0, 7.0]


def test_deadline_passed_no_request(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step.success(DENTIST))

    with pytest.raises(TransientError):
        make_extractor(fake, clock).extract(make_audio(clock, deadline=clock.now))

    assert fake.generate_requests == []


def test_stall_then_success(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step("stall", delay_seconds=30), Step.success(DENTIST))
    extractor = make_extractor(fake, clock, gemini_attempt_timeout_seconds=1)

    result = extractor.extract(make_audio(clock))

    assert result.attempts == 2
    assert [record.step for record in fake.generate_requests] == ["stall", "success"]
    assert clock.sleeps == [0.5]


def test_stall_forever_transient(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, fallback=Step("stall", delay_seconds=30))
    policy = RetryPolicy(max_attempts=2, attempt_timeout_seconds=1.0)
    extractor = make_extractor(fake, clock, policy=policy)

    with pytest.raises(TransientError) as caught:
        extractor.extract(make_audio(clock))

    assert len(fake.generate_requests) == 2
    assert "ReadTimeout" in caught.value.message


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("America/Los_Angeles", ("2026-03-10T18:30:00-07:00", "(Tuesday)", "time zone America/Los_Angeles")),
        ("Australia/Sydney", ("2026-03-11T12:30:00+11:00", "(Wednesday)", "time zone Australia/Sydney")),
        ("UTC", ("2026-03-11T01:30:00+00:00", "(Wednesday)", "time zone UTC")),
    ],
    ids=["los-angeles", "sydney", "utc"],
)
def test_prompt_carries_local_now(
    fake: FakeGemini, clock: FakeClock, zone: str, expected: tuple[str, str, str]
) -> None:
    play(fake, Step.success(DENTIST))

    make_extractor(fake, clock).extract(make_audio(clock, zone=ZoneInfo(zone)))

    prompt = fake.generate_requests[0].prompt_text
    for fragment in expected:
        assert fragment in prompt


def test_request_shape(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step.success(DENTIST))

    make_extractor(fake, clock).extract(make_audio(clock))

    record = fake.generate_requests[0]
    config = record.generation_config
    schema = config["responseSchema"]
    assert record.path == "/v1/models/gemini-3.5-flash-lite:generateContent"
    assert record.api_key == API_KEY
    assert record.audio_mime_type == "audio/mp4"
    assert config["responseMimeType"] == "application/json"
    assert config["maxOutputTokens"] == 4096
    assert schema["required"] == ["transcript", "tasks"]
    assert schema["properties"]["tasks"]["items"]["required"] == [
        "title",
        "notes",
        "due",
        "all_day",
        "priority",
        "recurrence",
    ]


def test_max_tokens_doubles_budget(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step("max_tokens", result=DENTIST), Step.success(DENTIST))

    make_extractor(fake, clock, gemini_max_output_tokens=1000).extract(make_audio(clock))

    budgets = [record.generation_config["maxOutputTokens"] for record in fake.generate_requests]
    assert budgets == [1000, 2000]


def test_repair_request_says_why(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step("invalid_json"), Step.success(DENTIST))

    make_extractor(fake, clock).extract(make_audio(clock))

    first, repair = fake.generate_requests
    assert "previous response was not valid JSON" not in first.prompt_text
    assert "previous response was not valid JSON" in repair.prompt_text


def test_due_values_resolved(fake: FakeGemini, clock: FakeClock) -> None:
    answer = {
        "transcript": "four things",
        "tasks": [
            {"title": "Dentist", "due": "2026-03-11T15:00", "all_day": False},
            {"title": "Bins", "due": "2026-03-13", "all_day": True, "recurrence": "FREQ=WEEKLY;BYDAY=FR"},
            {"title": "Bread", "due": None, "priority": "high", "notes": "banana"},
            {"title": "Slides", "due": "2026-03-12T18:00", "all_day": True},
        ],
    }
    play(fake, Step.success(answer))

    result = make_extractor(fake, clock).extract(make_audio(clock))

    assert result.transcript == "four things"
    assert result.tasks == [
        ExtractedTask(
            title="Dentist",
            due_at=dt.datetime(2026, 3, 11, 22, 0, tzinfo=dt.UTC),
            due_date=dt.date(2026, 3, 11),
            all_day=False,
        ),
        ExtractedTask(title="Bins", due_date=dt.date(2026, 3, 13), all_day=True, recurrence="FREQ=WEEKLY;BYDAY=FR"),
        ExtractedTask(title="Bread", notes="banana", priority="high"),
        ExtractedTask(title="Slides", due_date=dt.date(2026, 3, 12), all_day=True),
    ]


def test_empty_task_list_valid(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step.success({"transcript": "Just thinking out loud.", "tasks": []}))

    result = make_extractor(fake, clock).extract(make_audio(clock))

    assert result.tasks == []
    assert result.transcript == "Just thinking out loud."
    assert result.attempts == 1


def test_usage_summed_over_attempts(fake: FakeGemini, clock: FakeClock) -> None:
    play(
        fake,
        Step.error(503),
        Step("invalid_json", usage={"promptTokenCount": 1000, "candidatesTokenCount": 10}),
        Step.success(DENTIST, usage={"promptTokenCount": 1100, "candidatesTokenCount": 60}),
    )

    result = make_extractor(fake, clock).extract(make_audio(clock))

    assert result.model == "gemini-3.5-flash-lite"
    assert result.attempts == 3
    assert result.prompt_tokens == 2100
    assert result.candidate_tokens == 70


@pytest.mark.parametrize(
    ("content_type", "overrides", "sent"),
    [
        ("audio/mp4", {}, "audio/mp4"),
        ("audio/x-m4a", {}, "audio/mp4"),
        ("audio/mpeg", {}, "audio/mp3"),
        ("audio/opus", {}, "audio/ogg"),
        ("audio/x-wav", {}, "audio/wav"),
        ("audio/mp4", {"audio/mp4": "audio/aac"}, "audio/aac"),
        ("audio/webm", {"audio/mp4": "audio/aac"}, "audio/webm"),
    ],
    ids=["mp4", "m4a-alias", "mpeg-to-mp3", "opus-alias", "wav-alias", "override", "override-other-type"],
)
def test_audio_type_sent(
    fake: FakeGemini, clock: FakeClock, content_type: str, overrides: dict[str, str], sent: str
) -> None:
    play(fake, Step.success(DENTIST))

    extractor = make_extractor(fake, clock, gemini_type_overrides=overrides)
    extractor.extract(make_audio(clock, content_type=content_type))

    assert fake.generate_requests[0].audio_mime_type == sent


def test_unsupported_type_no_request(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step.success(DENTIST))

    with pytest.raises(PermanentProcessingError) as caught:
        make_extractor(fake, clock).extract(make_audio(clock, content_type="video/mp4"))

    assert caught.value.code == FailureReason.UNSUPPORTED_AUDIO.value
    assert fake.generate_requests == []


def test_wrong_audio_rejected(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step.success(DENTIST))

    with pytest.raises(PermanentProcessingError) as caught:
        make_extractor(fake, clock).extract(make_audio(clock, data=b"other bytes"))

    assert caught.value.code == FailureReason.EXTRACTION_REJECTED.value
    (record,) = fake.generate_requests
    assert record.status == 400
    assert record.problem == f"inlineData holds 11 bytes that differ from the {len(AUDIO)} expected"


@pytest.mark.parametrize("status", [401, 403, 404], ids=["401", "403", "404"])
def test_configuration_error_transient(fake: FakeGemini, clock: FakeClock, status: int) -> None:
    play(fake, Step.error(status))

    with pytest.raises(TransientError) as caught:
        make_extractor(fake, clock).extract(make_audio(clock))

    assert "check GEMINI_API_KEY" in caught.value.message
    assert len(fake.generate_requests) == 1


def test_invalid_key_transient(fake: FakeGemini, clock: FakeClock) -> None:
    play(fake, Step.success(DENTIST))

    with pytest.raises(TransientError) as caught:
        make_extractor(fake, clock, gemini_api_key="wrong-key").extract(make_audio(clock))

    assert "API key not valid" in caught.value.message
    assert fake.generate_requests[0].problem == "API key not valid"


def test_missing_key_config_error(fake: FakeGemini, clock: FakeClock) -> None:
    # Construction succeeds because the client is created on first use.
    extractor = make_extractor(fake, clock, gemini_api_key=None)

    with pytest.raises(ConfigError, match="GEMINI_API_KEY is not set"):
        extractor.extract(make_audio(clock))

    assert fake.requests == []


def test_api_key_never_logged(fake: FakeGemini, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    play(fake, Step.error(503), RATE_LIMITED, Step("invalid_json"), Step.error(400))

    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentProcessingError):
        make_extractor(fake, clock).extract(make_audio(clock))

    assert len(caplog.records) > 0
    assert API_KEY not in caplog.text


def test_retry_log_lines(fake: FakeGemini, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    play(fake, Step.error(503), RATE_LIMITED, Step.success(DENTIST))

    with caplog.at_level(logging.WARNING, logger="functions.extraction.retry"):
        make_extractor(fake, clock).extract(make_audio(clock))

    messages = [record.getMessage() for record in caplog.records if record.name == "functions.extraction.retry"]
    assert messages == [
        "Gemini generateContent (gemini-3.5-flash-lite): attempt 1 failed with ServerError; retrying in 0.50 s",
        "Gemini generateContent (gemini-3.5-flash-lite): attempt 2 failed with ClientError; retrying in 7.00 s",
    ]


def test_probe_gets_model(fake: FakeGemini, clock: FakeClock) -> None:
    make_extractor(fake, clock).probe()

    (record,) = fake.requests
    assert record.method == "GET"
    assert record.path == "/v1/models/gemini-3.5-flash-lite"
    assert record.api_key == API_KEY


def test_probe_failure_raises(fake: FakeGemini, clock: FakeClock) -> None:
    fake.get_model_status = 503

    with pytest.raises(TransientError, match="'gemini-3.5-flash-lite' is not reachable"):
        make_extractor(fake, clock).probe()

    assert len(fake.requests) == 1


def test_echo_answers_sample(clock: FakeClock) -> None:
    sample = (REPO / "samples" / "01-dentist-tomorrow-3pm.m4a").read_bytes()

    with FakeGemini(api_key=API_KEY, clock=clock) as fake:
        result = make_extractor(fake, clock).extract(make_audio(clock, data=sample, content_type="audio/x-m4a"))

    assert result.transcript == "Hey, um, remind me to call the dentist tomorrow at 3 pm."
    assert result.tasks == [DENTIST_TASK]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"contents": [{"parts": [{"text": "hi"}]}]}, "expected one inlineData part, found 0"),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/mp4", "data": "***"}}, {"text": "hi"}]}]},
            "inlineData.data is not valid base64",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/mp4", "data": "QUJD"}}]}]},
            "the request has no text part with the prompt",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/mp4", "data": "QUJD"}}, {"text": "hi"}]}]},
            "generationConfig is missing",
        ),
        (
            {
                "contents": [{"parts": [{"inlineData": {"mimeType": "audio/mp4", "data": "QUJD"}}, {"text": "hi"}]}],
                "generationConfig": {"responseMimeType": "text/plain"},
            },
            "responseMimeType is 'text/plain', not 'application/json'",
        ),
        (
            {
                "contents": [{"parts": [{"inlineData": {"mimeType": "audio/mp4", "data": "QUJD"}}, {"text": "hi"}]}],
                "generationConfig": {"responseMimeType": "application/json"},
            },
            "responseSchema is missing",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "QUJD"}}, {"text": "hi"}]}]},
            "inlineData.mimeType 'image/png' is not an audio type",
        ),
    ],
    ids=["no-audio", "bad-base64", "no-text", "no-config", "text-mime", "no-schema", "image"],
)
def test_fake_rejects_malformed(fake: FakeGemini, body: dict[str, Any], problem: str) -> None:
    url = f"{fake.base_url}/v1beta/models/gemini-3.5-flash-lite:generateContent"

    response = httpx.post(url, json=body, headers={"x-goog-api-key": API_KEY})

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake.requests[0].problem == problem


def test_fake_runs_as_process(clock: FakeClock) -> None:
    command = [sys.executable, "-m", "tests.fakes.gemini", "--port", "0", "--script", "flaky"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline().strip()
        assert first_line.startswith("FAKE_GEMINI_URL=http://127.0.0.1:")
        base_url = first_line.partition("=")[2]

        extractor = GeminiExtractor(make_settings(base_url), clock=clock, sleep=clock.sleep, rng=lambda: 0.5)
        result = extractor.extract(make_audio(clock))
        assert result.attempts == 3
        assert result.tasks == []

        script = {
            "steps": [{"kind": "success", "result": DENTIST}],
            "expect_audio_base64": base64.b64encode(AUDIO).decode(),
        }
        control = httpx.post(f"{base_url}/_control/script", content=json.dumps(script))
        assert control.status_code == 200
        assert extractor.extract(make_audio(clock)).tasks == [DENTIST_TASK]

        recorded = httpx.get(f"{base_url}/_control/requests").json()["requests"]
        assert [record["step"] for record in recorded] == ["success"]
        assert recorded[0]["body"]["contents"][0]["parts"][0]["inlineData"]["data"]["bytes"] == len(AUDIO)
    finally:
        process.terminate()
        process.wait(timeout=10)
