"""``firestore.rules`` on the Firestore emulator, through the REST API as two users and without a token.

The rules are loaded with the emulator's ``PUT /emulator/v1/projects/{project}:securityRules``
into a project of their own. Documents are seeded with the Python client,
which the emulator treats as an admin and does not hold to the rules. Each
request then carries an emulator ID token of the owner, of another user or no
token, and the emulator answers 403 ``PERMISSION_DENIED`` where the rules deny.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from google.cloud import firestore

from devstack.emulators import FirestoreEmulator
from devstack.tokens import emulator_id_token
from tests.security.conftest import REPO_ROOT, stored

pytestmark = pytest.mark.security

RULES_PROJECT = "demo-braindump-rules"
OWNER = "owner-uid"
INTRUDER = "intruder-uid"
NOTE = f"users/{OWNER}/voiceNotes/0123456789abcdef0123456789abcdef"
TASK = f"users/{OWNER}/tasks/0123456789abcdef0123456789abcdef-00"
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class RulesClient:
    """Sends Firestore REST requests to the emulator as one user, or without a token."""

    base_url: str
    uid: str | None

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None, query: str = "") -> int:
        """Send ``method`` to the document or collection ``path`` and return the HTTP status."""
        url = f"{self.base_url}/v1/projects/{RULES_PROJECT}/databases/(default)/documents/{path}"
        if query:
            url += f"?{query}"
        headers = {"Authorization": f"Bearer {emulator_id_token(self.uid, RULES_PROJECT)}"} if self.uid else {}
        reply = requests.request(method, url, json=json, headers=headers, timeout=TIMEOUT_SECONDS)
        return reply.status_code


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    """Encode plain values as Firestore REST ``fields``."""
    encoded: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            encoded[name] = {"booleanValue": value}
        elif isinstance(value, int):
            encoded[name] = {"integerValue": str(value)}
        elif value is None:
            encoded[name] = {"nullValue": None}
        elif isinstance(value, dt.datetime):
            encoded[name] = {"timestampValue": value.isoformat().replace("+00:00", "Z")}
        else:
            encoded[name] = {"stringValue": value}
    return {"fields": encoded}


def _mask(values: dict[str, Any]) -> str:
    """Return the query string that limits a PATCH to ``values`` and requires the document to exist."""
    names = [("updateMask.fieldPaths", name) for name in values]
    return urllib.parse.urlencode([*names, ("currentDocument.exists", "true")])


@pytest.fixture(scope="module")
def rules_emulator(firestore_emulator: FirestoreEmulator) -> FirestoreEmulator:
    """The session emulator with ``firestore.rules`` loaded for :data:`RULES_PROJECT`."""
    source = (REPO_ROOT / "firestore.rules").read_text(encoding="utf-8")
    url = f"{firestore_emulator.base_url}/emulator/v1/projects/{RULES_PROJECT}:securityRules"
    body = {"rules": {"files": [{"name": "firestore.rules", "content": source}]}}
    reply = requests.put(url, json=body, timeout=TIMEOUT_SECONDS)
    assert reply.status_code == 200, f"the emulator rejected firestore.rules: {reply.text}"
    return firestore_emulator


@pytest.fixture
def seeded(rules_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A note, a task and a quota document of :data:`OWNER`; yields the emulator's base URL."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", rules_emulator.endpoint)
    rules_emulator.reset(RULES_PROJECT)
    admin = firestore.Client(project=RULES_PROJECT)
    now = dt.datetime.now(dt.UTC)
    admin.document(NOTE).set({"status": "done", "objectName": "voice-notes/owner-uid/x.m4a", "createdAt": now})
    admin.document(TASK).set(
        {"title": "Call the dentist", "completed": False, "completedAt": None, "noteId": NOTE.rsplit("/", 1)[1]}
    )
    admin.document(f"users/{OWNER}/quota/uploads").set({"hourCount": 1, "dayCount": 1})
    admin.document("_health/probe").set({"at": now})
    yield rules_emulator.base_url
    rules_emulator.reset(RULES_PROJECT)


@dataclass(frozen=True)
class Access:
    """One row: the caller's uid (None: no token), the request and the status the rules must produce."""

    uid: str | None
    method: str
    path: str
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    masked: bool = False
    query: str = ""


NOW = dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)

