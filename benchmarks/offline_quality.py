"""Score the offline extractor on the speech files of samples/manifest.json.

Usage: ``.venv/bin/python benchmarks/offline_quality.py [--output PATH]``

Writes a Markdown report (default ``benchmarks/results/offline_quality.md``) and
prints the summary. Exits with status 1 when a quality target is missed.

Scoring follows the ``conventions`` of the manifest:

- An expected task is found when a predicted task shares at least half of its
  keywords (lower-cased words without stop words, plural "s" stripped). Each
  predicted task matches at most one expected task. This keyword overlap is
  used in place of "compare titles by meaning".
- A due value is correct when it equals ``due`` or matches an ``accept_due``
  pattern (``YYYY-MM-DDT*`` is any time that day, ``YYYY-MM-*`` any day that
  month, null no date). Timed values must also match ``due_utc`` when given.
- Due-date accuracy counts the found tasks only; the end-to-end figure counts
  every expected task, so a missed task also counts as a wrong date.
- Real-time factor is wall-clock processing time (decode, transcription, rules)
  divided by audio duration, after the models have been loaded once. CPU
  seconds per audio second counts every thread of the process. It does not grow
  when other processes share the cores, so on an idle machine with two cores
  the real-time factor lies between half of it and all of it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# The script runs as a file, so the repository root must be on the import path.
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from functions.config import Settings
from functions.errors import PermanentProcessingError
from functions.extraction.base import AudioInput
from functions.extraction.offline import OfflineExtractor
from functions.models import ExtractedTask

logger = logging.getLogger(__name__)

SAMPLES = REPO_ROOT / "samples"
SCORED_KINDS = ("synthetic-speech", "human-speech")
NO_SPEECH_FILES = ("edge-silence-5s.m4a", "edge-white-noise-5s.ogg")

TARGET_RECALL = 0.85
TARGET_DUE_ACCURACY = 0.85
TARGET_RTF = 0.15

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "for",
        "on",
        "in",
        "at",
        "by",
        "and",
        "or",
        "my",
        "her",
        "his",
        "their",
        "our",
        "your",
        "me",
        "i",
        "it",
        "its",
        "up",
        "off",
        "out",
        "with",
        "about",
    ]
)


@dataclass
class FileScore:
    """The outcome of one file."""

    file: str
    duration_s: float
    seconds: float
    cpu_seconds: float
    expected: int
    predicted: int
    matched: int
    due_correct: int
    problems: list[str] = field(default_factory=list)
    transcript: str = ""


def keywords(title: str) -> set[str]:
    """Return the comparable words of a title: lower case, no stop words, no plural "s"."""
    words = re.findall(r"[a-z0-9]+", title.lower().replace("'s", ""))
    return {word.removesuffix("s") if len(word) > 3 else word for word in words if word not in STOP_WORDS}


def overlap(expected_title: str, predicted_title: str) -> float:
    """Return the share of the expected title's keywords that the predicted title contains."""
    expected = keywords(expected_title)
    return len(expected & keywords(predicted_title)) / len(expected) if expected else 0.0


def match_tasks(
    expected: list[dict[str, Any]], predicted: list[ExtractedTask]
) -> list[tuple[dict[str, Any], ExtractedTask]]:
    """Pair expected and predicted tasks greedily by keyword overlap of at least one half."""
    scored = sorted(
        ((overlap(e["title"], p.title), i, j) for i, e in enumerate(expected) for j, p in enumerate(predicted)),
        reverse=True,
    )
    used_expected: set[int] = set()
    used_predicted: set[int] = set()
    pairs: list[tuple[dict[str, Any], ExtractedTask]] = []
    for score, i, j in scored:
        if score < 0.5 or i in used_expected or j in used_predicted:
            continue
        used_expected.add(i)
        used_predicted.add(j)
        pairs.append((expected[i], predicted[j]))
    return pairs


def local_due(task: ExtractedTask, zone: ZoneInfo) -> str | None:
    """Format a predicted due value like the manifest: local ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``."""
    if task.due_at is not None:
        return task.due_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
    if task.due_date is not None:
        return task.due_date.isoformat()
    return None


def due_is_correct(expected: dict[str, Any], task: ExtractedTask, zone: ZoneInfo) -> bool:
    """Compare a predicted due value with ``due`` and every ``accept_due`` pattern."""
    predicted = local_due(task, zone)
    accepted = [expected.get("due"), *expected.get("accept_due", [])]

    for pattern in accepted:
        if pattern is None or predicted is None:
            if pattern is None and predicted is None:
                return True
            continue
        if pattern.endswith("*"):
            if predicted.startswith(pattern[:-1]):
                return True
            continue
        if predicted != pattern:
            continue
        due_utc = expected.get("due_utc")
        if due_utc and pattern == expected.get("due") and task.due_at is not None:
            return task.due_at == dt.datetime.fromisoformat(due_utc)
        return True
    return False


