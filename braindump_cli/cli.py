"""Command line: ``braindump upload`` and ``braindump health``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from braindump_cli import __version__
from braindump_cli.api import get_health, put_audio, request_upload
from braindump_cli.exits import EXIT_CODE_HELP, CliError, ExitCode
from braindump_cli.firestore_rest import DocumentReader
from braindump_cli.follow import read_tasks, wait_for_final
from braindump_cli.render import health_table, print_outcome
from braindump_cli.target import (
    FIRESTORE_EMULATOR_VARIABLE,
    HEALTH_URL_VARIABLE,
    PROJECT_VARIABLE,
    STACK_FILE_VARIABLE,
    TOKEN_VARIABLE,
    UPLOAD_URL_VARIABLE,
    Target,
    resolve_target,
)

logger = logging.getLogger(__name__)

# Extensions that functions.audio does not use in object names but phones produce.
EXTRA_EXTENSIONS = {"opus": "audio/ogg", "oga": "audio/ogg", "mp4": "audio/mp4"}



def _json_value(value: object) -> str:
    """Render a value ``json`` cannot: timestamps as RFC 3339, anything else as text."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def timezone_argument(value: str) -> str:
    """Return ``value`` if it is an IANA time zone; argparse turns the error into exit code 2."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise argparse.ArgumentTypeError(f"'{value}' is not an IANA time zone such as Europe/Berlin") from err
    return value


def recorded_at_argument(value: str) -> str:
    """Return ``value`` if it is an ISO 8601 date-time with a UTC offset."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not an ISO 8601 date-time such as 2026-03-10T18:30:00-07:00"
        ) from err
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"'{value}' has no UTC offset; add one, for example 2026-03-10T18:30:00-07:00")
    return parsed.isoformat()


