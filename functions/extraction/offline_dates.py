"""Find spoken dates in a transcript and resolve each to a due value in the note's zone.

Microsoft Recognizers-Text (``ms-recognizers-text-suite`` 1.0.1, imported as
``ms_recognizers_date_time``) finds the phrases. It resolves a phrase such as
"Friday" or "at 9" to several candidates (last week and next week, AM and PM),
so this module picks the first candidate after the recording time itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

LocalDue = dt.date | dt.datetime
"""A ``date`` is an all-day due date, a naive ``datetime`` is local wall-clock time,
and an aware ``datetime`` is an exact instant (elapsed offsets such as "in two hours")."""

PART_OF_DAY_END: dict[str, dt.time] = {
    "MO": dt.time(12, 0),
    "MI": dt.time(14, 0),
    "AF": dt.time(16, 0),
    "EV": dt.time(20, 0),
    "NI": dt.time(23, 59),
    "DT": dt.time(18, 0),
}
"""Last wall-clock time of each TIMEX part of day (morning, midday, afternoon,
evening, night, daytime), as Recognizers-Text 1.0 resolves them."""

# Words that the recognizer reads as dates or times but that in speech are
# usually something else: "may" (the verb), "night" ("good night"), "second"
# (the ordinal), "now" and three-letter weekday abbreviations.
_AMBIGUOUS_WORDS = frozenset(
    {"may", "march", "night", "now", "second", "sun", "sat", "mon", "tue", "wed", "thu", "fri"}
)

_WEEKDAY_TIMEX = re.compile(r"XXXX-WXX-(?P<weekday>[1-7])")
_CLOCK_TIMEX = re.compile(r"T(?P<hour>\d\d)(?::(?P<minute>\d\d))?")
_PART_OF_DAY_TIMEX = re.compile(r"T(?P<part>MO|MI|AF|EV|NI|DT)\b")
_ELAPSED_TIMEX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_DETERMINERS = frozenset({"a", "an", "the", "my", "our", "your", "his", "her", "their", "this", "that"})
_RECURRENCE_JOIN = re.compile(r"^[\s,]*(?:and|or)?[\s,]*$", re.IGNORECASE)


@dataclass(frozen=True)
class DateMention:
    """A date or time phrase in a transcript and the due value it resolves to."""

    start: int
    """Offset of the first character of the phrase in the transcript."""
    end: int
    """Offset one past the last character of the phrase."""
    text: str
    due: LocalDue | None
    recurrence: str | None = None
    """The repeat rule as spoken, for example "every Tuesday"."""
    time_of_day_only: bool = False
    """True for "in the evening" or "at 9", which name no date of their own."""
    clock: dt.time | None = None
    """The wall-clock time of a ``time_of_day_only`` phrase, if it names one."""


@dataclass(frozen=True)
class _Entity:
    start: int
    end: int
    text: str
    type_name: str
    values: list[dict[str, Any]]


@functools.cache
def load_date_model() -> Any:
    """Build the English date-time model on first use and return it. Building it takes about a second."""
    from ms_recognizers_date_time import DateTimeRecognizer
    from ms_recognizers_text import Culture

    return DateTimeRecognizer(Culture.English).get_datetime_model()


def find_dates(text: str, local_now: dt.datetime) -> list[DateMention]:
    """Find the date and time phrases in ``text`` and resolve them after ``local_now``.

    Args:
        text: A transcript.
        local_now: The recording time, timezone-aware, in the note's zone.

    Returns:
        The mentions in the order spoken. Phrases that resolve to nothing useful
        (durations, bare months, ambiguous single words) are left out.
    """
    naive_now = local_now.replace(tzinfo=None)
    entities = _recognize(text, naive_now)

    mentions: list[DateMention] = []
    index = 0
    while index < len(entities):
        group_end = _recurrence_group_end(entities, index, text)
        if group_end > index or entities[index].type_name == "set":
            mention = _recurring(entities[index : group_end + 1], text, naive_now)
            index = group_end + 1
        else:
            mention = _single(entities[index], local_now)
            index += 1
        if mention is not None:
            mentions.append(mention)

    return mentions


def _recognize(text: str, naive_now: dt.datetime) -> list[_Entity]:
    entities: list[_Entity] = []
    for result in load_date_model().parse(text, naive_now):
        # Recognizers-Text reports an inclusive end offset.
        start, end = int(result.start), int(result.end) + 1
        spoken = text[start:end]
        type_name = str(result.type_name).removeprefix("datetimeV2.")
        values = list((result.resolution or {}).get("values") or [])

        if type_name == "duration" or spoken.strip().lower() in _AMBIGUOUS_WORDS:
            logger.debug("ignored the %s phrase %r", type_name, spoken)
            continue
        if type_name == "set" and _word_before(text, start) in _DETERMINERS:
            # "the quarterly report" names a kind of report, not a repeat rule.
            logger.debug("ignored the adjective %r", spoken)
            continue
        entities.append(_Entity(start, end, spoken, type_name, values))
    return entities


def _recurrence_group_end(entities: list[_Entity], index: int, text: str) -> int:
    """Return the index of the last entity that belongs to the repeat rule starting at ``index``.

    "every Monday, Wednesday and Friday at 7 am, starting tomorrow" arrives as four
    entities, and "the first Monday of every month" as a date followed by a set.
    """
    first = entities[index]
    if first.type_name != "set":
        following = entities[index + 1] if index + 1 < len(entities) else None
        gap = text[first.end : following.start] if following else ""
        if following is not None and following.type_name == "set" and gap.strip().lower() == "of":
            return index + 1
        return index

    last = index
    while last + 1 < len(entities):
        gap = text[entities[last].end : entities[last + 1].start]
        if not _RECURRENCE_JOIN.match(gap):
            break
        last += 1
    return last


def _single(entity: _Entity, local_now: dt.datetime) -> DateMention | None:
    naive_now = local_now.replace(tzinfo=None)
    timexes = [str(value.get("timex", "")) for value in entity.values]
    part_of_day = any(_PART_OF_DAY_TIMEX.search(timex) for timex in timexes)

    if entity.type_name == "datetime":
        return _instant(entity, local_now)

    if entity.type_name == "date":
        dates = [_parse_date(value.get("value")) for value in entity.values]
        due = _first_date_after(dates, naive_now, weekday=any(_WEEKDAY_TIMEX.match(t) for t in timexes))
        ordinal = _ORDINALS.get(entity.text.split()[0].lower())
        if due is None and ordinal is not None and dates and dates[0] is not None:
            # "the first Monday" after this month's has passed means next month's.
            due = _nth_weekday_on_or_after(naive_now.date(), ordinal, dates[0].isoweekday())
        return DateMention(entity.start, entity.end, entity.text, due) if due else None

    if entity.type_name == "datetimerange" and part_of_day:
        # "tomorrow morning" or "by Thursday evening": a vague time of day is an all-day task.
        bounds = [_parse_date(value.get("start") or value.get("end")) for value in entity.values]
        due = _first_date_after(bounds, naive_now, weekday=any(_WEEKDAY_TIMEX.match(t) for t in timexes))
        return DateMention(entity.start, entity.end, entity.text, due) if due else None

    if entity.type_name == "daterange":
        return _deadline(entity, naive_now)

    if entity.type_name in ("time", "timerange"):
        return _time_of_day(entity, naive_now, part_of_day)

    logger.debug("ignored the %s phrase %r", entity.type_name, entity.text)
    return None


def _instant(entity: _Entity, local_now: dt.datetime) -> DateMention | None:
    naive_now = local_now.replace(tzinfo=None)
    values = [value for value in entity.values if value.get("timex") != "PRESENT_REF"]
    parsed = [_parse_datetime(value.get("value")) for value in values]
    candidates = [candidate for candidate in parsed if candidate is not None]
    if not candidates:
        return None

    timex = str(values[0].get("timex", ""))
    if _ELAPSED_TIMEX.match(timex) and entity.text.lower().startswith("in "):
        # The recognizer adds "in two hours" to the naive wall-clock time. Adding
        # the same span to the aware instant counts elapsed time across a
        # daylight-saving change.
        elapsed = candidates[0] - naive_now
        instant = (local_now.astimezone(dt.UTC) + elapsed).astimezone(local_now.tzinfo)
        return DateMention(entity.start, entity.end, entity.text, instant)

    future = sorted(candidate for candidate in candidates if candidate > naive_now)
    if future:
        return DateMention(entity.start, entity.end, entity.text, future[0])

    # Every candidate has passed, e.g. "Tuesday at 5 pm" spoken on Tuesday at 18:30,
    # so the phrase means the same weekday next week.
    latest = max(candidates)
    if _WEEKDAY_TIMEX.match(timex):
        return DateMention(entity.start, entity.end, entity.text, latest + dt.timedelta(days=7))
    return DateMention(entity.start, entity.end, entity.text, latest)


def _deadline(entity: _Entity, naive_now: dt.datetime) -> DateMention | None:
    """Resolve "by the end of the month" or "by April 15th" to the last day allowed."""
    ends: list[dt.date | None] = []
    for value in entity.values:
        if value.get("Mod") not in ("before", "before-end"):
            continue
        end = _parse_date(value.get("end"))
        if end is None:
            continue
        # A range ("the month") ends on the exclusive day after, a point ("April 15th") on itself.
        if value.get("sourceEntity") != "datetimepoint":
            end -= dt.timedelta(days=1)
        ends.append(end)

    due = _first_date_after(ends, naive_now, weekday=False)
    if due is None:
        # TODO: bare ranges ("next week", "in May", "this weekend") get no due date.
        logger.debug("ignored the date range %r", entity.text)
        return None
    return DateMention(entity.start, entity.end, entity.text, due)


def _time_of_day(entity: _Entity, naive_now: dt.datetime, part_of_day: bool) -> DateMention | None:
    """Resolve "in the evening" or "at 9" to its next occurrence. ``split_tasks`` may move it to another date."""
    if part_of_day:
        parts = [m.group("part") for v in entity.values if (m := _PART_OF_DAY_TIMEX.search(str(v.get("timex", ""))))]
        ends_at = PART_OF_DAY_END[parts[0]]
        today = naive_now.date()
        due = today if naive_now.time() < ends_at else today + dt.timedelta(days=1)
        return DateMention(entity.start, entity.end, entity.text, due, time_of_day_only=True)

    parsed = [_parse_time(value.get("value")) for value in entity.values]
    clocks = sorted(clock for clock in parsed if clock is not None)
    if entity.type_name != "time" or not clocks:
        logger.debug("ignored the time range %r", entity.text)
        return None

    today = naive_now.date()
    candidates = [dt.datetime.combine(today + dt.timedelta(days=days), clock) for days in (0, 1) for clock in clocks]
    due = min(candidate for candidate in candidates if candidate > naive_now)
    return DateMention(entity.start, entity.end, entity.text, due, time_of_day_only=True, clock=due.time())


def _recurring(group: list[_Entity], text: str, naive_now: dt.datetime) -> DateMention | None:
    start, end = group[0].start, group[-1].end
    spoken = text[start:end]
    timexes = [str(value.get("timex", "")) for entity in group for value in entity.values]
    today = naive_now.date()

    weekdays = sorted({int(m.group("weekday")) for t in timexes if (m := _WEEKDAY_TIMEX.match(t))})
    ordinal = None
    if group[0].type_name == "date":
        # "the first Monday" resolves to a date in the current month, which names the weekday.
        ordinal = _ORDINALS.get(group[0].text.split()[0].lower())
        named = _parse_date(group[0].values[0].get("value")) if group[0].values else None
        weekdays = [named.isoweekday()] if named else weekdays
    clock = _first_clock(timexes)
    starts = [
        _parse_date(value.get("start")) for entity in group for value in entity.values if value.get("Mod") == "since"
    ]
    first_day = max([today, *(day for day in starts if day is not None)])

    if ordinal is not None and len(weekdays) == 1:
        due_date = _nth_weekday_on_or_after(first_day, ordinal, weekdays[0])
    elif weekdays:
        due_date = _next_weekday(first_day, weekdays, clock, naive_now)
    elif "P1D" in timexes or any(_PART_OF_DAY_TIMEX.fullmatch(t) for t in timexes):
        due_date = first_day
    else:
        # TODO: "every two weeks" or "every month" alone name no first day, so the task gets no due date.
        return DateMention(start, end, spoken, None, recurrence=spoken)

    due: LocalDue = dt.datetime.combine(due_date, clock) if clock else due_date
    return DateMention(start, end, spoken, due, recurrence=spoken)


def _first_clock(timexes: list[str]) -> dt.time | None:
    for timex in timexes:
        match = _CLOCK_TIMEX.search(timex)
        if match:
            return dt.time(int(match.group("hour")), int(match.group("minute") or 0))
    return None


def _next_weekday(first_day: dt.date, weekdays: list[int], clock: dt.time | None, naive_now: dt.datetime) -> dt.date:
    for offset in range(8):
        day = first_day + dt.timedelta(days=offset)
        if day.isoweekday() not in weekdays:
            continue
        if clock is not None and dt.datetime.combine(day, clock) <= naive_now:
            continue
        return day
    raise AssertionError("a listed weekday occurs within eight days")


def _nth_weekday_on_or_after(first_day: dt.date, ordinal: int, weekday: int) -> dt.date:
    """Return the first "nth weekday of the month" (ordinal -1 is the last) on or after ``first_day``."""
    year, month = first_day.year, first_day.month
    while True:
        day = _nth_weekday(year, month, ordinal, weekday)
        if day >= first_day:
            return day
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _nth_weekday(year: int, month: int, ordinal: int, weekday: int) -> dt.date:
    first = dt.date(year, month, 1)
    if ordinal > 0:
        offset = (weekday - first.isoweekday()) % 7
        return first + dt.timedelta(days=offset + 7 * (ordinal - 1))
    next_month = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = next_month - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.isoweekday() - weekday) % 7)


def _first_date_after(dates: list[dt.date | None], naive_now: dt.datetime, *, weekday: bool) -> dt.date | None:
    """Pick the earliest candidate from today on, but a weekday spoken on that weekday means next week."""
    today = naive_now.date()
    known = [day for day in dates if day is not None]
    future = sorted(day for day in known if day > today or (day == today and not weekday))
    if future:
        return future[0]
    if weekday and known:
        return max(known) + dt.timedelta(days=7)
    return None


def _word_before(text: str, offset: int) -> str:
    words = re.findall(r"[\w']+", text[:offset])
    return words[-1].lower() if words else ""


def _parse_date(value: object) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _parse_datetime(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _parse_time(value: object) -> dt.time | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        return None
