"""Peak resident memory of a ``process_audio`` instance on a 10 MB note, against the same process idle.

Each run restarts the stack's functions, so the instance is fresh, and reads
the gunicorn worker's ``VmRSS`` from ``/proc`` before any request (idle) and
after one short note (warm: SDKs imported, clients created). Then one WAV note of ``NOTE_BYTES`` goes through the whole stack to ``done``
with the fake Gemini server in echo mode, and the worker's ``VmHWM`` (peak
resident set since the process started) is read. The pipeline keeps the
audio in memory, and the Gemini request carries it base64-encoded.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from benchmarks.context import SHORT_NOTE, SHORT_NOTE_TYPE, BenchContext
from benchmarks.stats import median, ratio
from devstack.processes import DevstackError
from tests.fakes.gemini import Script

logger = logging.getLogger(__name__)

NOTE_BYTES = 10_000_000
SAMPLE_RATE_HZ = 16_000
WAV_HEADER_BYTES = 44
NOTE_TIMEOUT_SECONDS = 120.0
WORKER_WAIT_SECONDS = 30.0


def write_wav(path: Path, total_bytes: int = NOTE_BYTES) -> Path:
    """Write a 16-bit mono 16 kHz WAV of exactly ``total_bytes`` bytes of random samples."""
    frames = (total_bytes - WAV_HEADER_BYTES) // 2
    with wave.open(str(path), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(SAMPLE_RATE_HZ)
        output.writeframes(os.urandom(frames * 2))
    return path


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise DevstackError(f"/proc/{pid}/status has no {field} line")


def worker_pid(master_pid: int) -> int:
    """Return the pid of the gunicorn worker that the functions-framework process forked.

    Raises:
        DevstackError: no worker appeared within ``WORKER_WAIT_SECONDS``.
    """
    deadline = time.monotonic() + WORKER_WAIT_SECONDS
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text(encoding="utf-8").split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise DevstackError(f"process {master_pid} started no gunicorn worker within {WORKER_WAIT_SECONDS:.0f} s")


def one_run(context: BenchContext, note: Path) -> dict[str, Any]:
    """Restart the functions, read the idle worker's memory, process one large note and read its peak."""
    context.stack.restart_functions()
    pid = worker_pid(context.stack.functions.pids()["process_audio"])
    # The port accepts connections before the worker has finished starting.
    time.sleep(1.0)
    idle_kib = _status_kib(pid, "VmRSS")

    # A short note first loads the SDKs and creates the clients, so the large
    # note's own cost is the peak minus this warm figure.
    uid, ticket = context.upload(SHORT_NOTE, SHORT_NOTE_TYPE, "memory-warm")
    context.client.wait_for_note(uid, ticket.note_id, timeout_seconds=NOTE_TIMEOUT_SECONDS, interval_seconds=0.1)
    warm_kib = _status_kib(pid, "VmRSS")

    uid, ticket = context.upload(note, "audio/wav", "memory")
    document = context.client.wait_for_note(
        uid, ticket.note_id, timeout_seconds=NOTE_TIMEOUT_SECONDS, interval_seconds=0.1
    )
    if document.get("status") != "done":
        raise DevstackError(f"the {NOTE_BYTES}-byte note ended {document.get('status')}: {document.get('failure')!r}")

    peak_kib = _status_kib(pid, "VmHWM")
    after_kib = _status_kib(pid, "VmRSS")
    return {
        "worker_pid": pid,
        "idle_rss_mib": idle_kib / 1024,
        "warm_rss_mib": warm_kib / 1024,
        "peak_minus_warm_mib": (peak_kib - warm_kib) / 1024,
        "peak_rss_mib": peak_kib / 1024,
        "rss_after_mib": after_kib / 1024,
        "peak_minus_idle_mib": (peak_kib - idle_kib) / 1024,
        "peak_to_idle_ratio": ratio(peak_kib, idle_kib),
    }


def run(context: BenchContext, runs: int) -> dict[str, Any]:
    """Measure ``runs`` fresh instances; return per-run figures and medians."""
    context.fake.load(Script())
    per_run = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        note = write_wav(Path(scratch) / "large-note.wav")
        for index in range(runs):
            per_run.append(one_run(context, note))
            logger.info(
                "memory run %d: idle %.0f MiB, warm %.0f MiB, peak %.0f MiB on a %d-byte note",
                index + 1, per_run[-1]["idle_rss_mib"], per_run[-1]["warm_rss_mib"], per_run[-1]["peak_rss_mib"], NOTE_BYTES,
            )  # fmt: skip

    keys = (
        "idle_rss_mib",
        "warm_rss_mib",
        "peak_rss_mib",
        "peak_minus_warm_mib",
        "rss_after_mib",
        "peak_minus_idle_mib",
        "peak_to_idle_ratio",
    )
    return {
        "note_bytes": NOTE_BYTES,
        "runs": per_run,
        "medians": {key: median([figures[key] for figures in per_run]) for key in keys},
    }
