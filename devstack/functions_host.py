"""The backend's entry points, each run as its own functions-framework server.

Each target runs as ``python -m functions_framework --source main.py --target
NAME --host 127.0.0.1 --port P`` with the interpreter of the current
virtual environment, from the source directory, so the code runs exactly as
Cloud Functions loads it. stdout and stderr go to
``<log_dir>/<target>.stdout.log`` and ``<target>.stderr.log``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from devstack.processes import LOOPBACK, DevstackError, ManagedProcess, free_port, port_answers, wait_for_server

logger = logging.getLogger(__name__)

SignatureType = Literal["http", "cloudevent"]

START_TIMEOUT_SECONDS = 120.0

# Backend settings (functions/config.py) and credentials that must not leak
# from the developer's shell into the local functions: the stack sets what it
# needs and the rest keeps its default.
INHERITED_SETTINGS_DROPPED = (
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "UPLOAD_BUCKET",
    "EXTRACTOR",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_MODEL",
    "GEMINI_BASE_URL",
    "GEMINI_ATTEMPT_TIMEOUT_SECONDS",
    "GEMINI_MAX_OUTPUT_TOKENS",
    "GEMINI_AUDIO_TYPE_OVERRIDES",
    "MAX_UPLOAD_BYTES",
    "MAX_AUDIO_SECONDS",
    "UPLOAD_URL_TTL_SECONDS",
    "FUNCTION_TIMEOUT_SECONDS",
    "MAX_EVENT_AGE_SECONDS",
    "UPLOADS_PER_HOUR",
    "UPLOADS_PER_DAY",
    "SIGNING_KEY_FILE",
    "SIGNING_SERVICE_ACCOUNT",
    "CHECK_REVOKED",
    "DELETE_AUDIO_AFTER_DONE",
    "DELETE_AUDIO_AFTER_FAILED",
    "HEALTH_GEMINI_CACHE_SECONDS",
    "HEALTH_PROBE_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "FIRESTORE_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "FIREBASE_AUTH_EMULATOR_HOST",
    "FUNCTION_TARGET",
    "FUNCTION_SOURCE",
    "FUNCTION_SIGNATURE_TYPE",
    "HOST",
    "PORT",
)


@dataclass(frozen=True)
class FunctionSpec:
    """One entry point of main.py."""

    target: str
    signature_type: SignatureType


BACKEND_FUNCTIONS = (
    FunctionSpec("upload_url", "http"),
    FunctionSpec("process_audio", "cloudevent"),
    FunctionSpec("health", "http"),
)


def function_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """Return the process environment of a function: this process's, minus backend settings, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if key not in INHERITED_SETTINGS_DROPPED}
    env.update(settings)
    return env


class FunctionsHost:
    """Runs every :class:`FunctionSpec` as a functions-framework server on 127.0.0.1.

    Ports are chosen once and kept across :meth:`stop` and :meth:`start`, so
    URLs handed out stay valid after a restart.
    """

    def __init__(
        self,
        *,
        source_dir: Path,
        log_dir: Path,
        settings: Mapping[str, str],
        functions: tuple[FunctionSpec, ...] = BACKEND_FUNCTIONS,
        source_file: str = "main.py",
    ) -> None:
        self.source_dir = source_dir
        self.source_file = source_file
        self.log_dir = log_dir
        self.settings = dict(settings)
        self.functions = functions
        self.ports = {spec.target: free_port() for spec in functions}
        self._processes: dict[str, ManagedProcess] = {}

    def url(self, target: str) -> str:
        """Return the URL of ``target``."""
        if target not in self.ports:
            raise DevstackError(f"unknown function {target!r}; known: {', '.join(self.ports)}")
        return f"http://{LOOPBACK}:{self.ports[target]}"

    def pids(self) -> dict[str, int]:
        """Return the process id of each running function server."""
        return {target: process.pid for target, process in self._processes.items() if process.pid is not None}

    def log_paths(self, target: str) -> tuple[Path, Path]:
        """Return the stdout and stderr log paths of ``target``."""
        stem = self.log_dir / f"function-{target}"
        return Path(f"{stem}.stdout.log"), Path(f"{stem}.stderr.log")

    def start(self, timeout_seconds: float = START_TIMEOUT_SECONDS) -> None:
        """Start every function and wait until each port accepts connections.

        Raises:
            DevstackError: the source file is missing or a port is taken.
            StartupError: a function exited (an import error in main.py, for
                example) or did not listen in time; the message has its log.
        """
        source = self.source_dir / self.source_file
        if not source.is_file():
            raise DevstackError(f"function source {source} was not found; pass the directory that contains {self.source_file}")

        env = function_environment(self.settings)
        try:
            for spec in self.functions:
                port = self.ports[spec.target]
                if port_answers(port):
                    raise DevstackError(f"port {port} for function {spec.target} is already in use; stop the process that listens on it")
                argv = [
                    sys.executable, "-m", "functions_framework",
                    "--source", self.source_file,
                    "--target", spec.target,
                    "--signature-type", spec.signature_type,
                    "--host", LOOPBACK,
                    "--port", str(port),
                ]  # fmt: skip
                process = ManagedProcess(f"function-{spec.target}", argv, log_dir=self.log_dir, env=env, cwd=self.source_dir)
                process.start()
                self._processes[spec.target] = process

            # functions-framework imports main.py before it binds the port, so
            # a listening port means the module loaded.
            for spec in self.functions:
                port = self.ports[spec.target]
                wait_for_server(
                    self._processes[spec.target],
                    lambda port=port: port_answers(port),  # type: ignore[misc]
                    timeout_seconds=timeout_seconds,
                    what=f"function {spec.target} on port {port}",
                )
                logger.info("function %s is ready at %s", spec.target, self.url(spec.target))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every function server and its workers."""
        for target in list(self._processes):
            self._processes.pop(target).stop()

    def restart(self, settings: Mapping[str, str] | None = None) -> None:
        """Stop, replace the settings when given, and start again on the same ports."""
        self.stop()
        if settings is not None:
            self.settings = dict(settings)
        self.start()

    def log_size(self, target: str) -> tuple[int, int]:
        """Return the current sizes of ``target``'s stdout and stderr logs, as a read offset."""
        return tuple(path.stat().st_size if path.exists() else 0 for path in self.log_paths(target))  # type: ignore[return-value]

    def log_text(self, target: str, since: tuple[int, int] = (0, 0)) -> str:
        """Return what ``target`` wrote to stdout then stderr after the offsets ``since``."""
        parts = []
        for path, offset in zip(self.log_paths(target), since, strict=True):
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(offset)
                    parts.append(handle.read().decode("utf-8", errors="replace"))
        return "".join(parts)

    def json_logs(self, target: str, since: tuple[int, int] = (0, 0)) -> list[dict[str, Any]]:
        """Return the log lines of ``target`` that are JSON objects, stdout first."""
        records = []
        for line in self.log_text(target, since).splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records
