"""``upload_url`` under load through the stack's functions-framework server, against its floor.

The load: ``REQUESTS`` POSTs at ``CONCURRENCY`` client threads, each thread
with its own user and keep-alive session, so no two requests race for one
user's quota document. Every request must return 201.

The floor, measured in the same run and process: the three calls that make up
the request's work, called directly (token check, the quota-and-note commit,
one V4 signature). It runs twice: in a loop on one thread, which is the
latency of one request alone, and on ``CONCURRENCY`` threads, which includes
the same queueing for the CPUs as the load does. The gap to the second floor
is the cost of HTTP, gunicorn, Flask and request parsing. ``SEQUENTIAL_FLOOR_CALLS``
requests sent one at a time through HTTP (``alone``) give the same comparison
without queueing, and a cProfile of requests through the test client shows where a
request's time goes.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from benchmarks.context import SHORT_NOTE, SHORT_NOTE_TYPE, BenchContext, run_child
from benchmarks.stats import median, percentile, ratio

logger = logging.getLogger(__name__)

REQUESTS = 500
CONCURRENCY = 20
SEQUENTIAL_FLOOR_CALLS = 100
WARMUP_REQUESTS = 20
PROFILED_REQUESTS = 100
GOAL_P50_RATIO = 1.3
HTTP_TIMEOUT_SECONDS = 60.0


def _request_body() -> dict[str, Any]:
    return {"contentType": SHORT_NOTE_TYPE, "sizeBytes": SHORT_NOTE.stat().st_size, "timezone": "Europe/London"}


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def _run_threads(count: int, concurrency: int, work: Callable[[int], Callable[[], None]]) -> tuple[list[float], float]:
    """Run ``count`` calls on ``concurrency`` threads; return each call's latency and the wall time.

    ``work(thread_index)`` returns the call that thread repeats, so each thread
    can hold its own user and session.
    """
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(thread_index: int, calls: int) -> None:
        call = work(thread_index)
        own: list[float] = []
        for _ in range(calls):
            started = time.perf_counter()
            call()
            own.append(time.perf_counter() - started)
        with lock:
            latencies.extend(own)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(worker, index, calls) for index, calls in enumerate(_split(count, concurrency))]
        for future in futures:
            future.result()
    return latencies, time.perf_counter() - started


def http_load(context: BenchContext, count: int, concurrency: int) -> tuple[list[float], float, dict[int, int]]:
    """Send ``count`` upload requests at ``concurrency``; return latencies, wall time and status counts."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    body = _request_body()

    def work(thread_index: int) -> Callable[[], None]:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {context.token(context.new_uid('load'))}"}

        def call() -> None:
            reply = session.post(
                context.stack.endpoints.upload_url, json=body, headers=headers, timeout=HTTP_TIMEOUT_SECONDS
            )
            with lock:
                statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1

        return call

    latencies, wall = _run_threads(count, concurrency, work)
    return latencies, wall, statuses


def floor_work(context: BenchContext) -> Callable[[int], Callable[[], None]]:
    """Return the work factory of the floor: token check, quota-and-note commit and signature, called directly."""
    from functions.clients import firestore_client
    from functions.config import get_settings
    from functions.objects import new_note_id, object_name_for
    from functions.store import QuotaLimits, create_note_with_quota
    from functions.uploads.auth import verify_uid
    from functions.uploads.signing import sign_upload

    settings = get_settings()
    limits = QuotaLimits(per_hour=settings.uploads_per_hour, per_day=settings.uploads_per_day)

    def work(thread_index: int) -> Callable[[], None]:
        uid = context.new_uid("floor")
        headers = {"Authorization": f"Bearer {context.token(uid)}"}

        def call() -> None:
            verified = verify_uid(headers, settings)
            now = dt.datetime.now(dt.UTC)
            note_id = new_note_id()
            object_name = object_name_for(verified, note_id, "m4a")
            signed = sign_upload(settings, object_name, SHORT_NOTE_TYPE, now)
            create_note_with_quota(
                firestore_client(),
                uid=verified,
                note_id=note_id,
                note={
                    "contentType": SHORT_NOTE_TYPE,
                    "declaredContentType": SHORT_NOTE_TYPE,
                    "declaredSizeBytes": SHORT_NOTE.stat().st_size,
                    "objectName": object_name,
                    "bucket": settings.bucket,
                    "timezone": "Europe/London",
                    "recordedAt": now,
                    "uploadExpiresAt": signed.expires_at,
                },
                limits=limits,
                now=now,
            )

        return call

    return work


