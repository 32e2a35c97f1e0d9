"""Following a note until it is ``done`` or ``failed``, and reading its tasks.

The CLI polls the note document; the REST API has no listener. Each status
change is reported once through a callback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from braindump_cli.exits import CliError, ExitCode
from braindump_cli.firestore_rest import DocumentReader

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"done", "failed"})


@dataclass(frozen=True)
class Clock:
    """Monotonic time and sleep, replaceable in tests."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def note_path(uid: str, note_id: str) -> str:
    """Return the document path of a voice note."""
    return f"users/{uid}/voiceNotes/{note_id}"


def wait_for_final(
    reader: DocumentReader,
    uid: str,
    note_id: str,
    *,
    timeout_seconds: float,
    interval_seconds: float,
    on_status: Callable[[str, dict[str, Any]], None],
    clock: Clock = Clock(),
) -> dict[str, Any]:
    """Poll the note until its status is ``done`` or ``failed`` and return it.

    Raises:
        CliError: the note does not reach a final status within
            ``timeout_seconds`` (exit code ``TIMEOUT``).
    """
    deadline = clock.monotonic() + timeout_seconds
    last_status: str | None = None
    while True:
        note = reader.get(note_path(uid, note_id))
        status = note.get("status") if note else None
        if note is not None and isinstance(status, str) and status != last_status:
            last_status = status
            on_status(status, note)
        if note is not None and status in FINAL_STATUSES:
            return note

        if clock.monotonic() >= deadline:
            raise CliError(
                f"note {note_id} is still {last_status or 'missing'} after {timeout_seconds:.0f} s; "
                "raise --timeout, or check the process_audio log of the stack",
                ExitCode.TIMEOUT,
            )
        clock.sleep(interval_seconds)


def read_tasks(reader: DocumentReader, uid: str, note: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the note's tasks in spoken order, read by the ids in ``taskIds``.

    Getting each task by id needs no query index and is allowed by the security rules.
    """
    tasks: list[dict[str, Any]] = []
    for task_id in note.get("taskIds") or []:
        task = reader.get(f"users/{uid}/tasks/{task_id}")
        if task is None:
            logger.warning("task %s of the note does not exist", task_id)
            continue
        tasks.append({"id": task_id, **task})
    return sorted(tasks, key=lambda task: task.get("index", 0))
