"""Cold start per entry point against its import floor, and client reuse within an instance.

Each run starts, per entry point, two fresh interpreters in turn:

- the instance: ``functions_framework.create_app`` plus requests through the
  test client, against the stack's emulators and the fake Gemini server. The
  cold start ends at the first response.
- the floor: an interpreter that imports only functions-framework and the SDK
  modules the entry point needs, and stops.

The ratio of the two, taken within one run, is the cost of everything that is
not an SDK import: the backend's own modules, client construction and the
request itself. The instance sends ``REQUESTS_PER_INSTANCE`` requests; the
later ones must construct no client (see :mod:`benchmarks.first_request`).
One more instance per entry point runs under ``python -X importtime``, whose
largest imports outside the floor show where the extra time goes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.context import SHORT_NOTE, SHORT_NOTE_TYPE, BenchContext, run_child
from benchmarks.stats import median, ratio

logger = logging.getLogger(__name__)

GOAL_RATIO = 1.15
REQUESTS_PER_INSTANCE = 5
IMPORTTIME_TOP = 25


@dataclass(frozen=True)
class EntryPoint:
    """One function of main.py, the SDK modules its path needs, and its expected status."""

    target: str
    signature_type: str
    floor_modules: tuple[str, ...]
    expected_status: int


# Every floor imports flask.testing too, because the instance is measured
# through Flask's test client, which loads it (with click.testing and pdb)
# only for the measurement.
HARNESS_MODULES = ("functions_framework", "flask.testing")
# google-genai 3.6.1 imports its HTTP transport (httpx2 and httpcore2) on the
# first request, not on ``import google.genai``. It is SDK code either way.
GENAI_MODULES = ("google.genai", "httpx2", "httpcore2")

ENTRY_POINTS = (
    EntryPoint(
        "upload_url",
        "http",
        (*HARNESS_MODULES, "firebase_admin.auth", "google.cloud.firestore", "google.cloud.storage"),
        201,
    ),
    EntryPoint(
        "process_audio",
        "cloudevent",
        (*HARNESS_MODULES, "google.cloud.firestore", "google.cloud.storage", *GENAI_MODULES),
        200,
    ),
    EntryPoint(
        "health",
        "http",
        (*HARNESS_MODULES, "google.cloud.firestore", "google.cloud.storage", *GENAI_MODULES),
        200,
    ),
)


def upload_requests(context: BenchContext, count: int) -> list[dict[str, Any]]:
    """Return ``count`` valid upload requests of one new user (quotas are raised)."""
    uid = context.new_uid("cold")
    body = (
        f'{{"contentType": "{SHORT_NOTE_TYPE}", "sizeBytes": {SHORT_NOTE.stat().st_size}, "timezone": "Europe/London"}}'
    )
    request = {
        "method": "POST",
        "path": "/",
        "headers": {"Authorization": f"Bearer {context.token(uid)}", "Content-Type": "application/json"},
        "body": body,
    }
    return [request] * count


def event_requests(context: BenchContext, count: int) -> list[dict[str, Any]]:
    """Upload ``count`` notes with the bridge paused and return their finalize CloudEvents."""
    requests = []
    with context.bridge_paused(expected_events=count):
        for _ in range(count):
            _, ticket = context.upload(SHORT_NOTE, SHORT_NOTE_TYPE, "cold")
            event = context.finalize_event(ticket)
            requests.append({"method": "POST", "path": "/", "headers": event.headers(), "body": event.body().decode()})
    return requests


def health_requests(context: BenchContext, count: int) -> list[dict[str, Any]]:
    """Return ``count`` anonymous health requests."""
    return [{"method": "GET", "path": "/", "headers": {}, "body": ""}] * count


REQUEST_BUILDERS: dict[str, Callable[[BenchContext, int], list[dict[str, Any]]]] = {
    "upload_url": upload_requests,
    "process_audio": event_requests,
    "health": health_requests,
}


def serve_spec(entry: EntryPoint, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the child spec that serves ``requests`` with ``entry``."""
    return {"mode": "serve", "target": entry.target, "signature_type": entry.signature_type, "requests": requests}


def floor_spec(entry: EntryPoint) -> dict[str, Any]:
    """Return the child spec that imports the floor modules of ``entry``."""
    return {"mode": "floor", "target": entry.target, "floor_modules": list(entry.floor_modules)}


def parse_importtime(stderr: str) -> list[tuple[str, float]]:
    """Return ``(module, self milliseconds)`` for each line that ``python -X importtime`` wrote.

    The lines read ``import time: self | cumulative | name``, in microseconds.
    """
    line_pattern = re.compile(r"^import time:\s+(\d+)\s+\|\s+\d+\s+\|\s*(\S+)")
    rows = []
    for line in stderr.splitlines():
        match = line_pattern.match(line)
        if match is not None:
            rows.append((match.group(2), int(match.group(1)) / 1000))
    return rows


