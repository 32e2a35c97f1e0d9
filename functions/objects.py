"""Object names of uploaded voice notes: ``voice-notes/{uid}/{noteId}.{ext}``."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

OBJECT_PREFIX = "voice-notes/"

# The uid as accepted by upload_url, a 32-character hex note id and a
# lower-case extension from the canonical audio types.
_OBJECT_NAME = re.compile(
    r"voice-notes/(?P<uid>[A-Za-z0-9_-]{1,128})/(?P<note_id>[0-9a-f]{32})\.(?P<extension>[a-z0-9]{2,5})"
)


@dataclass(frozen=True)
class ObjectRef:
    """The owner and note of an uploaded object, parsed from its name."""

    uid: str
    note_id: str
    extension: str


def new_note_id() -> str:
    """Return a random note id with 128 bits of entropy, as 32 hex characters."""
    return secrets.token_hex(16)


def object_name_for(uid: str, note_id: str, extension: str) -> str:
    """Return the Cloud Storage object name of a note's audio."""
    return f"{OBJECT_PREFIX}{uid}/{note_id}.{extension}"


def parse_object_name(name: str) -> ObjectRef | None:
    """Return the uid, note id and extension of one of our uploads, or None for any other name."""
    match = _OBJECT_NAME.fullmatch(name)
    if match is None:
        return None
    return ObjectRef(uid=match["uid"], note_id=match["note_id"], extension=match["extension"])