ACCESSES = [
    # Reads of one's own data are allowed.
    pytest.param(Access(OWNER, "GET", NOTE, 200), id="owner-reads-note"),
    pytest.param(Access(OWNER, "GET", TASK, 200), id="owner-reads-task"),
    pytest.param(Access(OWNER, "GET", f"users/{OWNER}/voiceNotes", 200), id="owner-lists-notes"),
    pytest.param(Access(OWNER, "GET", f"users/{OWNER}/tasks", 200), id="owner-lists-tasks"),
    # Cross-user and anonymous reads are denied.
    pytest.param(Access(INTRUDER, "GET", NOTE, 403), id="intruder-reads-note"),
    pytest.param(Access(INTRUDER, "GET", TASK, 403), id="intruder-reads-task"),
    pytest.param(Access(INTRUDER, "GET", f"users/{OWNER}/voiceNotes", 403), id="intruder-lists-notes"),
    pytest.param(Access(INTRUDER, "GET", f"users/{OWNER}/tasks", 403), id="intruder-lists-tasks"),
    pytest.param(Access(None, "GET", NOTE, 403), id="anonymous-reads-note"),
    pytest.param(Access(None, "GET", f"users/{OWNER}/tasks", 403), id="anonymous-lists-tasks"),
    pytest.param(Access(OWNER, "GET", f"users/{OWNER}/quota/uploads", 403), id="owner-reads-quota"),
    pytest.param(Access(OWNER, "GET", "_health/probe", 403), id="owner-reads-health"),
    pytest.param(Access(OWNER, "GET", f"users/{OWNER}", 403), id="owner-reads-user-root"),
    # The owner may change a task's completion and title, nothing else.
    pytest.param(Access(OWNER, "PATCH", TASK, 200, {"completed": True}, masked=True), id="owner-completes-task"),
    pytest.param(
        Access(OWNER, "PATCH", TASK, 200, {"completed": True, "completedAt": NOW}, masked=True),
        id="owner-completes-task-at",
    ),
    pytest.param(Access(OWNER, "PATCH", TASK, 200, {"title": "Call the vet"}, masked=True), id="owner-renames-task"),
    pytest.param(Access(OWNER, "PATCH", TASK, 403, {"noteId": "other"}, masked=True), id="owner-moves-task"),
    pytest.param(Access(OWNER, "PATCH", TASK, 403, {"dueAt": NOW}, masked=True), id="owner-adds-task-field"),
    pytest.param(Access(OWNER, "PATCH", TASK, 403, {"title": ""}, masked=True), id="owner-empties-title"),
    pytest.param(Access(OWNER, "PATCH", TASK, 403, {"title": "x" * 201}, masked=True), id="owner-long-title"),
    pytest.param(Access(OWNER, "PATCH", TASK, 403, {"completed": "yes"}, masked=True), id="owner-completed-string"),
    pytest.param(Access(OWNER, "PATCH", TASK, 403, {"title": "t"}), id="owner-replaces-task"),
    pytest.param(Access(OWNER, "DELETE", TASK, 403), id="owner-deletes-task"),
    pytest.param(
        Access(OWNER, "POST", f"users/{OWNER}/tasks", 403, {"title": "new"}, query="documentId=forged"),
        id="owner-creates-task",
    ),
    pytest.param(Access(INTRUDER, "PATCH", TASK, 403, {"completed": True}, masked=True), id="intruder-completes-task"),
    pytest.param(Access(None, "PATCH", TASK, 403, {"completed": True}, masked=True), id="anonymous-completes-task"),
    # Notes are written only by the functions.
    pytest.param(
        Access(OWNER, "POST", f"users/{OWNER}/voiceNotes", 403, {"status": "awaiting_upload"}, query="documentId=n1"),
        id="owner-creates-note",
    ),
    pytest.param(Access(OWNER, "PATCH", NOTE, 403, {"status": "processing"}, masked=True), id="owner-sets-note-status"),
    pytest.param(Access(OWNER, "DELETE", NOTE, 403), id="owner-deletes-note"),
    pytest.param(
        Access(INTRUDER, "POST", f"users/{OWNER}/voiceNotes", 403, {"status": "done"}, query="documentId=n2"),
        id="intruder-creates-note",
    ),
    # Quota and everything else are closed.
    pytest.param(
        Access(OWNER, "PATCH", f"users/{OWNER}/quota/uploads", 403, {"hourCount": 0}, masked=True),
        id="owner-resets-quota",
    ),
    pytest.param(Access(OWNER, "DELETE", f"users/{OWNER}/quota/uploads", 403), id="owner-deletes-quota"),
    pytest.param(Access(OWNER, "PATCH", "_health/probe", 403, {"at": NOW}), id="owner-writes-health"),
    pytest.param(
        Access(OWNER, "POST", "admin", 403, {"role": "admin"}, query="documentId=owner-uid"), id="owner-writes-root"
    ),
]


@pytest.mark.parametrize("access", ACCESSES)
def test_rules_access(access: Access, seeded: str) -> None:
    client = RulesClient(seeded, access.uid)
    query = _mask(access.body) if access.masked else access.query
    body = _fields(access.body) if access.method in ("PATCH", "POST") else None

    status = client.request(access.method, access.path, json=body, query=query)

    assert status == access.status


def test_rules_keep_denied_writes(seeded: str) -> None:
    intruder = RulesClient(seeded, INTRUDER)
    intruder.request("PATCH", TASK, json=_fields({"completed": True}), query=_mask({"completed": True}))
    owner = RulesClient(seeded, OWNER)
    owner.request("PATCH", NOTE, json=_fields({"status": "processing"}), query=_mask({"status": "processing"}))

    admin = firestore.Client(project=RULES_PROJECT)
    assert stored(admin, TASK)["completed"] is False
    assert stored(admin, NOTE)["status"] == "done"


def test_rules_collection_group_denied(seeded: str) -> None:
    url = f"{seeded}/v1/projects/{RULES_PROJECT}/databases/(default)/documents:runQuery"
    query: dict[str, Any] = {"structuredQuery": {"from": [{"collectionId": "voiceNotes", "allDescendants": True}]}}
    token = emulator_id_token(INTRUDER, RULES_PROJECT)

    reply = requests.post(url, json=query, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_SECONDS)

    assert reply.status_code == 403
