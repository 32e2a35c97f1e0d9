"""Terminal output: the tasks table, the note's outcome and the health table."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

logger = logging.getLogger(__name__)

NO_DATE = "—"


def format_due(task: dict[str, Any], zone: ZoneInfo) -> str:
    """Return the due date as the note's local time: ``2026-03-11 15:00 PDT``, ``2026-03-13 (all day)`` or a dash.

    A timed task converts ``dueAt`` into the note's zone. An all-day task shows
    ``dueDate`` unchanged, because it is already a local date.
    """
    due_at = task.get("dueAt")
    if isinstance(due_at, dt.datetime) and not task.get("allDay"):
        return due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    if task.get("dueDate"):
        return f"{task['dueDate']} (all day)"
    return NO_DATE


def tasks_table(tasks: list[dict[str, Any]], zone: ZoneInfo) -> Table:
    """Build the table of tasks, with due dates in ``zone``."""
    table = Table(title=f"Tasks (due dates in {zone.key})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Title")
    table.add_column("Due")
    table.add_column("Repeats")
    table.add_column("Priority")
    table.add_column("Notes")
    for task in tasks:
        table.add_row(
            str(task.get("index", "")),
            str(task.get("title", "")),
            format_due(task, zone),
            task.get("recurrence") or "",
            task.get("priority") or "",
            task.get("notes") or "",
        )
    return table


def print_outcome(console: Console, note: dict[str, Any], tasks: list[dict[str, Any]]) -> None:
    """Print the transcript and the tasks of a done note, or the reason of a failed one."""
    if note.get("status") == "failed":
        failure = note.get("failure") or {}
        console.print(f"[bold red]failed[/]: {failure.get('reason')}: {failure.get('message')}")
        return

    zone = ZoneInfo(str(note.get("timezone") or "UTC"))
    if note.get("transcript"):
        console.print(f"transcript: {note['transcript']}")
    if not tasks:
        console.print("no tasks were found in this note")
        return
    console.print(tasks_table(tasks, zone))


def health_table(body: dict[str, Any]) -> Table:
    """Build the table of the health checks; latency and error appear only when the body has ``checks``."""
    table = Table(title=f"health: {body.get('status')} (version {body.get('version', '?')})", title_justify="left")
    table.add_column("Service")
    table.add_column("Status")
    table.add_column("Latency (ms)", justify="right")
    table.add_column("Error")
    checks = body.get("checks") or {}
    for service, status in (body.get("services") or {}).items():
        check = checks.get(service) or {}
        latency = check.get("latencyMs")
        table.add_row(service, str(status), "" if latency is None else str(latency), check.get("error") or "")
    return table
