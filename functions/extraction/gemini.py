"""Task extraction with the Gemini Developer API through google-genai.

The SDK's own retries stay off (google-genai 3.6 retries only when
``HttpOptions.retry_options`` is set, and it ignores ``Retry-After``), so
:class:`~functions.extraction.retry.Retrier` owns every retry and the deadline.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import ValidationError

from functions.config import Settings
from functions.errors import ConfigError, PermanentProcessingError, TransientError
from functions.extraction.base import AudioInput
from functions.extraction.gemini_schema import GeminiExtraction, GeminiTask, build_prompt, parse_due
from functions.extraction.gemini_types import gemini_mime_type
from functions.extraction.retry import (
    TRANSIENT_STATUS_CODES,
    Retrier,
    RetryPolicy,
    Transient,
    parse_retry_after,
    parse_retry_delay,
)
from functions.models import ExtractedTask, ExtractionResult, FailureReason, resolve_due

logger = logging.getLogger(__name__)


def _transport_errors() -> tuple[type[Exception], ...]:
    # google-genai 3.6 sends through httpx2 when it is installed and through
    # httpx otherwise, and raises their exceptions unwrapped, so both count.
    found: list[type[Exception]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        found += [module.TimeoutException, module.NetworkError, module.RemoteProtocolError]
    return tuple(found)


TRANSPORT_ERRORS: tuple[type[Exception], ...] = _transport_errors()
_PROBE_ERRORS: tuple[type[Exception], ...] = (genai_errors.APIError, *TRANSPORT_ERRORS)

_BLOCKED_FINISH_REASONS = frozenset({"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"})

# A wrong API key or model name fails every note alike. These statuses raise
# TransientError, so notes wait for redelivery while an operator fixes the
# setting, instead of ending failed.
_CONFIGURATION_STATUS_CODES = frozenset({401, 403, 404})


def classify_gemini_error(err: Exception) -> Transient | None:
    """Mark transient HTTP statuses, timeouts and connection errors as retryable.

    Returns:
        A verdict with the server's requested delay (the larger of ``Retry-After``
        and RetryInfo ``retryDelay`` when both are present), or None.
    """
    if isinstance(err, genai_errors.APIError):
        if err.code not in TRANSIENT_STATUS_CODES:
            return None
        headers = getattr(err.response, "headers", None) or {}
        hints = [
            hint
            for hint in (parse_retry_after(headers.get("retry-after")), parse_retry_delay(err.details))
            if hint is not None
        ]
        return Transient(hint_seconds=max(hints) if hints else None)

    if isinstance(err, TRANSPORT_ERRORS):
        return Transient()
    return None


def _is_invalid_key(err: genai_errors.APIError) -> bool:
    # The Gemini API returns 400 INVALID_ARGUMENT and an
    # ErrorInfo detail whose reason is API_KEY_INVALID.
    body = err.details if isinstance(err.details, dict) else {}
    inner = body.get("error", body)
    details = inner.get("details") if isinstance(inner, dict) else None
    return any(isinstance(detail, dict) and detail.get("reason") == "API_KEY_INVALID" for detail in details or [])


class _Verdict(Enum):
    OK = "ok"
    BLOCKED = "blocked"
    TRUNCATED = "truncated"
    INVALID = "invalid"


@dataclass
class _Reading:
    verdict: _Verdict
    detail: str
    extraction: GeminiExtraction | None = None


def read_response(response: types.GenerateContentResponse) -> _Reading:
    """Classify one response as usable, blocked, truncated or invalid."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        return _Reading(_Verdict.BLOCKED, f"the prompt was blocked ({feedback.block_reason.value})")

    if not response.candidates:
        return _Reading(_Verdict.INVALID, "the response has no candidate")

    finish = response.candidates[0].finish_reason
    finish_name = finish.value if finish is not None else "none"
    if finish_name in _BLOCKED_FINISH_REASONS:
        return _Reading(_Verdict.BLOCKED, f"the response was stopped with finish reason {finish_name}")
    if finish_name == "MAX_TOKENS":
        return _Reading(_Verdict.TRUNCATED, "the response reached the output token limit")

    text = response.text
    if not text:
        return _Reading(_Verdict.INVALID, f"the response has no text (finish reason {finish_name})")
    try:
        extraction = GeminiExtraction.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        location = ".".join(str(item) for item in first["loc"]) or "the top level"
        detail = (
            f"the response fails the schema ({err.error_count()} validation errors, "
            f"first at {location}: {first['msg']})"
        )
        return _Reading(_Verdict.INVALID, detail)
    return _Reading(_Verdict.OK, "", extraction)


