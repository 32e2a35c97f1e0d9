"""Send one voice note through the local stack and print the tasks it produced.

``python -m devstack.demo [FILE] [--timezone ZONE]`` starts the stack with the
offline extractor and requests an upload URL as a local user. It PUTs the file
with exactly the returned headers and waits for the note to be ``done`` or
``failed``. Then it prints the tasks with due dates in the note's time zone and
stops the stack. Exits 1 when the note failed or anything else went wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devstack.client import BackendClient
from devstack.stack import REPO_ROOT, LocalStack
from functions.errors import BraindumpError

logger = logging.getLogger(__name__)

SAMPLES_DIR = REPO_ROOT / "samples"
DEFAULT_FILE = SAMPLES_DIR / "01-dentist-tomorrow-3pm.m4a"
DEMO_UID = "demo-user"
DEMO_EMAIL = "demo-user@example.com"


@dataclass(frozen=True)
class Recording:
    """A file to upload and what the phone would send with it."""

    path: Path
    content_type: str
    timezone: str
    recorded_at: str


def manifest_entry(path: Path) -> dict[str, Any] | None:
    """Return the ``samples/manifest.json`` entry for ``path``, or None."""
    manifest = SAMPLES_DIR / "manifest.json"
    if not manifest.is_file():
        return None
    files = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
    return next((entry for entry in files if entry.get("file") == path.name), None)


def describe_recording(path: Path, timezone: str | None) -> Recording:
    """Work out content type, time zone and recording time for ``path``.

    A file listed in ``samples/manifest.json`` takes its values from there;
    any other file gets the content type from its extension and is recorded now.
    ``timezone`` overrides the time zone in both cases.

    Raises:
        SystemExit: the file or the time zone does not exist.
    """
    if not path.is_file():
        raise SystemExit(f"audio file {path} was not found; pass the path of an existing file")
    entry = manifest_entry(path)

    if entry is not None:
        content_type = entry["mime_type"]
        zone = timezone or entry["reference"]["time_zone"]
    else:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        zone = timezone or "UTC"
    try:
        zone_info = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise SystemExit(f"time zone {zone!r} is invalid; pass an IANA name such as Europe/Berlin") from err

    if entry is not None and timezone in (None, entry["reference"]["time_zone"]):
        recorded_at = entry["reference"]["recorded_at"]
    elif entry is not None:
        # Same wall-clock moment as the manifest's, in the zone asked for.
        local = datetime.fromisoformat(entry["reference"]["recorded_at_local"])
        recorded_at = local.replace(tzinfo=zone_info).isoformat()
    else:
        recorded_at = datetime.now(zone_info).isoformat(timespec="seconds")
    return Recording(path=path, content_type=content_type, timezone=zone, recorded_at=recorded_at)


def format_due(task: dict[str, Any], zone: ZoneInfo) -> str:
    """Return the task's due date as the note's local time, or a placeholder."""
    due_at = task.get("dueAt")
    if isinstance(due_at, datetime):
        local = due_at.astimezone(zone)
        return local.strftime("%Y-%m-%d") if task.get("allDay") else local.strftime("%Y-%m-%d %H:%M %Z")
    if task.get("dueDate"):
        return f"{task['dueDate']} (all day)"
    return "no due date"


def print_result(note: dict[str, Any], tasks: list[dict[str, Any]], zone_name: str, seconds: float) -> None:
    """Print the note's outcome, its tasks and the upload-to-final time."""
    zone = ZoneInfo(note.get("timezone") or zone_name)
    print(f"note status: {note.get('status')}")
    if note.get("status") == "failed":
        failure = note.get("failure") or {}
        print(f"failure: {failure.get('reason')}: {failure.get('message')}")
    if note.get("transcript"):
        print(f"transcript: {note['transcript']}")
    print(f"tasks ({len(tasks)}), due dates in {zone.key}:")
    for task in tasks:
        line = f"  - {task.get('title')}  [{format_due(task, zone)}]"
        if task.get("recurrence"):
            line += f"  repeats: {task['recurrence']}"
        print(line)
        if task.get("notes"):
            print(f"      {task['notes']}")
    print(f"upload to {note.get('status')}: {seconds:.1f} s")


def run(recording: Recording, timeout_seconds: float) -> int:
    """Start the stack, send ``recording`` through it, print the result; return the exit code."""
    stack = LocalStack(extra_env={"EXTRACTOR": "offline"})
    try:
        stack.start()
        os.environ.update(stack.client_env)
        client = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
        token = client.token(DEMO_UID, DEMO_EMAIL)

        ticket = client.ticket(
            token,
            content_type=recording.content_type,
            size_bytes=recording.path.stat().st_size,
            timezone=recording.timezone,
            recorded_at=recording.recorded_at,
        )
        print(f"note {ticket.note_id}: uploading {recording.path.name} ({recording.content_type})")

        started = time.monotonic()
        reply = client.put_file(ticket, recording.path)
        if not 200 <= reply.status_code < 300:
            print(f"upload failed with HTTP {reply.status_code}: {reply.text[:300]}", file=sys.stderr)
            return 1
        note = client.wait_for_note(DEMO_UID, ticket.note_id, timeout_seconds=timeout_seconds)
        elapsed = time.monotonic() - started

        print_result(note, client.tasks(DEMO_UID, ticket.note_id), recording.timezone, elapsed)
        return 0 if note.get("status") == "done" else 1
    except BraindumpError as err:
        print(f"demo failed: {err.message}", file=sys.stderr)
        print(f"logs: {stack.log_dir}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE, help="audio file to upload")
    parser.add_argument("--timezone", help="IANA time zone of the recording (default: the sample's, else UTC)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the note (default 600)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    recording = describe_recording(args.file, args.timezone)
    try:
        return run(recording, args.timeout)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
