"""A client of the local stack, doing what the phone app does: request, upload, wait.

Used by the demo and the integration tests. Reads Firestore through
google-cloud-firestore against the emulator, so ``FIRESTORE_EMULATOR_HOST``
must be set in this process (see ``LocalStack.client_env``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from google.cloud import firestore

from devstack.processes import DevstackError
from devstack.tokens import emulator_id_token

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 60.0
FINAL_STATUSES = frozenset({"done", "failed"})


class NoteWaitTimeout(DevstackError):
    """A note did not reach the expected status in time. The message shows the last document."""

    code = "note_wait_timeout"


@dataclass(frozen=True)
class UploadTicket:
    """The ``upload_url`` function's 201 reply."""

    note_id: str
    upload_url: str
    method: str
    headers: dict[str, str]
    expires_at: str
    object_name: str

    @classmethod
    def from_reply(cls, body: dict[str, Any]) -> UploadTicket:
        """Build a ticket from the reply JSON.

        Raises:
            DevstackError: a field of the contract is missing.
        """
        try:
            return cls(
                note_id=body["noteId"],
                upload_url=body["uploadUrl"],
                method=body.get("method", "PUT"),
                headers=dict(body.get("headers", {})),
                expires_at=body.get("expiresAt", ""),
                object_name=body.get("objectName", ""),
            )
        except KeyError as err:
            raise DevstackError(f"upload_url reply lacks {err.args[0]!r}; keys present: {sorted(body)}") from err


class BackendClient:
    """Calls the stack's functions and reads its Firestore, as user ``uid``."""

    def __init__(self, *, upload_endpoint: str, project_id: str) -> None:
        self.upload_endpoint = upload_endpoint
        self.project_id = project_id
        self.db = firestore.Client(project=project_id)

    def token(self, uid: str, email: str | None = None) -> str:
        """Return an emulator ID token for ``uid``."""
        return emulator_id_token(uid, self.project_id, email)

    def request_upload(
        self,
        token: str,
        *,
        content_type: str,
        size_bytes: int,
        timezone: str,
        recorded_at: str | None = None,
    ) -> requests.Response:
        """POST the upload request and return the raw reply (any status)."""
        body: dict[str, Any] = {"contentType": content_type, "sizeBytes": size_bytes, "timezone": timezone}
        if recorded_at is not None:
            body["recordedAt"] = recorded_at
        return requests.post(
            self.upload_endpoint,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    def ticket(self, token: str, **request: Any) -> UploadTicket:
        """Request an upload and return the ticket.

        Raises:
            DevstackError: the reply is not 201; the message has its body.
        """
        reply = self.request_upload(token, **request)
        if reply.status_code != 201:
            raise DevstackError(f"upload_url returned HTTP {reply.status_code}, expected 201: {reply.text[:500]}")
        return UploadTicket.from_reply(reply.json())

    def put_file(self, ticket: UploadTicket, path: Path) -> requests.Response:
        """PUT ``path`` to the signed URL with exactly the ticket's headers; return the reply."""
        return requests.request(
            ticket.method,
            ticket.upload_url,
            data=path.read_bytes(),
            headers=ticket.headers,
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    def upload(self, token: str, path: Path, *, content_type: str, timezone: str, recorded_at: str | None = None) -> UploadTicket:
        """Request an upload for ``path`` and PUT it; return the ticket.

        Raises:
            DevstackError: the request or the PUT failed; the message has the reply.
        """
        ticket = self.ticket(
            token,
            content_type=content_type,
            size_bytes=path.stat().st_size,
            timezone=timezone,
            recorded_at=recorded_at,
        )
        reply = self.put_file(ticket, path)
        if not 200 <= reply.status_code < 300:
            raise DevstackError(f"PUT of {path.name} to the signed URL failed with HTTP {reply.status_code}: {reply.text[:500]}")
        return ticket

    def note(self, uid: str, note_id: str) -> dict[str, Any] | None:
        """Return the note document, or None if it does not exist."""
        snapshot = self.db.document("users", uid, "voiceNotes", note_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    def tasks(self, uid: str, note_id: str) -> list[dict[str, Any]]:
        """Return the task documents whose ``sourceNoteId`` is ``note_id``, each with its ``id``."""
        query = self.db.collection("users", uid, "tasks").where(
            filter=firestore.FieldFilter("sourceNoteId", "==", note_id)
        )
        return [{"id": snapshot.id, **(snapshot.to_dict() or {})} for snapshot in query.stream()]

    def wait_for_note(
        self,
        uid: str,
        note_id: str,
        *,
        statuses: Collection[str] = FINAL_STATUSES,
        timeout_seconds: float = 300.0,
        interval_seconds: float = 0.2,
    ) -> dict[str, Any]:
        """Poll the note until its ``status`` is one of ``statuses``.

        Returns:
            The note document.

        Raises:
            NoteWaitTimeout: the status was not reached within ``timeout_seconds``;
                the message contains the last document read.
        """
        deadline = time.monotonic() + timeout_seconds
        last: dict[str, Any] | None = None
        while True:
            last = self.note(uid, note_id)
            if last is not None and last.get("status") in statuses:
                return last
            if time.monotonic() >= deadline:
                raise NoteWaitTimeout(
                    f"note users/{uid}/voiceNotes/{note_id} did not reach {sorted(statuses)} "
                    f"within {timeout_seconds:.0f} s; last document: {last!r}"
                )
            time.sleep(interval_seconds)
