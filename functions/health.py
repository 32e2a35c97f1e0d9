"""The ``health`` probes: Firestore, Cloud Storage and the extractor, run concurrently.

Each probe runs in its own daemon thread and is given up on after the probe
timeout, so one hanging service cannot stall the response. The response keeps
the original backend's ``/api/health`` shape (``status`` plus ``services``) and
adds per-service ``checks``. Error details go to the log, never to the response.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from functions import __version__
from functions.config import Settings, get_settings
from functions.errors import BraindumpError, MethodNotAllowed
from functions.http import error_response, json_response
from functions.log import log_context, trace_from_headers

if TYPE_CHECKING:
    import flask

logger = logging.getLogger(__name__)

# Services whose failure makes the backend unusable; a failure elsewhere only degrades it.
CRITICAL_SERVICES = frozenset({"firebase", "storage"})


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe."""

    status: str
    """``connected``, ``unhealthy`` (timed out) or ``error`` (raised)."""
    latency_ms: int
    error: str | None = None


def _probe_firestore(settings: Settings) -> None:
    from functions.clients import firestore_client

    firestore_client().document("_health/probe").get(timeout=settings.health_probe_timeout_seconds)


def _probe_storage(settings: Settings) -> None:
    from functions.clients import storage_client

    storage_client().get_bucket(settings.bucket, timeout=settings.health_probe_timeout_seconds)


class _CachedProbe:
    """Reuse a successful extractor probe for ``HEALTH_GEMINI_CACHE_SECONDS``, so pings cost no tokens or loads."""

    def __init__(self) -> None:
        self._ok_until = 0.0
        self._lock = threading.Lock()

    def __call__(self, settings: Settings) -> None:
        with self._lock:
            if time.monotonic() < self._ok_until:
                return

        from functions.extraction import get_extractor

        get_extractor().probe()
        with self._lock:
            self._ok_until = time.monotonic() + settings.health_gemini_cache_seconds


_probe_extractor = _CachedProbe()

PROBES: dict[str, Callable[[Settings], None]] = {
    "firebase": _probe_firestore,
    "storage": _probe_storage,
    "gemini": _probe_extractor,
}


def _run_probe(name: str, probe: Callable[[Settings], None], settings: Settings, results: dict[str, ProbeResult]) -> None:
    started = time.monotonic()
    try:
        probe(settings)
    except Exception as err:  # noqa: BLE001 - a probe reports every failure as a status
        logger.error("health probe %s failed: %s: %s", name, type(err).__name__, err)
        results[name] = ProbeResult("error", round((time.monotonic() - started) * 1000), type(err).__name__)
        return
    results[name] = ProbeResult("connected", round((time.monotonic() - started) * 1000))


def run_probes(settings: Settings, probes: dict[str, Callable[[Settings], None]] | None = None) -> dict[str, ProbeResult]:
    """Run every probe concurrently and wait at most the probe timeout for each."""
    selected = PROBES if probes is None else probes
    results: dict[str, ProbeResult] = {}
    threads = {
        name: threading.Thread(target=_run_probe, args=(name, probe, settings, results), daemon=True, name=f"probe-{name}")
        for name, probe in selected.items()
    }
    for thread in threads.values():
        thread.start()

    deadline = time.monotonic() + settings.health_probe_timeout_seconds
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if name not in results:
            logger.error("health probe %s timed out after %s s", name, settings.health_probe_timeout_seconds)
            results[name] = ProbeResult("unhealthy", settings.health_probe_timeout_seconds * 1000, "timeout")

    return {name: results[name] for name in selected}


def overall_status(results: dict[str, ProbeResult]) -> str:
    """Return ``healthy``, ``degraded`` (a non-critical probe failed) or ``unhealthy``."""
    failed = {name for name, result in results.items() if result.status != "connected"}
    if failed & CRITICAL_SERVICES:
        return "unhealthy"
    return "degraded" if failed else "healthy"


def health_body(results: dict[str, ProbeResult], now: dt.datetime) -> dict[str, Any]:
    """Return the ``health`` response body."""
    return {
        "status": overall_status(results),
        "services": {name: result.status for name, result in results.items()},
        "checks": {
            name: {"status": result.status, "latencyMs": result.latency_ms, "error": result.error}
            for name, result in results.items()
        },
        "version": __version__,
        "timestamp": now.isoformat(),
    }


def handle_health(request: flask.Request) -> flask.Response:
    """Probe every dependency and return ``200`` (healthy or degraded) or ``503``."""
    try:
        settings = get_settings()
    except BraindumpError as err:
        logger.error("configuration invalid: %s", err.message)
        return json_response({"status": "unhealthy", "services": {"config": "error"}}, 503)

    with log_context(trace=trace_from_headers(request.headers, settings.project_id), function="health"):
        if request.method not in ("GET", "HEAD"):
            return error_response(MethodNotAllowed(request.method, "GET"))

        body = health_body(run_probes(settings), dt.datetime.now(dt.timezone.utc))
        if body["status"] != "healthy":
            logger.warning("health %s: %s", body["status"], body["services"])
        return json_response(body, 200 if body["status"] != "unhealthy" else 503)
