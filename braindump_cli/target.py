"""Selection of the backend the CLI calls: the local stack (default) or a deployed one.

Values come from, in order of precedence, command-line flags, environment
variables and a file with the output of ``python -m devstack up``
(``--stack-file`` or ``BRAINDUMP_STACK_FILE``). With ``--token`` (or
``BRAINDUMP_ID_TOKEN``) the CLI uses that Firebase ID token and reads
Firestore through its public REST API; without it, it mints an emulator token
and reads the Firestore emulator.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from braindump_cli.exits import CliError, ExitCode

logger = logging.getLogger(__name__)

UPLOAD_URL_VARIABLE = "BRAINDUMP_UPLOAD_URL"
HEALTH_URL_VARIABLE = "BRAINDUMP_HEALTH_URL"
TOKEN_VARIABLE = "BRAINDUMP_ID_TOKEN"
STACK_FILE_VARIABLE = "BRAINDUMP_STACK_FILE"
PROJECT_VARIABLE = "GOOGLE_CLOUD_PROJECT"
FIRESTORE_EMULATOR_VARIABLE = "FIRESTORE_EMULATOR_HOST"

FIRESTORE_API_URL = "https://firestore.googleapis.com/v1"
DEFAULT_LOCAL_UID = "cli-user"

# The summary lines of `python -m devstack up`, for example
# "#   upload_url     POST http://127.0.0.1:50609".
_SUMMARY_LINE = re.compile(r"^#\s+(upload_url|health)\s+(?:POST|GET)\s+(\S+)\s*$")


@dataclass(frozen=True)
class Target:
    """Endpoints and credentials of one backend.

    ``firestore_url`` is the REST base URL (ending in ``/v1``), or None when
    the emulator host is unknown. ``firestore_bearer`` is the bearer token for
    it: ``owner`` for the emulator, which bypasses the security rules, or the
    user's ID token for a deployed project, which the rules check.
    """

    upload_url: str | None
    health_url: str | None
    project_id: str
    uid: str
    id_token: str
    firestore_url: str | None
    firestore_bearer: str
    local: bool

    def require_upload_url(self) -> str:
        """Return the upload_url endpoint.

        Raises:
            CliError: it is not configured (exit code ``CONFIG``).
        """
        if self.upload_url is None:
            raise CliError(
                f"the upload_url endpoint is unknown; pass --upload-url, set {UPLOAD_URL_VARIABLE}, "
                "or pass --stack-file with the output of 'python -m devstack up'",
                ExitCode.CONFIG,
            )
        return self.upload_url

    def require_health_url(self) -> str:
        """Return the health endpoint.

        Raises:
            CliError: it is not configured (exit code ``CONFIG``).
        """
        if self.health_url is None:
            raise CliError(
                f"the health endpoint is unknown; pass --health-url, set {HEALTH_URL_VARIABLE}, "
                "or pass --stack-file with the output of 'python -m devstack up'",
                ExitCode.CONFIG,
            )
        return self.health_url

    def require_firestore_url(self) -> str:
        """Return the Firestore REST base URL.

        Raises:
            CliError: the emulator host is not configured (exit code ``CONFIG``).
        """
        if self.firestore_url is None:
            raise CliError(
                f"{FIRESTORE_EMULATOR_VARIABLE} is not set, so the note cannot be followed on the local stack; "
                "export the lines that 'python -m devstack up' prints, pass --stack-file, "
                "or pass --token for a deployed backend",
                ExitCode.CONFIG,
            )
        return self.firestore_url


def read_stack_file(path: Path) -> dict[str, str]:
    """Parse the saved output of ``python -m devstack up`` into variables.

    The ``upload_url`` and ``health`` summary lines become
    ``BRAINDUMP_UPLOAD_URL`` and ``BRAINDUMP_HEALTH_URL``; ``export NAME=VALUE``
    lines are taken as they are.

    Raises:
        CliError: the file cannot be read (exit code ``CONFIG``).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CliError(
            f"the stack file {path} could not be read ({err.strerror}); save the output of "
            f"'python -m devstack up' there, for example with '| tee {path}'",
            ExitCode.CONFIG,
        ) from err

    values: dict[str, str] = {}
    for line in text.splitlines():
        summary = _SUMMARY_LINE.match(line)
        if summary:
            name = UPLOAD_URL_VARIABLE if summary.group(1) == "upload_url" else HEALTH_URL_VARIABLE
            values[name] = summary.group(2)
            continue
        if line.startswith("export "):
            words = shlex.split(line.removeprefix("export "))
            if len(words) == 1 and "=" in words[0]:
                name, _, value = words[0].partition("=")
                values[name] = value
    return values


def token_claims(token: str) -> dict[str, Any]:
    """Decode the payload of a JWT without verifying it; the backend verifies the token.

    Raises:
        CliError: the token is not a JWT with a JSON payload (exit code ``CONFIG``).
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise CliError(
            "the ID token is not a JWT (three dot-separated parts); pass a Firebase ID token", ExitCode.CONFIG
        )
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as err:
        raise CliError(
            "the ID token's payload is not base64url-encoded JSON; pass a Firebase ID token", ExitCode.CONFIG
        ) from err
    if not isinstance(claims, dict):
        raise CliError("the ID token's payload is not a JSON object; pass a Firebase ID token", ExitCode.CONFIG)
    return claims


def _lookup(name: str, flag: str | None, environ: Mapping[str, str], stack: Mapping[str, str]) -> str | None:
    for value in (flag, environ.get(name), stack.get(name)):
        if value and value.strip():
            return value.strip()
    return None


def resolve_target(
    *,
    environ: Mapping[str, str],
    upload_url: str | None = None,
    health_url: str | None = None,
    token: str | None = None,
    project_id: str | None = None,
    uid: str | None = None,
    stack_file: Path | None = None,
) -> Target:
    """Combine flags, ``environ`` and the stack file into a :class:`Target`.

    Raises:
        CliError: the stack file cannot be read, or the token cannot be
            decoded (exit code ``CONFIG``).
    """
    stack_path = stack_file or (Path(environ[STACK_FILE_VARIABLE]) if environ.get(STACK_FILE_VARIABLE) else None)
    stack = read_stack_file(stack_path) if stack_path is not None else {}

    upload = _lookup(UPLOAD_URL_VARIABLE, upload_url, environ, stack)
    health = _lookup(HEALTH_URL_VARIABLE, health_url, environ, stack)
    id_token = _lookup(TOKEN_VARIABLE, token, environ, {})

    if id_token is not None:
        claims = token_claims(id_token)
        project = project_id or claims.get("aud")
        subject = claims.get("sub")
        if not isinstance(project, str) or not project or not isinstance(subject, str) or not subject:
            raise CliError(
                "the ID token has no 'aud' (project) or 'sub' (user id) claim; pass a Firebase ID token",
                ExitCode.CONFIG,
            )
        # NOTE: this path reads Firestore's public REST API with the user's
        # ID token; the tests run only the emulator path.
        return Target(upload, health, project, subject, id_token, FIRESTORE_API_URL, id_token, local=False)

    from devstack.stack import PROJECT_ID
    from devstack.tokens import emulator_id_token

    project = _lookup(PROJECT_VARIABLE, project_id, environ, stack) or PROJECT_ID
    emulator = _lookup(FIRESTORE_EMULATOR_VARIABLE, None, environ, stack)
    user = uid or DEFAULT_LOCAL_UID
    return Target(
        upload,
        health,
        project,
        user,
        emulator_id_token(user, project),
        f"http://{emulator}/v1" if emulator else None,
        "owner",
        local=True,
    )
