"""HTTP calls: ``upload_url``, the signed-URL PUT with a progress callback, and ``health``.

Every failure becomes a :class:`~braindump_cli.exits.CliError` whose message
is a sentence with the status, the backend's error code and the fix. The
signed URL and the ID token never appear in a message.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from braindump_cli.exits import CliError, ExitCode

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 60.0
CHUNK_BYTES = 64 * 1024

_AUTH_HINTS = {
    "missing_token": "pass --token, or leave it out to use an emulator token on the local stack",
    "token_expired": "get a fresh ID token and run the command again",
    "token_revoked": "sign in again to get a new ID token",
    "user_disabled": "the account is disabled; use another account",
    "token_wrong_audience": "the token belongs to another Firebase project; use a token of this backend's project",
}


@dataclass(frozen=True)
class UploadTicket:
    """The 201 reply of ``upload_url``."""

    note_id: str
    upload_url: str
    method: str
    headers: dict[str, str]
    expires_at: str
    object_name: str


def _error_parts(response: requests.Response) -> tuple[str, str]:
    """Return the backend's error code and message, or placeholders for a non-JSON body."""
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return "no_error_code", f"non-JSON body: {response.text[:120]!r}"


def _unreachable(name: str, url: str, err: requests.RequestException) -> CliError:
    return CliError(
        f"{name} at {url} could not be reached ({type(err).__name__}); "
        "check the URL and that the backend or 'python -m devstack up' is running",
        ExitCode.UNAVAILABLE,
    )


def ticket_from_response(response: requests.Response) -> UploadTicket:
    """Turn an ``upload_url`` reply into a ticket, or raise the error it stands for.

    Raises:
        CliError: with exit code ``REJECTED`` (400, 405, 413), ``AUTH`` (401),
            ``QUOTA`` (429) or ``UNAVAILABLE`` (5xx or an unexpected reply).
    """
    if response.status_code == 201:
        try:
            body = response.json()
            return UploadTicket(
                note_id=body["noteId"],
                upload_url=body["uploadUrl"],
                method=body["method"],
                headers=dict(body["headers"]),
                expires_at=body["expiresAt"],
                object_name=body["objectName"],
            )
        except (ValueError, KeyError, TypeError) as err:
            raise CliError(
                f"upload_url returned 201 without the fields of openapi.yaml ({type(err).__name__}: {err})",
                ExitCode.UNAVAILABLE,
            ) from err

    code, message = _error_parts(response)
    status = response.status_code
    if status == 401:
        hint = _AUTH_HINTS.get(code, "sign in again to get a new ID token")
        raise CliError(f"upload_url rejected the ID token ({code}): {message}; {hint}", ExitCode.AUTH, code=code)
    if status == 429:
        retry_after = response.headers.get("Retry-After", "?")
        raise CliError(
            f"the upload quota is used up ({code}): {message}; try again in {retry_after} seconds",
            ExitCode.QUOTA,
            code=code,
        )
    if status in (400, 405, 413):
        raise CliError(
            f"upload_url rejected the request with HTTP {status} ({code}): {message}", ExitCode.REJECTED, code=code
        )
    raise CliError(
        f"upload_url failed with HTTP {status} ({code}): {message}; retry later or check the backend's logs",
        ExitCode.UNAVAILABLE,
        code=code,
    )


def request_upload(
    endpoint: str, token: str, *, content_type: str, size_bytes: int, timezone: str, recorded_at: str | None
) -> UploadTicket:
    """POST to ``upload_url`` and return the ticket.

    Raises:
        CliError: see :func:`ticket_from_response`; ``UNAVAILABLE`` when the endpoint cannot be reached.
    """
    body: dict[str, Any] = {"contentType": content_type, "sizeBytes": size_bytes, "timezone": timezone}
    if recorded_at is not None:
        body["recordedAt"] = recorded_at

    try:
        response = requests.post(
            endpoint, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT_SECONDS
        )
    except requests.RequestException as err:
        raise _unreachable("upload_url", endpoint, err) from err
    return ticket_from_response(response)


class ProgressReader:
    """A read-only file wrapper that reports every chunk read, so ``requests`` streams it with a known length.

    ``requests`` sets ``Content-Length`` from ``len()``, which the signed
    ``x-goog-content-length-range`` check needs; a generator body would be sent
    chunked instead.
    """

    def __init__(self, stream: IO[bytes], size: int, on_read: Callable[[int], None]) -> None:
        self._stream = stream
        self._size = size
        self._on_read = on_read

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes and report how many were read."""
        chunk = self._stream.read(CHUNK_BYTES if size is None or size < 0 else size)
        if chunk:
            self._on_read(len(chunk))
        return chunk


def _storage_error_code(text: str) -> str:
    match = re.search(r"<Code>([^<]+)</Code>", text)
    return match.group(1) if match else "no error code"


def put_audio(ticket: UploadTicket, path: Path, on_read: Callable[[int], None]) -> None:
    """PUT the file to the signed URL with exactly the ticket's method and headers.

    Raises:
        CliError: the PUT failed (exit code ``UPLOAD_FAILED``).
    """
    size = path.stat().st_size
    try:
        with path.open("rb") as stream:
            response = requests.request(
                ticket.method,
                ticket.upload_url,
                data=ProgressReader(stream, size, on_read),
                headers=ticket.headers,
                timeout=HTTP_TIMEOUT_SECONDS,
            )
    except requests.RequestException as err:
        # The URL is a credential, so only its host is named.
        host = urllib.parse.urlsplit(ticket.upload_url).netloc
        raise CliError(
            f"the upload to {host} failed ({type(err).__name__}); run the command again for a new URL",
            ExitCode.UPLOAD_FAILED,
        ) from err

    if response.status_code == 412:
        raise CliError(
            f"the object {ticket.object_name} already exists (HTTP 412), so this URL was used before; "
            f"follow note {ticket.note_id} instead of uploading again",
            ExitCode.UPLOAD_FAILED,
        )
    if not 200 <= response.status_code < 300:
        raise CliError(
            f"Cloud Storage rejected the upload with HTTP {response.status_code} ({_storage_error_code(response.text)}); "
            "the URL may have expired, so run the command again for a new one",
            ExitCode.UPLOAD_FAILED,
        )


def get_health(endpoint: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """GET ``health`` and return the status code and body.

    Raises:
        CliError: unreachable, or a body that is not the health JSON (exit code ``UNAVAILABLE``).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = requests.get(endpoint, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)
    except requests.RequestException as err:
        raise _unreachable("health", endpoint, err) from err

    try:
        body = response.json()
    except ValueError as err:
        raise CliError(
            f"health returned HTTP {response.status_code} with a non-JSON body: {response.text[:120]!r}",
            ExitCode.UNAVAILABLE,
        ) from err
    if not isinstance(body, dict) or "status" not in body:
        raise CliError(f"health returned HTTP {response.status_code} without a 'status' field", ExitCode.UNAVAILABLE)
    return response.status_code, body
