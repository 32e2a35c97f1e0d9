"""Fixtures for the reliability suite: the local stack, the fake Gemini and shared helpers.

The stack fixtures (``stack``, ``clean_stack``, ``backend``, ``mint_token``)
come from ``tests/conftest.py``, so one stack serves the whole session.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.client import BackendClient, UploadTicket
from devstack.stack import DEVSTACK_DIR, REPO_ROOT, LocalStack
from tests.fakes.gemini import FakeGemini, Script, Step

logger = logging.getLogger(__name__)


MANIFEST: dict[str, Any] = json.loads((REPO_ROOT / "samples" / "manifest.json").read_text(encoding="utf-8"))
ENTRIES: dict[str, dict[str, Any]] = {entry["file"]: entry for entry in MANIFEST["files"]}
SPEECH_SAMPLES: list[str] = [entry["file"] for entry in MANIFEST["files"] if entry.get("kind") == "synthetic-speech"]

# Settings of the functions while this suite runs. A short function timeout
# keeps leases (and so takeovers) short. COMMIT_RESERVE_SECONDS (20 s) comes
# off it, which leaves the Gemini retries 20 s per delivery.
FUNCTION_TIMEOUT_SECONDS = 40
GEMINI_ENV = {
    "EXTRACTOR": "gemini",
    "GEMINI_API_KEY": "test-key",
    "FUNCTION_TIMEOUT_SECONDS": str(FUNCTION_TIMEOUT_SECONDS),
    "GEMINI_ATTEMPT_TIMEOUT_SECONDS": "10",
}
BRIDGE_INITIAL_BACKOFF_SECONDS = 0.5
BRIDGE_MAX_BACKOFF_SECONDS = 2.0
FIGURES_PATH = DEVSTACK_DIR / "reliability-figures.json"


@pytest.fixture(scope="package")
def gemini_functions(stack: LocalStack) -> Iterator[FakeGemini]:
    """The fake Gemini, with the stack's functions switched to it and the bridge retrying fast.

    The functions go back to the offline extractor and the bridge to its
    backoff after the last reliability test, so later folders see the usual stack.
    """
    original_bridge = stack.bridge.config
    with FakeGemini(Script(fallback=Step("echo")), api_key="test-key") as fake:
        stack.restart_functions({**GEMINI_ENV, "GEMINI_BASE_URL": fake.base_url})
        stack.bridge.config = dataclasses.replace(
            original_bridge,
            initial_backoff_seconds=BRIDGE_INITIAL_BACKOFF_SECONDS,
            max_backoff_seconds=BRIDGE_MAX_BACKOFF_SECONDS,
        )
        try:
            yield fake
        finally:
            stack.bridge.config = original_bridge
            stack.restart_functions({"EXTRACTOR": "offline"})


@pytest.fixture
def gemini(gemini_functions: FakeGemini, clean_stack: LocalStack) -> FakeGemini:
    """The fake Gemini on a clean stack, returning the tasks that the sample manifest lists."""
    gemini_functions.load(Script(fallback=Step("echo")))
    return gemini_functions


_FIGURES: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="session")
def figures() -> dict[str, dict[str, Any]]:
    """Figures that tests record by name, printed at the end of the run and written to ``FIGURES_PATH``."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the recorded figures and write them to ``FIGURES_PATH``.

    The file is outside the stack's run directory, which a later stack removes.
    """
    if not _FIGURES:
        return
    FIGURES_PATH.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_PATH.write_text(json.dumps(_FIGURES, indent=2, sort_keys=True), encoding="utf-8")
    terminalreporter.section("reliability figures")
    for name, values in sorted(_FIGURES.items()):
        terminalreporter.write_line(f"{name}: {json.dumps(values, sort_keys=True)}")
    terminalreporter.write_line(f"written to {FIGURES_PATH}")


def upload_samples(backend: BackendClient, uploads: list[tuple[str, Path]], *, workers: int = 8) -> list[UploadTicket]:
    """Request a ticket and PUT the file for each ``(uid, path)``, several at once.

    Each file is declared with the MIME type, zone and recording time from
    the manifest.
    """

    def one(item: tuple[str, Path]) -> UploadTicket:
        uid, path = item
        entry = ENTRIES[path.name]
        return backend.upload(
            backend.token(uid),
            path,
            content_type=entry["mime_type"],
            timezone=entry["reference"]["time_zone"],
            recorded_at=entry["reference"]["recorded_at"],
        )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, uploads))


def wait_final(backend: BackendClient, notes: list[tuple[str, str]], *, timeout_seconds: float) -> dict[str, dict[str, Any]]:
    """Wait until every ``(uid, note_id)`` is ``done`` or ``failed``; return the documents by note id.

    Raises:
        AssertionError: a note was not final within ``timeout_seconds``; the
            message lists the notes still open with their status.
    """
    deadline = time.monotonic() + timeout_seconds
    final: dict[str, dict[str, Any]] = {}
    while True:
        for uid, note_id in notes:
            if note_id in final:
                continue
            note = backend.note(uid, note_id)
            if note is not None and note.get("status") in ("done", "failed"):
                final[note_id] = note
        if len(final) == len(notes):
            return final
        if time.monotonic() >= deadline:
            open_notes = {note_id: (backend.note(uid, note_id) or {}).get("status") for uid, note_id in notes if note_id not in final}
            raise AssertionError(f"{len(open_notes)} notes were not final within {timeout_seconds:.0f} s: {open_notes}")
        time.sleep(0.25)


def expected_task_ids(note_id: str, sample: str) -> list[str]:
    """Return the task ids that the echo step produces for ``sample``, in order."""
    return [f"{note_id}-{index:02d}" for index in range(len(ENTRIES[sample]["expected_tasks"]))]


def object_resource(stack: LocalStack, name: str) -> dict[str, Any]:
    """Return the JSON API resource of an object in the stack's bucket."""
    quoted = requests.utils.quote(name, safe="")
    reply = requests.get(f"{stack.storage.base_url}/storage/v1/b/{stack.bucket}/o/{quoted}", timeout=10)
    assert reply.status_code == 200, f"object {name} not found: HTTP {reply.status_code}"
    resource: dict[str, Any] = reply.json()
    return resource