def extra_import_cost(
    instance_stderr: str, floor_modules: set[str], limit: int = IMPORTTIME_TOP
) -> list[dict[str, Any]]:
    """Sum the import self time of the modules the floor did not load, by top-level package.

    Returns:
        The ``limit`` packages with the largest sums, largest first, each with
        its milliseconds and module count.
    """
    totals: dict[str, list[float]] = {}
    for module, self_ms in parse_importtime(instance_stderr):
        if module in floor_modules:
            continue
        package = module.split(".", 1)[0]
        entry = totals.setdefault(package, [0.0, 0])
        entry[0] += self_ms
        entry[1] += 1
    rows: list[dict[str, Any]] = [
        {"package": name, "self_ms": round(ms, 1), "modules": int(count)} for name, (ms, count) in totals.items()
    ]
    rows.sort(key=lambda row: row["self_ms"], reverse=True)
    return rows[:limit]


def _profile(context: BenchContext, entry: EntryPoint) -> dict[str, Any]:
    requests = REQUEST_BUILDERS[entry.target](context, 1)
    instance = run_child(serve_spec(entry, requests), context.child_env(), python_options=("-X", "importtime"))
    floor = run_child(floor_spec(entry), context.child_env(), python_options=("-X", "importtime"))
    floor_modules = set(floor.result["modules"])
    instance_import_ms = sum(ms for _, ms in parse_importtime(instance.result["stderr"]))
    floor_import_ms = sum(ms for _, ms in parse_importtime(floor.result["stderr"]))
    return {
        "instance_seconds_with_importtime": instance.seconds,
        "floor_seconds_with_importtime": floor.seconds,
        "instance_import_ms": round(instance_import_ms, 1),
        "floor_import_ms": round(floor_import_ms, 1),
        "imports_not_in_floor": extra_import_cost(instance.result["stderr"], floor_modules),
    }


def _empty_samples() -> dict[str, Any]:
    return {
        "instance_seconds": [],
        "floor_seconds": [],
        "ratios": [],
        "instance_cpu_seconds": [],
        "floor_cpu_seconds": [],
        "cpu_ratios": [],
        "statuses": [],
        "constructions_after_first": [],
        "live_clients": [],
        "later_request_seconds": [],
    }


def _measure_once(context: BenchContext, entry: EntryPoint, samples: dict[str, Any], floor_first: bool) -> None:
    requests = REQUEST_BUILDERS[entry.target](context, REQUESTS_PER_INSTANCE)
    if floor_first:
        floor = run_child(floor_spec(entry), context.child_env())
        instance = run_child(serve_spec(entry, requests), context.child_env())
    else:
        instance = run_child(serve_spec(entry, requests), context.child_env())
        floor = run_child(floor_spec(entry), context.child_env())

    samples["floor_seconds"].append(floor.seconds)
    samples["instance_seconds"].append(instance.seconds)
    samples["ratios"].append(ratio(instance.seconds, floor.seconds))
    samples["floor_cpu_seconds"].append(floor.cpu_seconds)
    samples["instance_cpu_seconds"].append(instance.cpu_seconds)
    samples["cpu_ratios"].append(ratio(instance.cpu_seconds, floor.cpu_seconds))
    samples["statuses"].append(instance.result["statuses"])
    samples["constructions_after_first"].append(instance.result["constructions_after_first"])
    samples["live_clients"].append(instance.result["live_clients"])
    samples["later_request_seconds"] += instance.result["later_request_seconds"]


def _summarise(context: BenchContext, entry: EntryPoint, samples: dict[str, Any]) -> None:
    samples["median_instance_seconds"] = median(samples["instance_seconds"])
    samples["median_floor_seconds"] = median(samples["floor_seconds"])
    samples["median_ratio"] = median(samples["ratios"])
    samples["median_cpu_ratio"] = median(samples["cpu_ratios"])
    samples["median_later_request_seconds"] = median(samples["later_request_seconds"])
    samples["all_statuses_expected"] = all(
        status == entry.expected_status for statuses in samples["statuses"] for status in statuses
    )
    samples["clients_reused"] = all(
        count == 0 for counts in samples["constructions_after_first"] for count in counts.values()
    ) and all(count == 1 for counts in samples["live_clients"] for count in counts.values())
    samples["goal_met"] = samples["median_ratio"] <= GOAL_RATIO
    samples["floor_modules"] = list(entry.floor_modules)
    samples["profile"] = _profile(context, entry)


def run(context: BenchContext, runs: int) -> dict[str, Any]:
    """Measure every entry point ``runs`` times; return samples, medians, ratios and goal verdicts.

    The floor runs first in runs 1, 3, 5 and so on, and second in the others,
    so a slow drift in the machine's load does not favour either side.
    """
    per_entry = {entry.target: _empty_samples() for entry in ENTRY_POINTS}

    for index in range(runs):
        for entry in ENTRY_POINTS:
            samples = per_entry[entry.target]
            _measure_once(context, entry, samples, floor_first=index % 2 == 0)
            logger.info(
                "cold start run %d %s: %.3f s, floor %.3f s, ratio %.2f (CPU ratio %.2f)",
                index + 1, entry.target, samples["instance_seconds"][-1], samples["floor_seconds"][-1],
                samples["ratios"][-1], samples["cpu_ratios"][-1],
            )  # fmt: skip

    for entry in ENTRY_POINTS:
        _summarise(context, entry, per_entry[entry.target])

    return {"goal_ratio": GOAL_RATIO, "requests_per_instance": REQUESTS_PER_INSTANCE, "entry_points": per_entry}
