"""Date phrases resolved by the offline extractor, against fixed recording times."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("ms_recognizers_date_time")

from functions.extraction.offline_dates import DateMention, find_dates

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TUESDAY_EVENING = dt.datetime(2026, 3, 10, 18, 30, tzinfo=BERLIN)


def only(text: str, now: dt.datetime = TUESDAY_EVENING) -> DateMention:
    mentions = find_dates(text, now)
    assert len(mentions) == 1, mentions
    return mentions[0]


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("call the dentist tomorrow at 3 pm", dt.datetime(2026, 3, 11, 15, 0)),
        ("pick up the dry cleaning on Friday", dt.date(2026, 3, 13)),
        ("pay the council tax on the 15th", dt.date(2026, 3, 15)),
        ("renew my passport by the end of the month", dt.date(2026, 3, 31)),
        ("submit the tax return by April 15th", dt.date(2026, 4, 15)),
        ("order her present by Wednesday next week", dt.date(2026, 3, 18)),
        ("Next Monday morning, send the report", dt.date(2026, 3, 16)),
        ("prepare the slides by Thursday evening", dt.date(2026, 3, 12)),
        ("Tonight at 9, call the hotel", dt.datetime(2026, 3, 10, 21, 0)),
    ],
)
def test_phrase_resolves(text: str, due: dt.date) -> None:
    assert only(text).due == due


def test_weekday_today_means_next_week() -> None:
    assert only("water the plants on Tuesday").due == dt.date(2026, 3, 17)


def test_bare_hour_picks_next_am_or_pm() -> None:
    mention = only("call Sam at 9")

    assert mention.due == dt.datetime(2026, 3, 10, 21, 0)
    assert mention.time_of_day_only is True
    assert mention.clock == dt.time(21, 0)


def test_part_of_day_has_no_date() -> None:
    mention = only("call Mum in the evening")

    assert mention.due == dt.date(2026, 3, 10)
    assert mention.time_of_day_only is True
    assert mention.clock is None


def test_elapsed_hours_cross_dst() -> None:
    # US clocks jump from 02:00 EST to 03:00 EDT on 2026-03-08, so two elapsed
    # hours after 01:30 EST end at 04:30 EDT, not 03:30.
    now = dt.datetime(2026, 3, 8, 1, 30, tzinfo=NEW_YORK)

    mention = only("in two hours move the laundry", now)

    assert isinstance(mention.due, dt.datetime)
    assert mention.due.astimezone(dt.UTC) == dt.datetime(2026, 3, 8, 8, 30, tzinfo=dt.UTC)
    assert mention.due.astimezone(NEW_YORK).hour == 4


def test_weekly_recurrence() -> None:
    wednesday = dt.datetime(2026, 3, 11, 8, 15, tzinfo=ZoneInfo("America/Puerto_Rico"))

    mention = only("Water the plants every Tuesday", wednesday)

    assert mention.recurrence == "every Tuesday"
    assert mention.due == dt.date(2026, 3, 17)


def test_recurrence_list_with_start() -> None:
    text = "go to the gym every Monday, Wednesday and Friday at 7am, starting tomorrow"

    mention = only(text)

    assert mention.recurrence == "every Monday, Wednesday and Friday at 7am, starting tomorrow"
    assert mention.due == dt.datetime(2026, 3, 11, 7, 0)


def test_monthly_ordinal_weekday() -> None:
    mention = only("on the first Monday of every month, back up the laptop")

    assert mention.recurrence == "first Monday of every month"
    assert mention.due == dt.date(2026, 4, 6)


def test_ordinal_weekday_rolls_over() -> None:
    assert only("on the first Monday, back up the laptop").due == dt.date(2026, 4, 6)


@pytest.mark.parametrize(
    "text",
    [
        "this may be it",
        "good night",
        "send the quarterly report",
        "wait a second",
        "for 20 minutes",
    ],
)
def test_false_dates_ignored(text: str) -> None:
    assert find_dates(text, TUESDAY_EVENING) == []


def test_offsets_slice_transcript() -> None:
    text = "Remind me in 45 minutes to transfer the rent"

    mention = only(text)

    assert text[mention.start : mention.end] == "in 45 minutes"
    assert mention.text == "in 45 minutes"
