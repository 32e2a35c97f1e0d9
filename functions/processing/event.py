"""Parsing of storage finalize events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from functions.errors import BraindumpError


class MalformedEvent(BraindumpError):
    """The CloudEvent lacks a field every storage event has; it can never be processed."""

    code = "malformed_event"


@dataclass(frozen=True)
class StorageEvent:
    """The fields of a ``google.cloud.storage.object.v1.finalized`` event that processing uses."""

    event_id: str
    event_time: dt.datetime | None
    bucket: str
    name: str
    generation: str
    content_type: str | None
    size_bytes: int | None


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _parse_size(value: Any) -> int | None:
    """Return the object size, or None when the field is absent or not a decimal count.

    StorageObjectData sends the size as a string of digits. Anything else is
    ignored, and the download's own cap still bounds the bytes read.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


def parse_event(attributes: dict[str, Any], data: Any) -> StorageEvent:
    """Build a :class:`StorageEvent` from CloudEvent attributes and its StorageObjectData body.

    Raises:
        MalformedEvent: the id, bucket or object name is missing.
    """
    if not isinstance(data, dict):
        raise MalformedEvent("the event body is not a StorageObjectData JSON object")

    event_id = attributes.get("id")
    bucket = data.get("bucket")
    name = data.get("name")
    if not event_id or not isinstance(bucket, str) or not isinstance(name, str):
        raise MalformedEvent("the event lacks its id, bucket or object name")

    return StorageEvent(
        event_id=str(event_id),
        event_time=_parse_time(attributes.get("time")) or _parse_time(data.get("timeCreated")),
        bucket=bucket,
        name=name,
        generation=str(data.get("generation") or ""),
        content_type=data.get("contentType"),
        size_bytes=_parse_size(data.get("size")),
    )
