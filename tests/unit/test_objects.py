import pytest

from functions.objects import ObjectRef, new_note_id, object_name_for, parse_object_name

NOTE_ID = "0123456789abcdef0123456789abcdef"


def test_name_round_trip():
    name = object_name_for("user_1", NOTE_ID, "m4a")

    assert name == f"voice-notes/user_1/{NOTE_ID}.m4a"
    assert parse_object_name(name) == ObjectRef(uid="user_1", note_id=NOTE_ID, extension="m4a")


def test_new_note_id_shape():
    first, second = new_note_id(), new_note_id()

    assert len(first) == 32
    assert int(first, 16) >= 0
    assert first != second


@pytest.mark.parametrize(
    "name",
    [
        f"other/user/{NOTE_ID}.m4a",
        f"voice-notes/{NOTE_ID}.m4a",
        f"voice-notes/user/{NOTE_ID}",
        f"voice-notes/user/{NOTE_ID}.M4A",
        "voice-notes/user/short.m4a",
        f"voice-notes/../user/{NOTE_ID}.m4a",
        f"voice-notes/user/sub/{NOTE_ID}.m4a",
        f"voice-notes/us er/{NOTE_ID}.m4a",
        f"voice-notes/user/{NOTE_ID}.m4a.tmp",
        "",
    ],
    ids=[
        "other-prefix", "no-uid", "no-extension", "upper-extension", "short-id", "dot-dot",
        "nested", "space", "double-extension", "empty",
    ],
)
def test_foreign_names_rejected(name):
    assert parse_object_name(name) is None
