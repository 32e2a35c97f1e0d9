"""The ``health`` probes: Firestore, Cloud Storage and the extractor, run concurrently.

Each probe runs in its own daemon thread, and :class:`ProbeRunner` stops
waiting for it at the probe timeout, so one hanging service cannot stall the
response. A probe that returns after its timeout finishes in the background
and is ignored. Every failure is logged once, with the error; the result
keeps only a short code.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping

from functions.config import Settings
from functions.errors import BraindumpError, TransientError
from functions.health_history import LATEST_DOCUMENT
from functions.health_status import CONNECTED, ERROR, UNHEALTHY, ProbeResult

logger = logging.getLogger(__name__)

# HTTP status codes of Google APIs (google-api-core and google-genai errors carry them as ``code``).
_HTTP_CODES = {
    400: "rejected",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    429: "rate_limited",
    503: "unavailable",
    504: "timeout",
}
_TIMEOUT_TYPES = frozenset(
    {
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "TimeoutException",
        "WriteTimeout",
        "PoolTimeout",
        "DeadlineExceeded",
        "RetryError",
    }
)
_CHAIN_LIMIT = 8


def _firestore_client(settings: Settings) -> None:
    from functions.clients import firestore_client

    firestore_client()


def _storage_client(settings: Settings) -> None:
    from functions.clients import storage_client

    storage_client()


def _extractor(settings: Settings) -> None:
    from functions.extraction import get_extractor

    get_extractor()


def _probe_firestore(settings: Settings) -> None:
    from functions.clients import firestore_client

    # retry=None: a health probe reports the first failure instead of retrying past its timeout.
    firestore_client().document(LATEST_DOCUMENT).get(retry=None, timeout=settings.health_probe_timeout_seconds)


def _probe_storage(settings: Settings) -> None:
    from functions.clients import storage_client

    # Listing one object needs only storage.objects.list, which the runtime account's
    # object admin role on the bucket grants. A bucket metadata get would need
    # storage.buckets.get, which that role lacks.
    blobs = storage_client().list_blobs(
        settings.bucket, prefix="voice-notes/", max_results=1, retry=None, timeout=settings.health_probe_timeout_seconds
    )
    for _ in blobs:
        break


def _probe_extractor(settings: Settings) -> None:
    from functions.extraction import get_extractor

    get_extractor().probe()


@dataclasses.dataclass(frozen=True)
class Probe:
    """One dependency check. ``check`` raises on failure."""

    service: str
    check: Callable[[Settings], None]
    cache_seconds: Callable[[Settings], int] | None = None
    """How long a result may be reused, or None to check on every request."""
    prepare: Callable[[Settings], None] | None = None
    """Creates the client before the timeout starts. An error here fails the probe."""


# The clients are created before the timeout starts because the first import
# of an SDK is slow: google-genai 3.6.1 took 1.9 s and google-cloud-storage
# 0.7 s in one measurement on a 2-CPU development container.
DEFAULT_PROBES = (
    Probe("firebase", _probe_firestore, prepare=_firestore_client),
    Probe("storage", _probe_storage, prepare=_storage_client),
    # The model metadata call costs no tokens, but is cached anyway because
    # every ping would otherwise reach Gemini.
    Probe(
        "gemini",
        _probe_extractor,
        cache_seconds=lambda settings: settings.health_gemini_cache_seconds,
        prepare=_extractor,
    ),
)


def _code_of(err: BaseException) -> str | None:
    if isinstance(err, TimeoutError) or type(err).__name__ in _TIMEOUT_TYPES:
        return "timeout"

    if isinstance(err, (ImportError, ModuleNotFoundError)):
        return "not_installed"

    code = getattr(err, "code", None)
    if isinstance(code, int) and not isinstance(code, bool) and code >= 400:
        return _HTTP_CODES.get(code, "server_error" if code >= 500 else "rejected")

    # Built-in ConnectionError, and requests' and httpx's own connection errors.
    if isinstance(err, ConnectionError) or type(err).__name__ in {
        "ConnectionError",
        "ConnectError",
        "NewConnectionError",
    }:
        return "connection_failed"

    return None


def error_code(err: BaseException) -> str:
    """Return a short code for a probe failure, from ``err`` or the errors that caused it.

    The code names the kind of failure (``timeout``, ``unavailable``,
    ``connection_failed``, ``not_found``, ``permission_denied``,
    ``rate_limited``, ``not_installed``, a :class:`BraindumpError` code, or
    ``failed``) and never contains text from the error.
    """
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain and len(chain) < _CHAIN_LIMIT:
        chain.append(current)
        current = current.__cause__ or current.__context__

    for link in chain:
        code = _code_of(link)
        if code is not None:
            return code

    # A TransientError only means "try later", and its cause, when known, is more precise.
    for link in chain:
        if isinstance(link, BraindumpError) and type(link) is not TransientError:
            return link.code
    if isinstance(err, TransientError):
        return "unavailable"
    return "failed"


class _Run:
    """Results of one :meth:`ProbeRunner.run`, shared with its probe threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: dict[str, ProbeResult] = {}
        self.abandoned: set[str] = set()