def run(context: BenchContext, runs: int) -> dict[str, Any]:
    """Run the load and both floors ``runs`` times; return per-run figures, medians and the goal verdict."""
    work = floor_work(context)
    http_load(context, WARMUP_REQUESTS, CONCURRENCY)
    _run_threads(WARMUP_REQUESTS, 1, work)

    per_run: list[dict[str, Any]] = []
    for index in range(runs):
        latencies, wall, statuses = http_load(context, REQUESTS, CONCURRENCY)
        alone, _, alone_statuses = http_load(context, SEQUENTIAL_FLOOR_CALLS, 1)
        sequential, _ = _run_threads(SEQUENTIAL_FLOOR_CALLS, 1, work)
        concurrent, concurrent_wall = _run_threads(REQUESTS, CONCURRENCY, work)

        figures: dict[str, Any] = {
            "p50_seconds": percentile(latencies, 0.5),
            "p99_seconds": percentile(latencies, 0.99),
            "requests_per_second": len(latencies) / wall,
            "statuses": {str(status): count for status, count in sorted(statuses.items())},
            "alone_statuses": {str(status): count for status, count in sorted(alone_statuses.items())},
            "alone_p50_seconds": percentile(alone, 0.5),
            "alone_p99_seconds": percentile(alone, 0.99),
            "floor_sequential_p50_seconds": percentile(sequential, 0.5),
            "floor_sequential_p99_seconds": percentile(sequential, 0.99),
            "floor_concurrent_p50_seconds": percentile(concurrent, 0.5),
            "floor_concurrent_p99_seconds": percentile(concurrent, 0.99),
            "floor_concurrent_calls_per_second": len(concurrent) / concurrent_wall,
        }
        figures["p50_ratio_to_sequential_floor"] = ratio(
            figures["p50_seconds"], figures["floor_sequential_p50_seconds"]
        )
        figures["p50_ratio_to_concurrent_floor"] = ratio(
            figures["p50_seconds"], figures["floor_concurrent_p50_seconds"]
        )
        figures["alone_p50_ratio_to_sequential_floor"] = ratio(
            figures["alone_p50_seconds"], figures["floor_sequential_p50_seconds"]
        )
        figures["throughput_ratio_to_concurrent_floor"] = ratio(
            figures["requests_per_second"], figures["floor_concurrent_calls_per_second"]
        )
        per_run.append(figures)
        logger.info(
            "upload load run %d: p50 %.1f ms, p99 %.1f ms, %.0f req/s; floor p50 %.1f ms alone, %.1f ms at %d threads",
            index + 1, figures["p50_seconds"] * 1000, figures["p99_seconds"] * 1000, figures["requests_per_second"],
            figures["floor_sequential_p50_seconds"] * 1000, figures["floor_concurrent_p50_seconds"] * 1000, CONCURRENCY,
        )  # fmt: skip

    medians = {key: median([figures[key] for figures in per_run]) for key in per_run[0] if not key.endswith("statuses")}
    all_created = all(
        figures["statuses"] == {"201": REQUESTS} and figures["alone_statuses"] == {"201": SEQUENTIAL_FLOOR_CALLS}
        for figures in per_run
    )
    return {
        "requests": REQUESTS,
        "concurrency": CONCURRENCY,
        "sequential_floor_calls": SEQUENTIAL_FLOOR_CALLS,
        "goal_p50_ratio": GOAL_P50_RATIO,
        "runs": per_run,
        "medians": medians,
        "all_created": all_created,
        "goal_met_against_sequential_floor": medians["p50_ratio_to_sequential_floor"] <= GOAL_P50_RATIO,
        "goal_met_against_concurrent_floor": medians["p50_ratio_to_concurrent_floor"] <= GOAL_P50_RATIO,
        "profile": handler_profile(context),
    }


def handler_profile(context: BenchContext) -> dict[str, Any]:
    """Profile ``PROFILED_REQUESTS`` upload requests through the test client in a fresh instance (cProfile)."""
    from benchmarks.cold_start import ENTRY_POINTS, serve_spec, upload_requests

    entry = next(entry for entry in ENTRY_POINTS if entry.target == "upload_url")
    spec = {**serve_spec(entry, upload_requests(context, PROFILED_REQUESTS + 1)), "profile": True}
    result = run_child(spec, context.child_env()).result
    return {key: result[key] for key in ("profiled_requests", "profiled_ms_per_request", "profile_top")}
