"""Reading single Firestore documents through the REST API (v1), for the emulator and for production.

The REST API returns typed values such as ``{"stringValue": "done"}``;
:func:`decode_value` turns them into plain Python values, with timestamps as
timezone-aware :class:`datetime.datetime`.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import urllib.parse
from typing import Any

import requests

from braindump_cli.exits import CliError, ExitCode

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 15.0
_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp with up to nine fractional digits, as Firestore writes them."""
    text = value.replace("Z", "+00:00")
    fraction = _FRACTION.search(text)
    if fraction:
        # datetime takes at most six fractional digits; Firestore may send nine.
        text = f"{text[: fraction.start()]}.{fraction.group(1)[:6].ljust(6, '0')}{text[fraction.end() :]}"
    return dt.datetime.fromisoformat(text)


def decode_value(value: dict[str, Any]) -> Any:
    """Turn one typed REST value into a Python value.

    Raises:
        ValueError: the value has a type this decoder does not know.
    """
    kind, raw = next(iter(value.items()))
    if kind == "nullValue":
        return None
    if kind in ("stringValue", "booleanValue", "referenceValue"):
        return raw
    if kind == "integerValue":
        return int(raw)
    if kind == "doubleValue":
        return float(raw)
    if kind == "timestampValue":
        return parse_timestamp(raw)
    if kind == "bytesValue":
        return base64.b64decode(raw)
    if kind == "geoPointValue":
        return (raw.get("latitude", 0.0), raw.get("longitude", 0.0))
    if kind == "arrayValue":
        return [decode_value(item) for item in raw.get("values", [])]
    if kind == "mapValue":
        return decode_fields(raw.get("fields", {}))
    raise ValueError(f"unknown Firestore value type {kind!r}")


def decode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Turn the ``fields`` of a REST document into a plain dict."""
    return {name: decode_value(value) for name, value in fields.items()}


class DocumentReader:
    """Gets documents of one project by path, with one HTTP session."""

    def __init__(self, base_url: str, project_id: str, bearer: str) -> None:
        self._documents_url = f"{base_url}/projects/{project_id}/databases/(default)/documents"
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {bearer}"

    def get(self, path: str) -> dict[str, Any] | None:
        """Return the document at ``path`` (such as ``users/u1/voiceNotes/abc``), or None if it does not exist.

        Raises:
            CliError: Firestore could not be reached or returned an error
                (exit code ``UNAVAILABLE``, or ``AUTH`` for 401 and 403).
        """
        url = f"{self._documents_url}/{urllib.parse.quote(path)}"
        try:
            response = self._session.get(url, timeout=HTTP_TIMEOUT_SECONDS)
        except requests.RequestException as err:
            raise CliError(
                f"Firestore at {self._documents_url.split('/v1/')[0]} could not be reached ({type(err).__name__}); "
                "check that the stack is running",
                ExitCode.UNAVAILABLE,
            ) from err

        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise CliError(
                f"Firestore denied reading {path} (HTTP {response.status_code}); the ID token must belong to the note's owner",
                ExitCode.AUTH,
            )
        if response.status_code != 200:
            raise CliError(
                f"Firestore returned HTTP {response.status_code} for {path}: {response.text[:200]}",
                ExitCode.UNAVAILABLE,
            )
        return decode_fields(response.json().get("fields", {}))

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()