def positive_seconds(value: str) -> float:
    """Return ``value`` as a positive number of seconds."""
    try:
        seconds = float(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number of seconds") from err
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be above 0 seconds")
    return seconds


def _exit_codes_epilog() -> str:
    lines = ["exit codes:"]
    lines.extend(f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_HELP.items())
    return "\n".join(lines)


def _add_backend_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """Add the options every command takes.

    They are accepted before and after the command name. The copy on each
    subcommand suppresses its defaults, so it cannot overwrite a value given
    before the command name.
    """
    default: Any = argparse.SUPPRESS if suppress_defaults else None
    backend = parser.add_argument_group("backend (flags win over environment variables, which win over --stack-file)")
    backend.add_argument(
        "--upload-url", metavar="URL", default=default, help=f"upload_url endpoint (env {UPLOAD_URL_VARIABLE})"
    )
    backend.add_argument(
        "--health-url", metavar="URL", default=default, help=f"health endpoint (env {HEALTH_URL_VARIABLE})"
    )
    backend.add_argument(
        "--stack-file",
        type=Path,
        metavar="FILE",
        default=default,
        help=f"saved output of 'python -m devstack up' to read endpoints and emulator hosts from (env {STACK_FILE_VARIABLE})",
    )
    backend.add_argument(
        "--token",
        metavar="ID_TOKEN",
        default=default,
        help=f"Firebase ID token for a deployed backend (env {TOKEN_VARIABLE}); without it the CLI uses the local "
        f"stack with an emulator token and reads the emulator at {FIRESTORE_EMULATOR_VARIABLE}",
    )
    backend.add_argument(
        "--project",
        metavar="ID",
        default=default,
        help=f"Firebase project id (env {PROJECT_VARIABLE}; default: the token's audience, or demo-braindump)",
    )
    backend.add_argument(
        "--uid",
        metavar="UID",
        default=default,
        help="user id of the emulator token on the local stack (default cli-user)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if suppress_defaults else False,
        help="log each step and show tracebacks",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``braindump`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="braindump",
        description="Upload a voice note to the Braindumpster backend, follow it and print its tasks.",
        epilog=_exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_backend_options(parser, suppress_defaults=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    upload = commands.add_parser(
        "upload",
        help="upload a recording and print the tasks found in it",
        description="Request a signed URL, upload the file with a progress bar, follow the note until\n"
        "it is done or failed, and print its tasks with due dates in the note's time zone.",
        epilog=_exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_backend_options(upload, suppress_defaults=True)
    upload.add_argument(
        "file", type=Path, metavar="FILE", help="audio file: m4a, mp4, 3gp, aac, ogg, opus, webm, mp3, wav or flac"
    )
    upload.add_argument(
        "--timezone",
        required=True,
        type=timezone_argument,
        metavar="ZONE",
        help="IANA time zone of the recording, such as Europe/Berlin",
    )
    upload.add_argument(
        "--content-type", metavar="TYPE", help="content type to declare (default: from the file extension)"
    )
    upload.add_argument(
        "--recorded-at",
        type=recorded_at_argument,
        metavar="TIME",
        help="when recording started, ISO 8601 with offset (default: the backend's time of the request)",
    )
    upload.add_argument(
        "--timeout",
        type=positive_seconds,
        default=300.0,
        metavar="SECONDS",
        help="seconds to wait for the note to finish (default 300)",
    )
    upload.add_argument(
        "--interval",
        type=positive_seconds,
        default=0.5,
        metavar="SECONDS",
        help="seconds between reads of the note (default 0.5)",
    )
    upload.add_argument("--no-follow", action="store_true", help="print the note id after the upload and exit")
    upload.add_argument(
        "--json", action="store_true", help="print the final note and its tasks as JSON instead of a table"
    )

    health = commands.add_parser(
        "health",
        help="probe the backend's health function",
        description="Call health and print the status of each service.\n"
        "Exit 0 when healthy, 12 when degraded, 13 when unhealthy.",
        epilog=_exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_backend_options(health, suppress_defaults=True)
    health.add_argument("--json", action="store_true", help="print the response body as JSON")
    return parser


def content_type_for(path: Path, declared: str | None) -> str:
    """Return ``declared``, or the canonical type for the file's extension.

    Raises:
        CliError: the extension is unknown and no type was given (exit code ``FILE``).
    """
    if declared:
        return declared

    from functions.audio import audio_type_for_extension

    extension = path.suffix.lower().removeprefix(".")
    audio_type = audio_type_for_extension(extension)
    if audio_type is not None:
        return audio_type.mime
    if extension in EXTRA_EXTENSIONS:
        return EXTRA_EXTENSIONS[extension]
    raise CliError(
        f"the content type of {path.name} is unknown for the extension '.{extension}'; pass --content-type",
        ExitCode.FILE,
    )


def _file_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError as err:
        raise CliError(f"the audio file {path} does not exist; pass the path of a recording", ExitCode.FILE) from err
    except OSError as err:
        raise CliError(f"the audio file {path} cannot be read: {err.strerror}", ExitCode.FILE) from err
    if not path.is_file():
        raise CliError(f"{path} is not a file; pass the path of a recording", ExitCode.FILE)
    if not os.access(path, os.R_OK):
        raise CliError(f"the audio file {path} is not readable; check its permissions", ExitCode.FILE)
    if size == 0:
        raise CliError(f"the audio file {path} is empty; record the note again", ExitCode.FILE)
    return size


def _upload_with_progress(err_console: Console, ticket: Any, path: Path, size: int) -> None:
    progress = Progress(
        TextColumn("uploading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=not err_console.is_terminal,
    )
    with progress:
        bar = progress.add_task(path.name, total=size)
        put_audio(ticket, path, lambda count: progress.advance(bar, count))


def run_upload(args: argparse.Namespace, target: Target, out: Console, err_console: Console) -> ExitCode:
    """Run ``braindump upload``; return the exit code for a note that finished."""
    path: Path = args.file
    size = _file_size(path)
    content_type = content_type_for(path, args.content_type)

    # Check the Firestore endpoint before the upload, so a missing setting costs no quota.
    firestore_url = target.require_firestore_url() if not args.no_follow else None
    logger.debug("requesting an upload URL for %s (%s, %d bytes)", path.name, content_type, size)
    ticket = request_upload(
        target.require_upload_url(),
        target.id_token,
        content_type=content_type,
        size_bytes=size,
        timezone=args.timezone,
        recorded_at=args.recorded_at,
    )
    err_console.print(f"note {ticket.note_id}: uploading {path.name} as {ticket.headers.get('Content-Type')}")

    started = time.monotonic()
    _upload_with_progress(err_console, ticket, path, size)
    if args.no_follow or firestore_url is None:
        out.print(ticket.note_id)
        return ExitCode.OK

    def report(status: str, note: dict[str, Any]) -> None:
        attempt = f", attempt {note.get('attempt')}" if status == "processing" else ""
        err_console.print(f"{time.monotonic() - started:6.1f} s  {status}{attempt}")

    logger.debug("following note %s of user %s at %s", ticket.note_id, target.uid, firestore_url)
    reader = DocumentReader(firestore_url, target.project_id, target.firestore_bearer)
    try:
        note = wait_for_final(
            reader,
            target.uid,
            ticket.note_id,
            timeout_seconds=args.timeout,
            interval_seconds=args.interval,
            on_status=report,
        )
        tasks = read_tasks(reader, target.uid, note) if note.get("status") == "done" else []
    finally:
        reader.close()

    if args.json:
        out.print_json(json.dumps({"noteId": ticket.note_id, "note": note, "tasks": tasks}, default=_json_value))
    else:
        print_outcome(out, note, tasks)

    if note.get("status") == "failed":
        failure = note.get("failure") or {}
        raise CliError(f"note {ticket.note_id} failed with reason {failure.get('reason')}", ExitCode.NOTE_FAILED)
    return ExitCode.OK


def run_health(args: argparse.Namespace, target: Target, out: Console) -> ExitCode:
    """Run ``braindump health``; return 0, ``DEGRADED`` or ``UNHEALTHY``."""
    status_code, body = get_health(target.require_health_url(), target.id_token)
    if args.json:
        out.print_json(json.dumps(body))
    else:
        out.print(health_table(body))

    if body.get("status") == "healthy" and status_code == 200:
        return ExitCode.OK
    if body.get("status") == "degraded" and status_code == 200:
        return ExitCode.DEGRADED
    return ExitCode.UNHEALTHY


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse the command line, run the command and return the exit code.

    argparse raises ``SystemExit(2)`` for an invalid command line.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Only this package logs at debug level: urllib3's debug lines contain the
    # signed URL, which is a credential.
    logging.getLogger("braindump_cli").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    # soft_wrap keeps each message on one line, so scripts can grep it.
    out = Console(soft_wrap=True)
    err_console = Console(stderr=True, soft_wrap=True)

    try:
        target = resolve_target(
            environ=os.environ if environ is None else environ,
            upload_url=args.upload_url,
            health_url=args.health_url,
            token=args.token,
            project_id=args.project,
            uid=args.uid,
            stack_file=args.stack_file,
        )
        if args.command == "upload":
            return int(run_upload(args, target, out, err_console))
        return int(run_health(args, target, out))
    except CliError as err:
        err_console.print(f"braindump: error: {err.message}", highlight=False, markup=False)
        return int(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("braindump: interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception as err:
        logger.debug("unexpected error", exc_info=True)
        err_console.print(
            f"braindump: error: unexpected {type(err).__name__}: {err}; run again with --verbose for the traceback",
            highlight=False,
            markup=False,
        )
        return int(ExitCode.INTERNAL)
