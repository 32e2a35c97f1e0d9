"""Which SDKs each entry point imports, checked in a fresh interpreter per case.

Each case runs ``python -m benchmarks.first_request`` in a new process, which
builds the entry point with ``functions_framework.create_app(target,
"main.py")``, serves one request through Flask's test client and reports
``sys.modules``. The requests succeed against real servers on 127.0.0.1: the
Firestore and Pub/Sub emulators and fake-gcs-server (a
:class:`~devstack.stack.LocalStack` without functions) and the fake Gemini
server. A request that failed early would skip the imports of the steps after
the failure, so every case also asserts the success status and, for
``process_audio``, the stored note.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from benchmarks.context import run_child
from devstack.bridge import StorageEvent, storage_object_data
from devstack.functions_host import function_environment
from devstack.stack import REPO_ROOT, LocalStack
from devstack.tokens import emulator_id_token
from tests.fakes.gemini import FakeGemini

logger = logging.getLogger(__name__)

NOTE_FILE = REPO_ROOT / "samples" / "01-dentist-tomorrow-3pm.m4a"
NOTE_TYPE = "audio/mp4"

GOOGLE_CLOUD_SDKS = ("google.cloud.firestore", "google.cloud.storage", "google.api_core", "google.auth", "grpc")
OFFLINE_ENGINE = (
    "functions.extraction.offline",
    "faster_whisper",
    "ctranslate2",
    "av",
    "ms_recognizers_date_time",
    "ms_recognizers_text",
)
GEMINI = ("google.genai", "functions.extraction.gemini")
FIREBASE = ("firebase_admin", "firebase_admin.auth")


@dataclass(frozen=True)
class Servers:
    """The running emulators and fake Gemini server, with the settings that point at them."""

    stack: LocalStack
    fake: FakeGemini

    def env(self, extractor: str) -> dict[str, str]:
        """Return a function's whole environment with ``extractor`` selected."""
        settings = {**self.stack.functions_env, "EXTRACTOR": extractor}
        if extractor == "gemini":
            settings |= {"GEMINI_API_KEY": "test-key", "GEMINI_BASE_URL": self.fake.base_url}
        return function_environment(settings)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """Emulators, fake-gcs-server and the fake Gemini server on 127.0.0.1, with no function processes."""
    with FakeGemini() as fake:
        stack = LocalStack(functions=())
        stack.start()
        try:
            with pytest.MonkeyPatch.context() as patch:
                for name, value in stack.functions_env.items():
                    patch.setenv(name, value)
                yield Servers(stack=stack, fake=fake)
        finally:
            stack.stop()


def _loaded(result: dict[str, object], names: tuple[str, ...]) -> list[str]:
    modules = set(result["modules"])  # type: ignore[call-overload]
    return [name for name in names if name in modules]


def _serve(
    servers: Servers, target: str, signature_type: str, extractor: str, request: dict[str, object]
) -> dict[str, object]:
    spec = {"mode": "serve", "target": target, "signature_type": signature_type, "requests": [request]}
    return run_child(spec, servers.env(extractor)).result


def _upload_request(servers: Servers, uid: str) -> dict[str, object]:
    token = emulator_id_token(uid, servers.stack.project_id)
    body = {"contentType": NOTE_TYPE, "sizeBytes": NOTE_FILE.stat().st_size, "timezone": "Europe/London"}
    return {
        "method": "POST",
        "path": "/",
        "headers": {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def _awaiting_note(servers: Servers, uid: str, note_id: str) -> StorageEvent:
    """Create an ``awaiting_upload`` note and its object, and return the object's finalize event."""
    from google.cloud import storage

    from functions.clients import firestore_client
    from functions.config import Settings
    from functions.store import QuotaLimits, create_note_with_quota

    settings = Settings.from_env()
    now = dt.datetime.now(dt.UTC)
    object_name = f"voice-notes/{uid}/{note_id}.m4a"
    create_note_with_quota(
        firestore_client(),
        uid=uid,
        note_id=note_id,
        note={
            "contentType": NOTE_TYPE,
            "objectName": object_name,
            "bucket": settings.bucket,
            "timezone": "Europe/London",
            "recordedAt": now,
        },
        limits=QuotaLimits(per_hour=settings.uploads_per_hour, per_day=settings.uploads_per_day),
        now=now,
    )

    blob = storage.Client(project=settings.project_id).bucket(settings.bucket).blob(object_name)
    blob.upload_from_filename(str(NOTE_FILE), content_type=NOTE_TYPE)
    resource = dict(blob._properties)
    return StorageEvent(
        event_id=f"test-{note_id}",
        bucket=resource["bucket"],
        name=resource["name"],
        time=resource["updated"],
        data=storage_object_data(resource, servers.stack.storage.base_url),
    )


def test_main_import_loads_no_sdk(servers: Servers) -> None:
    result = run_child({"mode": "import_main"}, servers.env("gemini")).result

    assert _loaded(result, GOOGLE_CLOUD_SDKS) == []
    assert _loaded(result, FIREBASE) == []
    assert _loaded(result, GEMINI) == []
    assert _loaded(result, OFFLINE_ENGINE) == []


@pytest.mark.parametrize("extractor", ["gemini", "offline"], ids=["gemini-configured", "offline-configured"])
def test_upload_url_imports(servers: Servers, extractor: str) -> None:
    result = _serve(servers, "upload_url", "http", extractor, _upload_request(servers, f"imports-upload-{extractor}"))

    assert result["statuses"] == [201]
    assert _loaded(result, FIREBASE) == list(FIREBASE)
    assert _loaded(result, ("google.cloud.firestore", "google.cloud.storage")) == [
        "google.cloud.firestore",
        "google.cloud.storage",
    ]
    assert _loaded(result, GEMINI) == []
    assert _loaded(result, OFFLINE_ENGINE) == []


def test_health_imports(servers: Servers) -> None:
    request: dict[str, object] = {"method": "GET", "path": "/", "headers": {}, "body": ""}
    result = _serve(servers, "health", "http", "gemini", request)

    assert result["statuses"] == [200]
    assert _loaded(result, ("google.cloud.firestore", "google.cloud.storage")) == [
        "google.cloud.firestore",
        "google.cloud.storage",
    ]
    assert _loaded(result, GEMINI) == list(GEMINI)
    assert _loaded(result, FIREBASE) == []
    assert _loaded(result, OFFLINE_ENGINE) == []


def test_process_audio_imports(servers: Servers) -> None:
    uid = "imports-process"
    note_id = "0123456789abcdef0123456789abcdef"
    event = _awaiting_note(servers, uid, note_id)
    request: dict[str, object] = {
        "method": "POST",
        "path": "/",
        "headers": event.headers(),
        "body": event.body().decode(),
    }

    result = _serve(servers, "process_audio", "cloudevent", "gemini", request)

    from functions.clients import firestore_client

    note = firestore_client().document(f"users/{uid}/voiceNotes/{note_id}").get().to_dict() or {}
    assert result["statuses"] == [200]
    assert note["status"] == "done"
    assert note["taskCount"] == 1
    assert _loaded(result, ("google.cloud.firestore", "google.cloud.storage")) == [
        "google.cloud.firestore",
        "google.cloud.storage",
    ]
    assert _loaded(result, GEMINI) == list(GEMINI)
    assert _loaded(result, FIREBASE) == []
    assert _loaded(result, OFFLINE_ENGINE) == []
