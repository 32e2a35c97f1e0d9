"""The ``health`` HTTP handler: check the settings, run the probes, respond and store scheduled results.

``200`` means healthy or degraded (only the extractor failed), ``503`` means a
critical service or the configuration failed. Anonymous callers get the
statuses only; a caller with a valid Firebase ID token also gets ``checks``.
A scheduled ping (header ``X-CloudScheduler: true``, which Cloud Scheduler
sends) also stores the full result in Firestore, see
:mod:`functions.health_history`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from functions.config import Settings, get_settings
from functions.errors import BraindumpError, ConfigError, MethodNotAllowed, Unauthenticated
from functions.health_probes import ProbeRunner
from functions.health_status import (
    CONNECTED,
    ERROR,
    ProbeResult,
    backend_version,
    health_body,
    http_status,
    public_body,
)
from functions.http import error_response, json_response
from functions.log import log_context, trace_from_headers

if TYPE_CHECKING:
    import flask

logger = logging.getLogger(__name__)

SCHEDULER_HEADER = "X-CloudScheduler"
NOT_CHECKED = "not_checked"

# One runner per instance, so the extractor result stays cached between pings.
runner = ProbeRunner()


def _check_settings() -> tuple[Settings | None, ProbeResult]:
    started = time.monotonic()
    try:
        settings = get_settings()
    except ConfigError as err:
        logger.error(
            "health probe config failed: %s",
            err.message,
            extra={"labels": {"probe": "config", "error_code": err.code}},
        )
        return None, ProbeResult(ERROR, round((time.monotonic() - started) * 1000), err.code)
    return settings, ProbeResult(CONNECTED, round((time.monotonic() - started) * 1000))


def _probe_all(settings: Settings | None, config: ProbeResult) -> dict[str, ProbeResult]:
    if settings is None:
        # Without settings there is no project, bucket or model to probe.
        skipped = ProbeResult(ERROR, 0, NOT_CHECKED)
        return {"config": config, **{probe.service: skipped for probe in runner.probes}}
    return {"config": config, **runner.run(settings)}


def _is_authenticated(request: flask.Request, settings: Settings | None) -> bool:
    """Return True when the request carries a valid Firebase ID token. Any failure means anonymous."""
    if settings is None or not request.headers.get("Authorization"):
        return False

    from functions.uploads.auth import verify_uid

    try:
        verify_uid(request.headers, settings)
    except Unauthenticated as err:
        # TODO: accept Google-signed OIDC tokens (Cloud Scheduler, gcloud auth
        # print-identity-token) too. Until then operators read checks in
        # _health/latest or in the logs.
        logger.info("health caller treated as anonymous: %s", err.code)
        return False
    except BraindumpError as err:
        # The token could not be checked at all, because the certificates or the
        # Auth API are unreachable. Health still responds, with the anonymous body.
        logger.warning("health caller treated as anonymous, token check failed: %s", err.code)
        return False
    return True


def _record(settings: Settings | None, body: dict[str, Any], results: dict[str, ProbeResult], now: dt.datetime) -> None:
    if settings is None:
        logger.warning("scheduled health result not stored: the settings are invalid")
        return
    if results["firebase"].status != CONNECTED:
        # Writing to a failing Firestore would only add its timeout to the response.
        logger.warning("scheduled health result not stored: Firestore is %s", results["firebase"].status)
        return

    from google.api_core import exceptions

    from functions.clients import firestore_client
    from functions.health_history import record_result

    try:
        record_result(firestore_client(), body, now, timeout_seconds=settings.health_probe_timeout_seconds)
    except exceptions.GoogleAPICallError as err:
        logger.error("storing the scheduled health result failed: %s: %s", type(err).__name__, err)

    _sweep(settings, now)


def _sweep(settings: Settings, now: dt.datetime) -> None:
    """End notes that no event can finish any more; scheduled pings are this backend's only clock."""
    from google.api_core import exceptions

    from functions.clients import firestore_client
    from functions.processing.sweep import sweep_stale_notes

    try:
        sweep_stale_notes(firestore_client(), now, settings.max_event_age_seconds)
    except (exceptions.GoogleAPICallError, exceptions.RetryError) as err:
        logger.error("sweeping stale notes failed: %s: %s", type(err).__name__, err)


def handle_health(request: flask.Request) -> flask.Response:
    """Probe every dependency and return ``200`` (healthy or degraded) or ``503`` (unhealthy)."""
    with log_context(function="health"):
        settings, config = _check_settings()
        trace = trace_from_headers(request.headers, settings.project_id) if settings is not None else None
        return _respond(request, settings, config, trace)


def _respond(
    request: flask.Request, settings: Settings | None, config: ProbeResult, trace: str | None
) -> flask.Response:
    with log_context(trace=trace):
        if request.method not in ("GET", "HEAD"):
            return error_response(MethodNotAllowed(request.method, "GET"))

        results = _probe_all(settings, config)
        now = dt.datetime.now(dt.UTC)
        body = health_body(results, now, backend_version())

        if body["status"] != "healthy":
            failed = ", ".join(
                f"{name}={result.error_code}" for name, result in results.items() if result.status != CONNECTED
            )
            logger.warning("health is %s: %s", body["status"], failed)

        if request.headers.get(SCHEDULER_HEADER, "").strip().lower() == "true":
            # NOTE: the header is not authenticated. The deployed function is
            # private, so only callers with run.invoker reach this line, and
            # history keeps at most one document per minute regardless of the caller.
            _record(settings, body, results, now)

        response_body = body if _is_authenticated(request, settings) else public_body(body)
        return json_response(response_body, http_status(body["status"]))