def score_file(extractor: OfflineExtractor, entry: dict[str, Any]) -> FileScore:
    """Run the extractor on one manifest entry and compare with its expected tasks."""
    reference = entry["reference"]
    zone = ZoneInfo(reference["time_zone"])
    audio = AudioInput(
        data=(SAMPLES / entry["file"]).read_bytes(),
        content_type=entry["mime_type"],
        recorded_at=dt.datetime.fromisoformat(reference["recorded_at"]),
        zone=zone,
        deadline=time.monotonic() + 300,
    )
    expected = entry.get("expected_tasks", [])

    started = time.monotonic()
    cpu_started = time.process_time()
    try:
        result = extractor.extract(audio)
    except PermanentProcessingError as err:
        seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu_started
        problem = f"rejected: {err.code}"
        return FileScore(entry["file"], entry["duration_s"], seconds, cpu_seconds, len(expected), 0, 0, 0, [problem])
    seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu_started

    pairs = match_tasks(expected, result.tasks)
    score = FileScore(
        file=entry["file"],
        duration_s=entry["duration_s"],
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        expected=len(expected),
        predicted=len(result.tasks),
        matched=len(pairs),
        due_correct=0,
        transcript=result.transcript,
    )

    for expected_task, task in pairs:
        if due_is_correct(expected_task, task, zone):
            score.due_correct += 1
        else:
            score.problems.append(
                f"wrong due for '{expected_task['title']}': got {local_due(task, zone)}, expected {expected_task.get('due')}"
            )

    matched_expected = [id(expected_task) for expected_task, _ in pairs]
    matched_predicted = [id(task) for _, task in pairs]
    for expected_task in expected:
        if id(expected_task) not in matched_expected:
            score.problems.append(f"missed '{expected_task['title']}'")
    for task in result.tasks:
        if id(task) not in matched_predicted:
            score.problems.append(f"extra '{task.title}'")
    return score


def render(scores: list[FileScore], load_seconds: float) -> tuple[str, bool]:
    """Render the Markdown report and tell whether every target was met."""
    synthetic = [s for s in scores if not s.file.startswith(("human-", "edge-"))]
    expected = sum(s.expected for s in synthetic)
    matched = sum(s.matched for s in synthetic)
    due_correct = sum(s.due_correct for s in synthetic)
    predicted_all = sum(s.predicted for s in scores)
    matched_all = sum(s.matched for s in scores)
    no_speech_tasks = sum(s.predicted for s in scores if s.file in NO_SPEECH_FILES)

    recall = matched / expected if expected else 0.0
    precision = matched_all / predicted_all if predicted_all else 1.0
    due_accuracy = due_correct / matched if matched else 0.0
    due_end_to_end = due_correct / expected if expected else 0.0
    audio_seconds = sum(s.duration_s for s in scores)
    rtf = sum(s.seconds for s in scores) / audio_seconds
    cpu_rtf = sum(s.cpu_seconds for s in scores) / audio_seconds

    load_average = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    passed = (
        recall >= TARGET_RECALL and due_accuracy >= TARGET_DUE_ACCURACY and rtf <= TARGET_RTF and no_speech_tasks == 0
    )

    lines = [
        "# Offline extractor quality",
        "",
        (
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `benchmarks/offline_quality.py` on "
            f"{platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
            f"load average {load_average} at the end (other processes on the machine slow the real-time factor). "
            f"Model load: {load_seconds:.2f} s (not counted in the real-time factor)."
        ),
        "",
        (
            "Titles match when the predicted title contains at least half of the expected title's keywords "
            "(a keyword overlap, not a judgement of meaning). Due values are compared in the note's time zone "
            "with `due` and `accept_due`."
        ),
        "",
        "| Measure | Value | Target |",
        "|---|---|---|",
        f"| Task recall (synthetic notes) | {recall:.1%} ({matched}/{expected}) | ≥ {TARGET_RECALL:.0%} |",
        f"| Precision (all scored files) | {precision:.1%} ({matched_all}/{predicted_all}) | – |",
        f"| Due-date accuracy of found tasks | {due_accuracy:.1%} ({due_correct}/{matched}) | ≥ {TARGET_DUE_ACCURACY:.0%} |",
        f"| Due-date accuracy of all expected tasks | {due_end_to_end:.1%} ({due_correct}/{expected}) | – |",
        f"| Tasks from silence and noise | {no_speech_tasks} | 0 |",
        f"| Real-time factor (all scored files) | {rtf:.3f} | ≤ {TARGET_RTF} |",
        f"| CPU seconds per audio second, all threads | {cpu_rtf:.3f} | – |",
        "",
        "## Per file",
        "",
        "| File | Audio (s) | Time (s) | RTF | Expected | Predicted | Found | Due correct | Problems |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        problems = "; ".join(s.problems) or "–"
        lines.append(
            f"| {s.file} | {s.duration_s:.2f} | {s.seconds:.2f} | {s.seconds / s.duration_s:.3f} | "
            f"{s.expected} | {s.predicted} | {s.matched} | {s.due_correct} | {problems.replace('|', '/')} |"
        )

    lines += ["", "## Transcripts", ""]
    for s in scores:
        lines.append(f"- `{s.file}`: {s.transcript or '(empty)'}")
    lines.append("")
    return "\n".join(lines), passed


def main() -> int:
    """Score every speech file and the no-speech files, write the report, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "benchmarks" / "results" / "offline_quality.md",
        help="path of the Markdown report to write",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    manifest = json.loads((SAMPLES / "manifest.json").read_text())
    entries = [e for e in manifest["files"] if e["kind"] in SCORED_KINDS or e["file"] in NO_SPEECH_FILES]

    settings = Settings(project_id="benchmark", bucket="benchmark", extractor="offline")
    extractor = OfflineExtractor(settings)
    started = time.monotonic()
    extractor.probe()
    load_seconds = time.monotonic() - started

    scores = [score_file(extractor, entry) for entry in entries]
    report, passed = render(scores, load_seconds)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report.split("## Per file")[0])
    for s in scores:
        for problem in s.problems:
            print(f"{s.file}: {problem}")
    print(f"report written to {args.output}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
