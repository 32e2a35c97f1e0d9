"""Retries for calls to a remote service, bounded by attempts and by a deadline.

The policy: exponential backoff with full jitter (a delay drawn uniformly from
zero to the exponential cap), or exactly the delay the server asked for in a
``Retry-After`` header or a ``google.rpc.RetryInfo`` detail. No attempt starts
and no sleep ends past the deadline, and each attempt gets at most the time
that is left. When retries run out the caller gets a :class:`TransientError`,
so the processing event is delivered again later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from functions.errors import ConfigError, TransientError

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS_CODES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP status codes that may succeed when the same request is sent again."""

_RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


@dataclass(frozen=True)
class RetryPolicy:
    """Limits of one retried call. All times are in seconds."""

    max_attempts: int = 5
    initial_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    attempt_timeout_seconds: float = 120.0
    min_attempt_seconds: float = 1.0
    """An attempt with less time than this before the deadline is not started."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts={self.max_attempts} is invalid; use 1 or more")
        if self.initial_delay_seconds < 0 or self.max_delay_seconds < self.initial_delay_seconds:
            raise ConfigError(
                f"delays {self.initial_delay_seconds} and {self.max_delay_seconds} are invalid; "
                "use 0 <= initial_delay_seconds <= max_delay_seconds"
            )
        if self.min_attempt_seconds <= 0 or self.attempt_timeout_seconds < self.min_attempt_seconds:
            raise ConfigError(
                f"attempt_timeout_seconds={self.attempt_timeout_seconds} and "
                f"min_attempt_seconds={self.min_attempt_seconds} are invalid; "
                "use 0 < min_attempt_seconds <= attempt_timeout_seconds"
            )


@dataclass(frozen=True)
class Transient:
    """Classifier verdict: the failure may pass, after ``hint_seconds`` if the server gave one."""

    hint_seconds: float | None = None


Classifier = Callable[[Exception], Transient | None]
"""Returns a :class:`Transient` verdict for a retryable error, None for any other."""


def backoff_delay(policy: RetryPolicy, retry_number: int, rng: Callable[[], float]) -> float:
    """Draw the full-jitter delay before retry ``retry_number`` (1 for the first retry).

    The delay is uniform in ``[0, min(max_delay, initial_delay * 2 ** (retry_number - 1))]``.
    """
    cap = min(policy.max_delay_seconds, policy.initial_delay_seconds * 2.0 ** (retry_number - 1))
    return rng() * cap


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds; None when absent or unreadable.

    NOTE: the HTTP-date form is ignored, because turning it into a delay needs the
    wall clock and the retry loop runs on an injected monotonic clock.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def parse_retry_delay(error_body: Any) -> float | None:
    """Read ``retryDelay`` (for example ``"7s"``) from a ``google.rpc.RetryInfo`` detail.

    Args:
        error_body: The decoded JSON error, either ``{"error": {...}}`` or its inner object.

    Returns:
        The delay in seconds, or None when the body has no readable RetryInfo.
    """
    if not isinstance(error_body, Mapping):
        return None
    inner = error_body.get("error", error_body)
    details = inner.get("details") if isinstance(inner, Mapping) else None
    if not isinstance(details, list):
        return None

    for detail in details:
        if not isinstance(detail, Mapping) or detail.get("@type") != _RETRY_INFO_TYPE:
            continue
        match = _DURATION.match(str(detail.get("retryDelay", "")))
        if match:
            return float(match.group(1))
    return None


class Retrier:
    """Runs an operation under a :class:`RetryPolicy`, with injected clock, sleep and randomness."""

    def __init__(
        self,
        policy: RetryPolicy,
        classify: Classifier,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: Callable[[], float],
    ) -> None:
        self.policy = policy
        self._classify = classify
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

    def call(self, operation: Callable[[float], T], *, deadline: float, description: str) -> T:
        """Run ``operation(timeout_seconds)`` until it succeeds or retrying must stop.

        Args:
            operation: Performs one attempt. It receives the time the attempt may
                take, which is the attempt timeout or the time left, whichever is smaller.
            deadline: Clock value after which no attempt runs and no sleep ends.
            description: Names the call in log lines and error messages.

        Returns:
            The value of the first successful attempt.

        Raises:
            TransientError: a retryable failure persisted through ``max_attempts``
                attempts, or the deadline leaves no time for another attempt.
            Exception: any error the classifier does not mark as transient,
                unchanged and on its first occurrence.
        """
        attempt = 0
        while True:
            attempt += 1
            time_left = deadline - self._clock()
            if time_left < self.policy.min_attempt_seconds:
                raise TransientError(
                    f"{description}: only {time_left:.1f} s left before the deadline, so "
                    f"attempt {attempt} was not started; the event will be delivered again"
                )

            timeout = min(self.policy.attempt_timeout_seconds, time_left)
            try:
                return operation(timeout)
            except Exception as err:
                verdict = self._classify(err)
                if verdict is None:
                    raise
                delay = self._delay_after(attempt, verdict, err, deadline, description)
                logger.warning(
                    "%s: attempt %d failed with %s; retrying in %.2f s",
                    description,
                    attempt,
                    type(err).__name__,
                    delay,
                )

            self._sleep(delay)

    def _delay_after(
        self, attempt: int, verdict: Transient, err: Exception, deadline: float, description: str
    ) -> float:
        # Checks both limits before sleeping, so a hopeless wait is never spent.
        if attempt >= self.policy.max_attempts:
            raise TransientError(
                f"{description} failed {attempt} times, the last time with "
                f"{type(err).__name__}: {err}; the event will be delivered again"
            ) from err

        if verdict.hint_seconds is not None:
            delay = verdict.hint_seconds
        else:
            delay = backoff_delay(self.policy, attempt, self._rng)

        time_left_after_sleep = deadline - self._clock() - delay
        if time_left_after_sleep < self.policy.min_attempt_seconds:
            raise TransientError(
                f"{description} failed with {type(err).__name__} after {attempt} attempts, and "
                f"waiting {delay:.1f} s for the next one would pass the deadline; "
                "the event will be delivered again"
            ) from err
        return delay