def to_task(task: GeminiTask, audio: AudioInput) -> ExtractedTask:
    """Convert one task, resolving its local due value in the note's zone."""
    local = parse_due(task.due) if task.due is not None else None
    if task.all_day and isinstance(local, dt.datetime):
        # The model flagged the task as all-day but also gave a time; the date wins.
        local = local.date()
    due_at, due_date, all_day = resolve_due(local, audio.zone)

    return ExtractedTask(
        title=task.title,
        notes=task.notes,
        due_at=due_at,
        due_date=due_date,
        all_day=all_day,
        recurrence=task.recurrence,
        priority=task.priority.value if task.priority is not None else None,
    )


@dataclass
class _Tally:
    """Attempts sent and tokens billed over one extraction."""

    attempts: int = 0
    prompt_tokens: int | None = None
    candidate_tokens: int | None = None

    def add_usage(self, usage: types.GenerateContentResponseUsageMetadata | None) -> None:
        if usage is None:
            return
        if usage.prompt_token_count is not None:
            self.prompt_tokens = (self.prompt_tokens or 0) + usage.prompt_token_count
        if usage.candidates_token_count is not None:
            self.candidate_tokens = (self.candidate_tokens or 0) + usage.candidates_token_count


class GeminiExtractor:
    """Extractor that sends the audio inline to a Gemini model and requests JSON.

    ``ExtractionResult.prompt_tokens`` and ``candidate_tokens`` are summed over
    every attempt that returned a response, because each of those is billed.
    ``attempts`` counts every request sent, failed ones included.
    """

    name = "gemini"

    def __init__(
        self,
        settings: Settings,
        *,
        client: genai.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._client_lock = threading.Lock()
        if policy is None:
            policy = RetryPolicy(attempt_timeout_seconds=float(settings.gemini_attempt_timeout_seconds))
        self._retrier = Retrier(policy, classify_gemini_error, clock=clock, sleep=sleep, rng=rng)

    def extract(self, audio: AudioInput) -> ExtractionResult:
        """Transcribe one note and extract its tasks.

        Raises:
            PermanentProcessingError: reason ``unsupported_audio``,
                ``extraction_rejected`` (400 and other client errors),
                ``extraction_blocked``, ``extraction_invalid`` (schema still
                failing after one repair call) or ``extraction_truncated``
                (output limit reached again with a doubled budget).
            TransientError: retries or the deadline ran out on transient
                failures, or the API key or model was rejected.
        """
        mime_type = gemini_mime_type(audio.content_type, self._settings.gemini_type_overrides)
        tally = _Tally()
        max_output_tokens = self._settings.gemini_max_output_tokens
        repair = False
        enlarged = False

        # At most three rounds: the first call, one repair call, one call with a larger budget.
        while True:
            reading = self._generate(audio, mime_type, max_output_tokens, repair, tally)

            if reading.verdict is _Verdict.OK and reading.extraction is not None:
                return self._result(reading.extraction, audio, tally)

            if reading.verdict is _Verdict.BLOCKED:
                raise self._permanent(reading.detail, FailureReason.EXTRACTION_BLOCKED, tally)

            if reading.verdict is _Verdict.TRUNCATED and not enlarged:
                enlarged = True
                max_output_tokens *= 2
                logger.warning("gemini: %s; retrying with %d output tokens", reading.detail, max_output_tokens)
                continue
            if reading.verdict is _Verdict.TRUNCATED:
                raise self._permanent(reading.detail, FailureReason.EXTRACTION_TRUNCATED, tally)

            if not repair:
                repair = True
                logger.warning("gemini: %s; sending one repair request", reading.detail)
                continue
            raise self._permanent(reading.detail, FailureReason.EXTRACTION_INVALID, tally)

    def probe(self) -> None:
        """Fetch the model's metadata, which costs no tokens.

        Raises:
            TransientError: the model could not be fetched within
                ``health_probe_timeout_seconds``.
        """
        model = self._settings.gemini_model
        http_options = types.HttpOptions(timeout=self._settings.health_probe_timeout_seconds * 1000)
        try:
            self._get_client().models.get(model=model, config=types.GetModelConfig(http_options=http_options))
        except _PROBE_ERRORS as err:
            raise TransientError(f"Gemini model {model!r} is not reachable: {type(err).__name__}: {err}") from err

    def _get_client(self) -> genai.Client:
        with self._client_lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> genai.Client:
        settings = self._settings
        if not settings.gemini_api_key:
            raise ConfigError("GEMINI_API_KEY is not set; set it, or set EXTRACTOR=offline")

        # vertexai=False keeps GOOGLE_GENAI_USE_VERTEXAI in the environment from
        # switching the client to Vertex AI. retry_options stays unset, so the
        # SDK makes exactly one request per call.
        http_options = types.HttpOptions(
            base_url=settings.gemini_base_url,
            timeout=settings.gemini_attempt_timeout_seconds * 1000,
        )
        return genai.Client(api_key=settings.gemini_api_key, vertexai=False, http_options=http_options)

    def _generate(
        self, audio: AudioInput, mime_type: str, max_output_tokens: int, repair: bool, tally: _Tally
    ) -> _Reading:
        client = self._get_client()
        model = self._settings.gemini_model
        prompt = build_prompt(audio.local_now, audio.zone.key, repair=repair)
        contents = [
            types.Content(
                role="user",
                parts=[types.Part.from_bytes(data=audio.data, mime_type=mime_type), types.Part.from_text(text=prompt)],
            )
        ]

        def attempt(timeout_seconds: float) -> types.GenerateContentResponse:
            tally.attempts += 1
            config = types.GenerateContentConfig(
                response_mime_type="application/json",
                response_schema=GeminiExtraction,
                max_output_tokens=max_output_tokens,
                # One SDK call must be one HTTP request, so that attempts and
                # timeouts are ours: no function-calling loop, no continuation hops.
                automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
                automatic_continuation=False,
                # The SDK takes the timeout in milliseconds, per request.
                http_options=types.HttpOptions(timeout=max(1, int(timeout_seconds * 1000))),
            )
            response = client.models.generate_content(model=model, contents=contents, config=config)
            tally.add_usage(response.usage_metadata)
            return response

        try:
            response = self._retrier.call(
                attempt, deadline=audio.deadline, description=f"Gemini generateContent ({model})"
            )
        except genai_errors.APIError as err:
            raise self._api_error(err, tally) from err
        return read_response(response)

    def _api_error(self, err: genai_errors.APIError, tally: _Tally) -> Exception:
        summary = f"{err.code} {err.status}: {err.message}"
        if err.code in _CONFIGURATION_STATUS_CODES or _is_invalid_key(err):
            logger.error("gemini: request rejected with %s; check GEMINI_API_KEY and GEMINI_MODEL", summary)
            return TransientError(
                f"Gemini rejected the request with {summary}; check GEMINI_API_KEY and "
                f"GEMINI_MODEL={self._settings.gemini_model!r}"
            )
        return self._permanent(f"Gemini rejected the request with {summary}", FailureReason.EXTRACTION_REJECTED, tally)

    def _permanent(self, detail: str, reason: FailureReason, tally: _Tally) -> PermanentProcessingError:
        logger.warning("gemini: %s after %d attempts; the note fails with %s", detail, tally.attempts, reason.value)
        return PermanentProcessingError(f"{detail} (after {tally.attempts} attempts)", code=reason.value)

    def _result(self, extraction: GeminiExtraction, audio: AudioInput, tally: _Tally) -> ExtractionResult:
        tasks = [to_task(task, audio) for task in extraction.tasks]
        logger.info(
            "gemini: extracted %d tasks in %d attempts (prompt tokens %s, output tokens %s)",
            len(tasks),
            tally.attempts,
            tally.prompt_tokens,
            tally.candidate_tokens,
        )
        return ExtractionResult(
            transcript=extraction.transcript,
            tasks=tasks,
            model=self._settings.gemini_model,
            prompt_tokens=tally.prompt_tokens,
            candidate_tokens=tally.candidate_tokens,
            attempts=tally.attempts,
        )
