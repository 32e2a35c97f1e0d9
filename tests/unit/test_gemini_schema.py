import datetime as dt

import pytest

from functions.extraction.gemini_schema import parse_due


def test_parse_due_date_and_time():
    assert parse_due("2026-03-11") == dt.date(2026, 3, 11)
    assert parse_due("2026-03-11T15:00") == dt.datetime(2026, 3, 11, 15, 0)


@pytest.mark.parametrize("value", ["9999-12-31T23:30", "0001-01-01", "2200-01-01", "1899-12-31T09:00", "2026-02-30"])
def test_parse_due_rejects_unusable(value):
    with pytest.raises(ValueError):
        parse_due(value)
