import datetime as dt

import pytest

from functions.processing.event import MalformedEvent, parse_event

DATA = {
    "bucket": "voice-bucket",
    "name": "voice-notes/u1/0123456789abcdef0123456789abcdef.m4a",
    "generation": "1712345678901234",
    "contentType": "audio/mp4",
    "size": "50597",
    "timeCreated": "2026-03-10T18:30:00.000Z",
}


def test_event_fields_parsed():
    event = parse_event({"id": "ev-1", "time": "2026-03-10T18:31:00Z"}, DATA)

    assert event.event_id == "ev-1"
    assert event.event_time == dt.datetime(2026, 3, 10, 18, 31, tzinfo=dt.UTC)
    assert event.generation == "1712345678901234"
    assert event.size_bytes == 50597
    assert event.content_type == "audio/mp4"


def test_event_time_falls_back_to_creation():
    event = parse_event({"id": "ev-1"}, DATA)

    assert event.event_time == dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("attributes", "data"),
    [
        ({}, DATA),
        ({"id": "ev-1"}, {**DATA, "name": None}),
        ({"id": "ev-1"}, {k: v for k, v in DATA.items() if k != "bucket"}),
        ({"id": "ev-1"}, "not an object"),
    ],
    ids=["no-id", "no-name", "no-bucket", "not-json-object"],
)
def test_malformed_event_rejected(attributes, data):
    with pytest.raises(MalformedEvent):
        parse_event(attributes, data)


@pytest.mark.parametrize("size", ["abc", [1], "1.5", "9" * 5000, -3, True, None, ""], ids=repr)
def test_unusable_size_ignored(size):
    event = parse_event({"id": "ev-1"}, {**DATA, "size": size})

    assert event.size_bytes is None


def test_integer_size_accepted():
    assert parse_event({"id": "ev-1"}, {**DATA, "size": 42}).size_bytes == 42
