"""Exit codes of the CLI and the errors that carry them.

Every error the CLI raises on purpose is a :class:`CliError`, a
:class:`~functions.errors.BraindumpError` with an exit code; ``main`` prints
its message and exits with that code.
"""

from __future__ import annotations

import enum
import logging

from functions.errors import BraindumpError

logger = logging.getLogger(__name__)


class ExitCode(enum.IntEnum):
    """Process exit status; each failure kind has its own value so scripts can branch on it."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONFIG = 3
    FILE = 4
    REJECTED = 5
    AUTH = 6
    QUOTA = 7
    UNAVAILABLE = 8
    UPLOAD_FAILED = 9
    NOTE_FAILED = 10
    TIMEOUT = 11
    DEGRADED = 12
    UNHEALTHY = 13
    INTERRUPTED = 130


EXIT_CODE_HELP: dict[ExitCode, str] = {
    ExitCode.OK: "the note is done, or health is healthy",
    ExitCode.INTERNAL: "an unexpected error in the CLI itself",
    ExitCode.USAGE: "invalid command line",
    ExitCode.CONFIG: "an endpoint, project or emulator host is not set, or the token cannot be read",
    ExitCode.FILE: "the audio file does not exist, cannot be read or has an unknown type",
    ExitCode.REJECTED: "upload_url rejected the request (HTTP 400, 405 or 413)",
    ExitCode.AUTH: "upload_url rejected the ID token (HTTP 401)",
    ExitCode.QUOTA: "the upload quota is used up (HTTP 429)",
    ExitCode.UNAVAILABLE: "the backend or Firestore could not be reached, or returned 5xx",
    ExitCode.UPLOAD_FAILED: "the PUT to the signed URL failed",
    ExitCode.NOTE_FAILED: "the note ended 'failed'; the reason is printed",
    ExitCode.TIMEOUT: "the note was not done or failed within --timeout",
    ExitCode.DEGRADED: "health is degraded (the extractor failed its probe)",
    ExitCode.UNHEALTHY: "health is unhealthy (HTTP 503)",
    ExitCode.INTERRUPTED: "interrupted with Ctrl-C",
}


class CliError(BraindumpError):
    """A failure the CLI reports as one sentence and an exit code."""

    code = "cli_error"
    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, exit_code: ExitCode, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.exit_code = exit_code
