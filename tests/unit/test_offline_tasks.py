"""Task splitting of the offline extractor, on transcript text."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("ms_recognizers_date_time")

from functions.extraction.offline_dates import find_dates
from functions.extraction.offline_tasks import TaskDraft, split_tasks

NOW = dt.datetime(2026, 3, 10, 18, 30, tzinfo=ZoneInfo("Europe/Berlin"))


def tasks(text: str) -> list[TaskDraft]:
    return split_tasks(text, find_dates(text, NOW))


def titles(text: str) -> list[str]:
    return [task.title for task in tasks(text)]


def dues(text: str) -> list[object]:
    return [task.due.due if task.due else None for task in tasks(text)]


def test_lead_in_and_filler_dropped() -> None:
    assert titles("Hey, um, remind me to call the dentist tomorrow at 3 pm.") == ["Call the dentist"]


def test_sentences_split() -> None:
    text = "Um, so, I need to pick up the dry cleaning on Friday. Also, buy milk and eggs."

    assert titles(text) == ["Pick up the dry cleaning", "Buy milk and eggs"]
    assert dues(text) == [dt.date(2026, 3, 13), None]


def test_and_before_verb_splits() -> None:
    text = "I have to renew my passport by the end of the month, and, um, pay the council tax on the 15th."

    assert titles(text) == ["Renew my passport", "Pay the council tax"]
    assert dues(text) == [dt.date(2026, 3, 31), dt.date(2026, 3, 15)]


def test_leading_date_goes_forward() -> None:
    text = "Next Monday morning, send the quarterly report to Priya. Oh, and, uh, buy a new phone charger."

    assert titles(text) == ["Send the quarterly report to Priya", "Buy a new phone charger"]
    assert dues(text) == [dt.date(2026, 3, 16), None]


def test_empty_lead_in_passes_date() -> None:
    text = "Don't forget, tomorrow at 9 am I have to drop the car off at the garage."

    assert titles(text) == ["Drop the car off at the garage"]
    assert dues(text) == [dt.datetime(2026, 3, 11, 9, 0)]


def test_time_of_day_inherits_date() -> None:
    text = "Okay, tomorrow I need to email the landlord about the leaking tap, and, uh, call Mum in the evening."

    assert titles(text) == ["Email the landlord about the leaking tap", "Call Mum"]
    assert dues(text) == [dt.date(2026, 3, 11), dt.date(2026, 3, 11)]


def test_second_date_goes_to_next_task() -> None:
    text = "Tonight at 9 call the hotel to confirm the booking tomorrow afternoon pick up the rental car"

    assert titles(text) == ["Call the hotel to confirm the booking", "Pick up the rental car"]
    assert dues(text) == [dt.datetime(2026, 3, 10, 21, 0), dt.date(2026, 3, 11)]


def test_date_after_lead_in_and_to() -> None:
    text = "Remind me in forty-five minutes to transfer the rent to Arjun, and on the 15th, book the train tickets to Pune."

    assert titles(text) == ["Transfer the rent to Arjun", "Book the train tickets to Pune"]
    assert dues(text)[1] == dt.date(2026, 3, 15)


def test_deadline_beats_other_date() -> None:
    text = "So, um, prepare the slides for Friday's standup by Thursday evening."

    assert titles(text) == ["Prepare the slides for Friday's standup"]
    assert dues(text) == [dt.date(2026, 3, 12)]


def test_two_verbs_one_task() -> None:
    assert titles("So, sign and send back the permission form by Thursday.") == [
        "Sign and send back the permission form"
    ]


def test_counted_list() -> None:
    text = "Okay, four things. One, buy a birthday card for Lucas. Two, return the library books on Saturday."

    assert titles(text) == ["Buy a birthday card for Lucas", "Return the library books"]


def test_recurrence_kept() -> None:
    found = tasks("Water the plants every Tuesday.")

    assert [task.title for task in found] == ["Water the plants"]
    assert found[0].due is not None
    assert found[0].due.recurrence == "every Tuesday"


@pytest.mark.parametrize(
    "text",
    [
        "It's been a long day.",
        "The light was really beautiful tonight, sort of orange and soft.",
        "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        "Oh, and the weather is supposed to be nice this weekend, so maybe we'll go to the park.",
        "Add to my list:",
        "",
    ],
)
def test_aside_yields_nothing(text: str) -> None:
    assert tasks(text) == []


def test_bare_trailing_verb_dropped() -> None:
    assert titles("Look up a recipe for banana bread and read.") == ["Look up a recipe for banana bread"]
