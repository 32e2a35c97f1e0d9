"""Child processes of the local stack: start in their own process group, wait, stop.

Every server of the stack runs in a new session, so that stopping it signals the
whole process group (gunicorn's master and workers, java and any helper it
forks). :meth:`ManagedProcess.stop` returns only once that group is empty.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from functions.errors import BraindumpError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class DevstackError(BraindumpError):
    """A part of the local stack failed to start, stop or respond."""

    code = "devstack_failed"


class MissingDependencyError(DevstackError):
    """A program the local stack runs is not installed. The message names the package."""

    code = "dependency_missing"


class StartupError(DevstackError):
    """A server exited or was not ready within its start-up time."""

    code = "startup_failed"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free when this ran.

    The port is released before returning, so another process can take it in
    between. The servers here bind it within milliseconds, which keeps that rare.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def port_answers(port: int, host: str = LOOPBACK, timeout_seconds: float = 0.5) -> bool:
    """Return True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_seconds: float,
    interval_seconds: float = 0.1,
) -> bool:
    """Poll ``condition`` until it returns True or ``timeout_seconds`` pass.

    Returns:
        True if the condition held before the deadline, otherwise False.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_seconds)


# Loaded in the parent, because loading a library between fork and exec can
# deadlock when other threads exist.
_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. Linux sends SIGTERM to the child
    # when the thread that started it dies, so a killed test run leaves no
    # server behind. NOTE: that is the starting thread, not the process, so
    # start the stack from a thread that lives as long as the stack.
    _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class ManagedProcess:
    """One server process in its own session, with stdout and stderr in log files."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """Process id of the running process (also its process group id), or None."""
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        """Return True while the process has not exited."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process in a new session, appending its output to the log files.

        Raises:
            DevstackError: the process is already running.
            MissingDependencyError: the executable does not exist.
        """
        with self._lock:
            if self.running():
                raise DevstackError(f"{self.name} is already running as pid {self.pid}; stop it first")

            self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
            stdout = self.stdout_path.open("ab")
            stderr = self.stderr_path.open("ab")
            self._files = [stdout, stderr]

            logger.info("starting %s: %s", self.name, " ".join(self.argv))
            try:
                self._process = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    # Runs only prctl() in the child, which is safe even with threads.
                    preexec_fn=_die_with_parent,  # noqa: PLW1509
                )
            except FileNotFoundError as err:
                self._close_files()
                raise MissingDependencyError(
                    f"{self.name}: executable {self.argv[0]!r} was not found; install it"
                ) from err

    def exit_code(self) -> int | None:
        """Return the exit code once the process has exited, otherwise None."""
        return self._process.poll() if self._process is not None else None

    def log_tail(self, max_chars: int = 3000) -> str:
        """Return the end of the stderr and stdout logs, for error messages."""
        parts = []
        for path in (self.stderr_path, self.stdout_path):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace")
                parts.append(f"--- {path.name} ---\n{text[-max_chars:]}")
        return "\n".join(parts)

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Send SIGTERM to the process group, then SIGKILL after ``timeout_seconds``.

        Returns once the leader is reaped and no process of the group is left.
        Does nothing if the process was never started.
        """
        with self._lock:
            process = self._process
            if process is None:
                return

            pgid = process.pid
            self._signal_group(pgid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %d) ignored SIGTERM for %.0f s; sending SIGKILL", self.name, pgid, timeout_seconds)
                self._signal_group(pgid, signal.SIGKILL)
                process.wait(timeout=timeout_seconds)

            # The leader may exit before its children (gunicorn workers), so
            # wait until the group is empty, then kill what remains.
            if not wait_until(lambda: not _group_alive(pgid), timeout_seconds=timeout_seconds):
                logger.warning("%s: processes of group %d outlived the leader; sending SIGKILL", self.name, pgid)
                self._signal_group(pgid, signal.SIGKILL)
                wait_until(lambda: not _group_alive(pgid), timeout_seconds=timeout_seconds)

            logger.info("stopped %s (pid %d, exit code %s)", self.name, pgid, process.returncode)
            self._process = None
            self._close_files()

    def _signal_group(self, pgid: int, signum: signal.Signals) -> None:
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            pass

    def _close_files(self) -> None:
        for handle in self._files:
            handle.close()
        self._files = []


def _group_alive(pgid: int) -> bool:
    """Return True while a process that is not a zombie belongs to group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in brackets may contain spaces, so split after it.
        fields = stat.rsplit(")", 1)[1].split()
        state, process_group = fields[0], int(fields[2])
        if process_group == pgid and state != "Z":
            return True
    return False


def wait_for_server(
    process: ManagedProcess,
    probe: Callable[[], bool],
    *,
    timeout_seconds: float,
    what: str,
) -> None:
    """Wait until ``probe`` returns True, failing early if ``process`` exits.

    Raises:
        StartupError: the process exited, or ``probe`` stayed False for
            ``timeout_seconds``. The message contains the end of its logs.
    """
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        code = process.exit_code()
        if code is not None:
            raise StartupError(
                f"{what} exited with code {code} during start-up; its log ends with:\n{process.log_tail()}"
            )
        if probe():
            return
        time.sleep(0.1)
    raise StartupError(
        f"{what} timed out: not ready within {timeout_seconds:.0f} s; its log ends with:\n{process.log_tail()}"
    )