class ProbeRunner:
    """Runs probes concurrently with one timeout, and keeps cached results.

    Args:
        probes: The checks to run; :data:`DEFAULT_PROBES` by default.
        clock: Monotonic clock, for the cache and the latencies.
    """

    def __init__(self, probes: tuple[Probe, ...] = DEFAULT_PROBES, clock: Callable[[], float] = time.monotonic) -> None:
        self.probes = probes
        self._clock = clock
        self._cache: dict[str, tuple[float, ProbeResult]] = {}
        self._cache_lock = threading.Lock()

    def clear_cache(self) -> None:
        """Forget every cached result."""
        with self._cache_lock:
            self._cache.clear()

    def run(self, settings: Settings) -> dict[str, ProbeResult]:
        """Run every probe and return its result, in the order of :attr:`probes`.

        Waits at most ``settings.health_probe_timeout_seconds`` for the checks,
        and a check still running then is reported ``unhealthy`` with code
        ``timeout``. Client creation (:attr:`Probe.prepare`) runs before that
        wait, one probe after another, and no timeout bounds it.
        """
        timeout = settings.health_probe_timeout_seconds
        run = _Run()
        threads: dict[str, threading.Thread] = {}

        for probe in self.probes:
            cached = self._cached(probe.service)
            if cached is not None:
                run.results[probe.service] = cached
                continue
            if not self._prepare(probe, settings, run):
                continue
            # A new thread starts with an empty context, so the log labels and trace are copied in.
            context = contextvars.copy_context()
            thread = threading.Thread(
                target=context.run,
                args=(self._run_one, probe, settings, run),
                daemon=True,
                name=f"health-probe-{probe.service}",
            )
            threads[probe.service] = thread
            thread.start()

        deadline = self._clock() + timeout
        for service, thread in threads.items():
            thread.join(max(0.0, deadline - self._clock()))

        with run.lock:
            for service in threads:
                if service not in run.results:
                    run.abandoned.add(service)
                    run.results[service] = ProbeResult(UNHEALTHY, timeout * 1000, "timeout")
                    logger.error(
                        "health probe %s timed out after %d s",
                        service,
                        timeout,
                        extra={"labels": {"probe": service, "error_code": "timeout"}},
                    )
            results = dict(run.results)

        self._store(settings, threads, results)
        return {probe.service: results[probe.service] for probe in self.probes}

    def _prepare(self, probe: Probe, settings: Settings, run: _Run) -> bool:
        if probe.prepare is None:
            return True
        try:
            probe.prepare(settings)
        except Exception as err:  # noqa: BLE001 - a client that cannot be created is a failed probe
            code = error_code(err)
            run.results[probe.service] = ProbeResult(ERROR, 0, code)
            logger.error(
                "health probe %s failed before it started (%s): %s: %s",
                probe.service,
                code,
                type(err).__name__,
                err,
                extra={"labels": {"probe": probe.service, "error_code": code}},
            )
            return False
        return True

    def _run_one(self, probe: Probe, settings: Settings, run: _Run) -> None:
        started = self._clock()
        failure: Exception | None = None
        try:
            probe.check(settings)
        except Exception as err:  # noqa: BLE001 - every failure becomes a status; the log keeps the detail
            failure = err

        if failure is None:
            result = ProbeResult(CONNECTED, self._elapsed_ms(started))
        else:
            code = error_code(failure)
            # A client-side timeout means the same as the runner's own, so both report unhealthy.
            result = ProbeResult(UNHEALTHY if code == "timeout" else ERROR, self._elapsed_ms(started), code)

        with run.lock:
            if probe.service in run.abandoned:
                logger.info("health probe %s finished after its timeout: %s", probe.service, result.status)
                return
            run.results[probe.service] = result

        if failure is not None:
            logger.error(
                "health probe %s failed (%s): %s: %s",
                probe.service,
                result.error_code,
                type(failure).__name__,
                failure,
                extra={"labels": {"probe": probe.service, "error_code": result.error_code}},
            )

    def _elapsed_ms(self, started: float) -> int:
        return round((self._clock() - started) * 1000)

    def _cached(self, service: str) -> ProbeResult | None:
        with self._cache_lock:
            entry = self._cache.get(service)
        if entry is None or self._clock() >= entry[0]:
            return None
        return dataclasses.replace(entry[1], cached=True)

    def _store(
        self, settings: Settings, checked: Mapping[str, threading.Thread], results: Mapping[str, ProbeResult]
    ) -> None:
        now = self._clock()
        with self._cache_lock:
            for probe in self.probes:
                if probe.cache_seconds is None or probe.service not in checked:
                    continue
                seconds = probe.cache_seconds(settings)
                if seconds > 0:
                    self._cache[probe.service] = (now + seconds, results[probe.service])
