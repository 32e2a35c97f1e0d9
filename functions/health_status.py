"""Probe results and the ``health`` response built from them.

The body keeps the original backend's ``/api/health`` shape (``status`` plus
``services``) and adds ``version``, ``timestamp`` and, for authenticated
callers and the stored history, per-service ``checks``. A check carries only a
status, a latency and a short error code, never an error message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

from functions import __version__

logger = logging.getLogger(__name__)

ServiceStatus = Literal["connected", "unhealthy", "error"]
OverallStatus = Literal["healthy", "degraded", "unhealthy"]

CONNECTED: ServiceStatus = "connected"
UNHEALTHY: ServiceStatus = "unhealthy"
ERROR: ServiceStatus = "error"

# Without these the backend cannot take uploads or store tasks. The extractor
# is left out: notes wait and are retried while Gemini is overloaded.
CRITICAL_SERVICES = frozenset({"config", "firebase", "storage"})

# Keys returned to an anonymous caller. The rest is for authenticated callers.
PUBLIC_KEYS = ("status", "services", "version", "timestamp")


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe."""

    status: ServiceStatus
    """``connected``, ``unhealthy`` (no response within the probe timeout) or ``error`` (the check failed otherwise)."""
    latency_ms: int
    error_code: str | None = None
    """Short code such as ``timeout`` or ``unavailable``, or None when connected."""
    cached: bool = False
    """True when the result was reused from an earlier check."""


def overall_status(results: Mapping[str, ProbeResult]) -> OverallStatus:
    """Return ``unhealthy`` when a critical probe failed, ``degraded`` when another failed, else ``healthy``."""
    failed = {name for name, result in results.items() if result.status != CONNECTED}
    if failed & CRITICAL_SERVICES:
        return "unhealthy"
    if failed:
        return "degraded"
    return "healthy"


def http_status(status: OverallStatus) -> int:
    """Return 503 for ``unhealthy`` and 200 otherwise, so uptime checks alert only on outages."""
    return 503 if status == "unhealthy" else 200


def backend_version(environ: Mapping[str, str] | None = None) -> str:
    """Return ``GIT_COMMIT``, else the Cloud Run revision ``K_REVISION``, else the package version.

    These are deployment metadata rather than settings, so they are read here
    and not in :mod:`functions.config`.
    """
    env = os.environ if environ is None else environ
    for name in ("GIT_COMMIT", "K_REVISION"):
        value = env.get(name, "").strip()
        if value:
            return value
    return __version__


def health_body(results: Mapping[str, ProbeResult], checked_at: dt.datetime, version: str) -> dict[str, Any]:
    """Build the full ``health`` body, with ``checks``."""
    checks: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        check: dict[str, Any] = {"status": result.status, "latencyMs": result.latency_ms, "error": result.error_code}
        if result.cached:
            check["cached"] = True
        checks[name] = check

    return {
        "status": overall_status(results),
        "services": {name: result.status for name, result in results.items()},
        "checks": checks,
        "version": version,
        "timestamp": checked_at.isoformat(),
    }


def public_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Return the part of ``body`` an anonymous caller may see: the statuses only."""
    return {key: body[key] for key in PUBLIC_KEYS}
