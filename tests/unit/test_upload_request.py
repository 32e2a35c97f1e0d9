import json

import pytest

from functions.errors import InvalidRequest, PayloadTooLarge
from functions.uploads.request import MAX_BODY_BYTES, parse_upload_request

LIMIT = 10 * 1024 * 1024
VALID = {"contentType": "audio/x-m4a", "sizeBytes": 50597, "timezone": "Europe/Berlin"}


def parse(body: object, content_type: str = "application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_upload_request(raw, content_type, max_upload_bytes=LIMIT)


def test_valid_body_normalises_type():
    upload = parse({**VALID, "recordedAt": "2026-03-10T18:30:00-07:00"})

    assert upload.audio_type.mime == "audio/mp4"
    assert upload.audio_type.extension == "m4a"
    assert upload.request.size_bytes == 50597
    assert upload.request.recorded_at is not None
    assert upload.request.recorded_at.utcoffset().total_seconds() == -7 * 3600


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({**VALID, "extra": 1}, "unknown_field", "extra"),
        ({k: v for k, v in VALID.items() if k != "timezone"}, "missing_field", "timezone"),
        ({k: v for k, v in VALID.items() if k != "contentType"}, "missing_field", "contentType"),
        ({**VALID, "timezone": "Mars/Olympus"}, "invalid_field", "timezone"),
        ({**VALID, "sizeBytes": 0}, "invalid_field", "sizeBytes"),
        ({**VALID, "sizeBytes": "100"}, "invalid_field", "sizeBytes"),
        ({**VALID, "sizeBytes": LIMIT + 1}, "file_too_large", "sizeBytes"),
        ({**VALID, "recordedAt": "yesterday"}, "invalid_field", "recordedAt"),
        ({**VALID, "recordedAt": "2026-03-10T18:30:00"}, "invalid_field", "recordedAt"),
        ({**VALID, "contentType": "video/mp4"}, "unsupported_content_type", "contentType"),
        ({**VALID, "contentType": "../../etc/passwd"}, "unsupported_content_type", "contentType"),
    ],
    ids=[
        "unknown-field", "no-timezone", "no-content-type", "bad-zone", "zero-size", "size-as-string",
        "oversize", "bad-recorded-at", "naive-recorded-at", "video", "traversal",
    ],
)
def test_invalid_body_names_field(body, code, field):
    with pytest.raises(InvalidRequest) as caught:
        parse(body)

    assert caught.value.code == code
    assert field in caught.value.message
    assert caught.value.http_status == 400


@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        (b"{not json", "application/json", "invalid_json"),
        (b"[1, 2]", "application/json", "invalid_json"),
        (json.dumps(VALID).encode(), "text/plain", "invalid_content_type"),
        (json.dumps(VALID).encode(), None, "invalid_content_type"),
    ],
    ids=["broken-json", "array", "text-plain", "no-content-type"],
)
def test_invalid_envelope(raw, content_type, code):
    with pytest.raises(InvalidRequest) as caught:
        parse_upload_request(raw, content_type, max_upload_bytes=LIMIT)

    assert caught.value.code == code


def test_huge_body_rejected():
    with pytest.raises(PayloadTooLarge) as caught:
        parse(b"{" + b" " * MAX_BODY_BYTES + b"}")

    assert caught.value.http_status == 413
    assert caught.value.code == "body_too_large"


def test_charset_parameter_accepted():
    upload = parse(VALID, content_type="application/json; charset=utf-8")

    assert upload.request.timezone == "Europe/Berlin"


def test_numeric_recorded_at_rejected():
    with pytest.raises(InvalidRequest) as caught:
        parse({**VALID, "recordedAt": 0})

    assert caught.value.code == "invalid_field"
    assert "recordedAt" in caught.value.message


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("recordedAt", "9999-12-31T23:00:00+00:00", "invalid_field"),
        ("recordedAt", "0001-01-01T00:00:00+14:00", "invalid_field"),
        ("recordedAt", "2999-01-01T00:00:00Z", "invalid_field"),
        ("recordedAt", "1700000000", "invalid_field"),
        ("timezone", "America", "invalid_field"),
        ("timezone", "localtime", "invalid_field"),
        ("timezone", "Factory", "invalid_field"),
        ("contentType", "audio/ogg;\r\nX-Injected: 1", "unsupported_content_type"),
    ],
    ids=["year-9999", "year-1", "far-future", "digits", "zone-folder", "localtime", "factory", "crlf"],
)
def test_unusable_value_rejected(field, value, code):
    with pytest.raises(InvalidRequest) as caught:
        parse({**VALID, field: value})

    assert caught.value.code == code
    assert field in caught.value.message


def test_deeply_nested_json_rejected():
    with pytest.raises(InvalidRequest) as caught:
        parse(b"[" * 1500 + b"]" * 1500)

    assert caught.value.code == "invalid_json"
