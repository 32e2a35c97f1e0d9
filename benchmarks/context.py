"""The running stack every benchmark shares, and the helpers that drive it.

One :class:`~devstack.stack.LocalStack` runs for the whole suite with the
Gemini extractor pointed at an in-process :class:`~tests.fakes.gemini.FakeGemini`
in echo mode, and with upload quotas raised so the load benchmark is never
rejected. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devstack.bridge import StorageEvent, storage_object_data
from devstack.client import BackendClient, UploadTicket
from devstack.functions_host import function_environment
from devstack.processes import DevstackError
from devstack.stack import REPO_ROOT, LocalStack
from devstack.tokens import emulator_id_token
from tests.fakes.gemini import FakeGemini

logger = logging.getLogger(__name__)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SAMPLES_DIR = REPO_ROOT / "samples"
SHORT_NOTE = SAMPLES_DIR / "01-dentist-tomorrow-3pm.m4a"
SHORT_NOTE_TYPE = "audio/mp4"
NOTE_TIMEZONE = "Europe/London"

# Quotas far above what the suite sends, so no request is rejected for quota.
UNLIMITED_UPLOADS = "1000000"
# Nothing listens on the discard port, so a paused bridge fails its deliveries at once.
CLOSED_TARGET = "http://127.0.0.1:9"
BRIDGE_WAIT_SECONDS = 30.0
CHILD_TIMEOUT_SECONDS = 180.0
HTTP_TIMEOUT_SECONDS = 60.0


def machine_info() -> dict[str, Any]:
    """Return the CPU model, logical CPU count, memory, Python version and load average."""
    model = "unknown"
    cpus = 0
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                cpus += 1

    memory_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])

    return {
        "cpu_model": model,
        "logical_cpus": cpus,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "load_average": list(os.getloadavg()),
    }


@dataclass(frozen=True)
class ChildRun:
    """One fresh interpreter run of :mod:`benchmarks.first_request`."""

    seconds: float
    """Process start to ``ready_at`` (first response, or end of the floor's imports)."""
    cpu_seconds: float
    """CPU time the child used until ``ready_at``, which other load on the machine affects less than wall time."""
    result: dict[str, Any]


def run_child(spec: Mapping[str, Any], env: Mapping[str, str], python_options: tuple[str, ...] = ()) -> ChildRun:
    """Run ``python -m benchmarks.first_request`` with ``spec`` and return its timing and result.

    Args:
        spec: The child's spec (see :mod:`benchmarks.first_request`).
        env: The child's whole environment.
        python_options: Interpreter options such as ``("-X", "importtime")``; the
            child's stderr is then returned in the result as ``stderr``.

    Raises:
        DevstackError: the child exited with an error; the message has its stderr.
    """
    with tempfile.TemporaryDirectory(prefix="bench-child-") as scratch:
        spec_path = Path(scratch) / "spec.json"
        result_path = Path(scratch) / "result.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")

        argv = [sys.executable, *python_options, "-m", "benchmarks.first_request", str(spec_path), str(result_path)]
        started = time.monotonic()
        completed = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0 or not result_path.exists():
            raise DevstackError(
                f"benchmark child for {spec.get('target', spec.get('mode'))} exited with {completed.returncode}: "
                f"{completed.stderr[-3000:]}"
            )
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))

    if python_options:
        result["stderr"] = completed.stderr
    return ChildRun(seconds=result["ready_at"] - started, cpu_seconds=result["ready_cpu_seconds"], result=result)


