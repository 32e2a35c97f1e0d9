"""Tests of the retry policy, with an injected clock, sleep and random source."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from functions.errors import ConfigError, TransientError
from functions.extraction.retry import (
    Retrier,
    RetryPolicy,
    Transient,
    backoff_delay,
    parse_retry_after,
    parse_retry_delay,
)

START = 1000.0


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


class Flaky:
    """An operation that raises the given errors in turn, then returns ``"done"``."""

    def __init__(self, *errors: Exception, forever: Exception | None = None) -> None:
        self.errors = list(errors)
        self.forever = forever
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> str:
        self.timeouts.append(timeout)
        if self.errors:
            raise self.errors.pop(0)
        if self.forever is not None:
            raise self.forever
        return "done"


class Hinted(Exception):
    """A transient error that carries a server-requested delay."""

    def __init__(self, hint: float | None) -> None:
        super().__init__(f"hint {hint}")
        self.hint = hint


def classify(err: Exception) -> Transient | None:
    if isinstance(err, Hinted):
        return Transient(hint_seconds=err.hint)
    if isinstance(err, TimeoutError):
        return Transient()
    return None


def make_retrier(
    clock: FakeClock, policy: RetryPolicy | None = None, rng: Callable[[], float] = lambda: 0.5
) -> Retrier:
    return Retrier(policy or RetryPolicy(), classify, clock=clock, sleep=clock.sleep, rng=rng)


def test_first_success_no_sleep() -> None:
    clock = FakeClock()
    operation = Flaky()

    value = make_retrier(clock).call(operation, deadline=START + 60, description="op")

    assert value == "done"
    assert len(operation.timeouts) == 1
    assert clock.sleeps == []


def test_transient_twice_then_success() -> None:
    clock = FakeClock()
    operation = Flaky(TimeoutError("slow"), TimeoutError("slow"))

    value = make_retrier(clock).call(operation, deadline=START + 60, description="op")

    assert value == "done"
    assert len(operation.timeouts) == 3
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("retry_number", "draw", "expected"),
    [
        (1, 0.5, 0.5),
        (2, 0.5, 1.0),
        (3, 1.0, 4.0),
        (5, 1.0, 16.0),
        (6, 1.0, 30.0),
        (10, 0.25, 7.5),
        (3, 0.0, 0.0),
    ],
    ids=["first", "second", "third-max-draw", "fifth", "capped", "capped-quarter", "zero-draw"],
)
def test_backoff_full_jitter(retry_number: int, draw: float, expected: float) -> None:
    policy = RetryPolicy(initial_delay_seconds=1.0, max_delay_seconds=30.0)

    assert backoff_delay(policy, retry_number, lambda: draw) == expected


def test_server_hint_replaces_backoff() -> None:
    clock = FakeClock()
    operation = Flaky(Hinted(7.0), Hinted(3.0))

    make_retrier(clock).call(operation, deadline=START + 60, description="op")

    assert clock.sleeps == [7.0, 3.0]


def test_hint_none_uses_backoff() -> None:
    clock = FakeClock()
    operation = Flaky(Hinted(None))

    make_retrier(clock).call(operation, deadline=START + 60, description="op")

    assert clock.sleeps == [0.5]


def test_attempts_bounded() -> None:
    clock = FakeClock()
    operation = Flaky(forever=TimeoutError("slow"))
    policy = RetryPolicy(max_attempts=4)

    with pytest.raises(TransientError) as caught:
        make_retrier(clock, policy).call(operation, deadline=START + 600, description="op")

    assert len(operation.timeouts) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert "op failed 4 times" in caught.value.message
    assert "TimeoutError" in caught.value.message


def test_sleep_never_passes_deadline() -> None:
    clock = FakeClock()
    operation = Flaky(forever=Hinted(7.0))
    deadline = START + 20

    with pytest.raises(TransientError) as caught:
        make_retrier(clock).call(operation, deadline=deadline, description="op")

    # Attempts at 0 s, 7 s and 14 s; a third sleep would end at 21 s, past the deadline.
    assert len(operation.timeouts) == 3
    assert clock.sleeps == [7.0, 7.0]
    assert clock.now <= deadline
    assert "would pass the deadline" in caught.value.message


def test_no_attempt_without_time() -> None:
    clock = FakeClock()
    operation = Flaky()
    policy = RetryPolicy(min_attempt_seconds=1.0)

    with pytest.raises(TransientError) as caught:
        make_retrier(clock, policy).call(operation, deadline=START + 0.5, description="op")

    assert operation.timeouts == []
    assert "attempt 1 was not started" in caught.value.message


def test_attempt_timeout_capped_by_time_left() -> None:
    clock = FakeClock()
    operation = Flaky(Hinted(25.0))
    policy = RetryPolicy(attempt_timeout_seconds=30.0)

    make_retrier(clock, policy).call(operation, deadline=START + 50, description="op")

    assert operation.timeouts == [30.0, 25.0]


def test_permanent_error_raised_at_once() -> None:
    clock = FakeClock()
    operation = Flaky(ValueError("bad input"))

    with pytest.raises(ValueError, match="bad input"):
        make_retrier(clock).call(operation, deadline=START + 60, description="op")

    assert len(operation.timeouts) == 1
    assert clock.sleeps == []


def test_one_log_line_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    operation = Flaky(TimeoutError("slow"), Hinted(7.0))

    with caplog.at_level(logging.WARNING, logger="functions.extraction.retry"):
        make_retrier(clock).call(operation, deadline=START + 60, description="op")

    messages = [record.getMessage() for record in caplog.records if record.name == "functions.extraction.retry"]
    assert messages == [
        "op: attempt 1 failed with TimeoutError; retrying in 0.50 s",
        "op: attempt 2 failed with Hinted; retrying in 7.00 s",
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-1", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("", None),
        (None, None),
    ],
    ids=["seconds", "fraction-spaces", "zero", "negative", "http-date", "empty", "absent"],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"details": [{"@type": RETRY_INFO, "retryDelay": "7s"}]}}, 7.0),
        ({"error": {"details": [{"@type": RETRY_INFO, "retryDelay": "1.500s"}]}}, 1.5),
        ({"details": [{"@type": RETRY_INFO, "retryDelay": "3s"}]}, 3.0),
        (
            {
                "error": {
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                        {"@type": RETRY_INFO, "retryDelay": "9s"},
                    ]
                }
            },
            9.0,
        ),
        ({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.Help", "retryDelay": "7s"}]}}, None),
        ({"error": {"details": [{"@type": RETRY_INFO, "retryDelay": "7"}]}}, None),
        ({"error": {"message": "quota"}}, None),
        (["not", "a", "mapping"], None),
        (None, None),
    ],
    ids=[
        "whole-seconds",
        "fraction",
        "inner-object",
        "after-quota-failure",
        "other-type",
        "no-unit",
        "no-details",
        "list",
        "none",
    ],
)
def test_parse_retry_delay(body: Any, expected: float | None) -> None:
    assert parse_retry_delay(body) == expected


@pytest.mark.parametrize(
    "options",
    [
        {"max_attempts": 0},
        {"initial_delay_seconds": -1.0},
        {"initial_delay_seconds": 10.0, "max_delay_seconds": 5.0},
        {"min_attempt_seconds": 0.0},
        {"attempt_timeout_seconds": 0.5, "min_attempt_seconds": 1.0},
    ],
    ids=["no-attempts", "negative-delay", "cap-below-initial", "zero-min-attempt", "timeout-below-min"],
)
def test_policy_rejects_invalid(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**options)
