"""The offline extractor: real-time factor and peak resident memory on voice notes.

A fresh interpreter (``python -m benchmarks.offline CHILD_RESULT.json RUNS``)
loads the Whisper model once, then extracts ``FILES`` ``RUNS`` times. The
real-time factor of a run is its total extraction time divided by the total
audio duration from ``samples/manifest.json``. The model load is reported
separately and not counted. Memory is the child's own ``VmRSS`` after the
model load and its ``VmHWM`` (peak) at the end.

The full-set figure from ``benchmarks/offline_quality.py`` is read from its
last report, ``benchmarks/results/offline_quality.md``, and not run again here,
because one pass over the whole set takes minutes on two CPUs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.stats import median

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "samples"
QUALITY_REPORT = Path(__file__).resolve().parent / "results" / "offline_quality.md"
# Four containers (m4a, ogg, wav, m4a) and 5 to 17 s of speech each: about 39 s of audio per run.
FILES = (
    "01-dentist-tomorrow-3pm.m4a",
    "02-dry-cleaning-friday.ogg",
    "04-passport-council-tax.wav",
    "14-four-things-sao-paulo.m4a",
)
CHILD_TIMEOUT_SECONDS = 900.0
DEADLINE_SECONDS = 600.0


def _status_mib(field: str) -> float:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} line")


def child(result_path: Path, runs: int) -> None:
    """Load the model, extract ``FILES`` ``runs`` times and write the timings and memory to ``result_path``."""
    from functions.config import Settings
    from functions.extraction.base import AudioInput
    from functions.extraction.offline import OfflineExtractor

    manifest = {entry["file"]: entry for entry in json.loads((SAMPLES / "manifest.json").read_text())["files"]}
    extractor = OfflineExtractor(Settings(project_id="benchmark", bucket="benchmark", extractor="offline"))
    idle_mib = _status_mib("VmRSS")

    started = time.monotonic()
    extractor.probe()
    load_seconds = time.monotonic() - started
    loaded_mib = _status_mib("VmRSS")

    audio_seconds = sum(float(manifest[name]["duration_s"]) for name in FILES)
    rtfs = []
    for _ in range(runs):
        elapsed = 0.0
        for name in FILES:
            entry = manifest[name]
            audio = AudioInput(
                data=(SAMPLES / name).read_bytes(),
                content_type=entry["mime_type"],
                recorded_at=dt.datetime.fromisoformat(entry["reference"]["recorded_at"]),
                zone=ZoneInfo(entry["reference"]["time_zone"]),
                deadline=time.monotonic() + DEADLINE_SECONDS,
                duration_seconds=float(entry["duration_s"]),
            )
            started = time.monotonic()
            extractor.extract(audio)
            elapsed += time.monotonic() - started
        rtfs.append(elapsed / audio_seconds)

    result = {
        "files": list(FILES),
        "audio_seconds_per_run": audio_seconds,
        "model_load_seconds": load_seconds,
        "rtf_per_run": rtfs,
        "rss_before_load_mib": idle_mib,
        "rss_after_load_mib": loaded_mib,
        "peak_rss_mib": _status_mib("VmHWM"),
    }
    result_path.write_text(json.dumps(result), encoding="utf-8")


def quality_report_rtf(report: Path = QUALITY_REPORT) -> float | None:
    """Return the full-set real-time factor from the offline quality report, or None when absent."""
    if not report.is_file():
        return None
    match = re.search(r"Real-time factor \(all scored files\) \| ([0-9.]+)", report.read_text(encoding="utf-8"))
    return float(match.group(1)) if match else None


def run(runs: int) -> dict[str, Any]:
    """Run the child once with ``runs`` passes; return its figures with the median real-time factor.

    Raises:
        RuntimeError: the child failed; the message has its stderr.
    """
    with tempfile.TemporaryDirectory(prefix="bench-offline-") as scratch:
        result_path = Path(scratch) / "offline.json"
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.offline", str(result_path), str(runs)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"offline benchmark child exited with {completed.returncode}: {completed.stderr[-3000:]}"
            )
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))

    result["median_rtf"] = median(result["rtf_per_run"])
    result["quality_report_rtf_all_files"] = quality_report_rtf()
    logger.info(
        "offline extractor: RTF %.3f (median of %d runs), peak RSS %.0f MiB, model load %.1f s",
        result["median_rtf"], runs, result["peak_rss_mib"], result["model_load_seconds"],
    )  # fmt: skip
    return result


if __name__ == "__main__":
    child(Path(sys.argv[1]), int(sys.argv[2]))