@dataclass
class BenchContext:
    """The stack, the fake Gemini server and a client, shared by the benchmarks."""

    stack: LocalStack
    fake: FakeGemini
    client: BackendClient
    _uids: Iterator[int] = field(default_factory=itertools.count)

    def new_uid(self, label: str) -> str:
        """Return a uid no earlier call returned, so each user starts with empty counters."""
        return f"bench-{label}-{os.getpid()}-{next(self._uids)}"

    def token(self, uid: str) -> str:
        """Return an emulator ID token for ``uid``."""
        return emulator_id_token(uid, self.stack.project_id)

    def child_env(self) -> dict[str, str]:
        """Return the environment a fresh function interpreter gets: the stack's function settings."""
        return function_environment(self.stack.functions_env)

    def upload(self, path: Path, content_type: str, label: str) -> tuple[str, UploadTicket]:
        """Request an upload as a new user and PUT ``path``; return the uid and the ticket."""
        uid = self.new_uid(label)
        ticket = self.client.upload(self.token(uid), path, content_type=content_type, timezone=NOTE_TIMEZONE)
        return uid, ticket

    def finalize_event(self, ticket: UploadTicket) -> StorageEvent:
        """Build the finalize CloudEvent of the uploaded object, as the bridge would send it.

        Raises:
            DevstackError: the object's metadata could not be read.
        """
        quoted = urllib.parse.quote(ticket.object_name, safe="")
        url = f"{self.stack.storage.base_url}/storage/v1/b/{self.stack.bucket}/o/{quoted}"
        reply = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS)
        if reply.status_code != 200:
            raise DevstackError(f"reading metadata of {ticket.object_name} returned HTTP {reply.status_code}")
        resource = reply.json()
        data = storage_object_data(resource, self.stack.storage.base_url)
        return StorageEvent(
            event_id=f"bench-{ticket.note_id}",
            bucket=resource["bucket"],
            name=resource["name"],
            time=resource.get("updated") or resource["timeCreated"],
            data=data,
        )

    @contextlib.contextmanager
    def bridge_paused(self, expected_events: int) -> Iterator[None]:
        """Keep the stack's ``process_audio`` from handling the uploads made inside the block.

        Deliveries go to a closed port and fail. On exit the bridge waits until
        ``expected_events`` finalize events have arrived from Pub/Sub and no
        delivery is running, then discards the queued retries, so a benchmark
        can send the events itself.

        Raises:
            DevstackError: the events did not arrive within ``BRIDGE_WAIT_SECONDS``.
        """
        bridge = self.stack.bridge
        target = bridge.config.target_url
        bridge.reset_stats()
        bridge.set_target(CLOSED_TARGET)
        try:
            yield
            deadline = time.monotonic() + BRIDGE_WAIT_SECONDS
            while True:
                stats = bridge.stats()
                if stats.received >= expected_events and stats.in_flight == 0:
                    break
                if time.monotonic() > deadline:
                    raise DevstackError(
                        f"the bridge received {stats.received} of {expected_events} finalize events "
                        f"within {BRIDGE_WAIT_SECONDS:.0f} s; check the Pub/Sub emulator log"
                    )
                time.sleep(0.02)
        finally:
            # A retry that fell due just before the discard is still running
            # and queues itself again when it fails, so discard until none is left.
            bridge.discard_pending()
            while bridge.stats().in_flight or bridge.stats().pending:
                time.sleep(0.02)
                bridge.discard_pending()
            bridge.set_target(target)
            bridge.reset_stats()


def gemini_env(fake: FakeGemini) -> dict[str, str]:
    """Return the function settings that select the Gemini extractor on ``fake``."""
    return {
        "EXTRACTOR": "gemini",
        "GEMINI_API_KEY": "benchmark-key",
        "GEMINI_BASE_URL": fake.base_url,
        "UPLOADS_PER_HOUR": UNLIMITED_UPLOADS,
        "UPLOADS_PER_DAY": UNLIMITED_UPLOADS,
    }


@contextlib.contextmanager
def running_context() -> Iterator[BenchContext]:
    """Start the fake Gemini server and the stack; stop both on exit."""
    with FakeGemini() as fake:
        stack = LocalStack(extra_env=gemini_env(fake))
        stack.start()
        try:
            # The benchmark's own clients (BackendClient, the floors) read the
            # emulator variables, and google-auth's metadata lookups must stay on loopback.
            os.environ.update(stack.functions_env)
            client = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
            yield BenchContext(stack=stack, fake=fake, client=client)
        finally:
            stack.stop()


def write_result(name: str, result: Mapping[str, Any]) -> Path:
    """Write ``result`` as ``results/<name>.json`` and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
