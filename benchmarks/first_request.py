"""Child process of the cold-start benchmark and the import test: one fresh interpreter, one run.

Usage: ``python -m benchmarks.first_request SPEC.json RESULT.json`` from the
repository root, with the function's settings in the environment.

The spec's ``mode`` selects what the interpreter does:

- ``serve``: build the entry point with ``functions_framework.create_app`` and
  send ``requests`` through Flask's test client, in order. The time of the
  first response is the end of the cold start. While the later requests run,
  a profile hook counts calls to the ``__init__`` of each Google client class,
  so a client created per request shows up as a count above zero. With
  ``"profile": true`` the later requests run under cProfile instead, and the
  result lists the functions with the largest cumulative time per request.
- ``floor``: import ``floor_modules`` and nothing else; the lower bound of a
  cold start.
- ``import_main``: import ``main`` and send nothing.

``ready_at`` is a ``time.monotonic()`` reading. It uses CLOCK_MONOTONIC on
Linux, so it is comparable with the parent's readings. ``ready_cpu_seconds``
is the process's CPU time (all threads) at that moment. The result also lists
every module in ``sys.modules``, for the import assertions.
"""

from __future__ import annotations

import cProfile
import gc
import importlib
import json
import logging
import pstats
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Module and class of every client that the backend must create once per
# instance, as (name in the result, module, class).
CLIENT_CLASSES = (
    ("firestore", "google.cloud.firestore_v1.client", "Client"),
    ("storage", "google.cloud.storage.client", "Client"),
    ("firebase_app", "firebase_admin", "App"),
    ("genai", "google.genai.client", "Client"),
)


PROFILE_TOP = 40


def _client_classes() -> dict[str, type]:
    """Return the client classes whose modules are loaded; nothing is imported here."""
    classes: dict[str, type] = {}
    for name, module_name, class_name in CLIENT_CLASSES:
        module = sys.modules.get(module_name)
        if module is not None:
            classes[name] = getattr(module, class_name)
    return classes


class ConstructionCounter:
    """Counter of calls to client ``__init__`` methods, in every thread, while installed."""

    def __init__(self, classes: dict[str, type]) -> None:
        self.counts = {name: 0 for name in classes}
        self._names = {cls.__init__.__code__: name for name, cls in classes.items()}  # type: ignore[misc]
        self._lock = threading.Lock()

    def _profile(self, frame: types.FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        name = self._names.get(frame.f_code)
        if name is not None:
            with self._lock:
                self.counts[name] += 1

    def install(self) -> None:
        """Start counting in this thread and in threads started from now on."""
        sys.setprofile(self._profile)
        threading.setprofile(self._profile)

    def remove(self) -> None:
        """Stop counting."""
        sys.setprofile(None)
        threading.setprofile(None)


def live_clients(classes: dict[str, type]) -> dict[str, int]:
    """Return how many instances of each client class are alive now."""
    counts = {name: 0 for name in classes}
    for obj in gc.get_objects():
        for name, cls in classes.items():
            if isinstance(obj, cls):
                counts[name] += 1
    return counts


def _send(client: Any, request: dict[str, Any]) -> int:
    response = client.open(
        request.get("path", "/"),
        method=request.get("method", "GET"),
        headers=request.get("headers", {}),
        data=request.get("body", "").encode(),
    )
    status: int = response.status_code
    return status


def serve(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the entry point, send the requests and return timings, statuses and client counts."""
    import functions_framework

    app = functions_framework.create_app(  # type: ignore[no-untyped-call]
        spec["target"], spec.get("source", "main.py"), spec["signature_type"]
    )
    client = app.test_client()
    requests: list[dict[str, Any]] = spec["requests"]

    statuses = [_send(client, requests[0])]
    first_response_at = time.monotonic()
    first_response_cpu = time.process_time()

    if spec.get("profile"):
        later = _profile_later(client, requests[1:])
    else:
        later = _count_later(client, requests[1:])
    statuses += later.pop("statuses")

    return {
        "ready_at": first_response_at,
        "ready_cpu_seconds": first_response_cpu,
        "statuses": statuses,
        **later,
        "live_clients": live_clients(_client_classes()),
    }


def _count_later(client: Any, requests: list[dict[str, Any]]) -> dict[str, Any]:
    # The first request created the clients, so the later ones must create none.
    counter = ConstructionCounter(_client_classes())
    statuses: list[int] = []
    request_seconds: list[float] = []
    counter.install()
    try:
        for request in requests:
            started = time.monotonic()
            statuses.append(_send(client, request))
            request_seconds.append(time.monotonic() - started)
    finally:
        counter.remove()
    return {"statuses": statuses, "later_request_seconds": request_seconds, "constructions_after_first": counter.counts}


def _profile_later(client: Any, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Serve ``requests`` under cProfile and return the functions with the largest cumulative time."""
    profiler = cProfile.Profile()
    statuses: list[int] = []
    started = time.monotonic()
    profiler.enable()
    try:
        for request in requests:
            statuses.append(_send(client, request))
    finally:
        profiler.disable()
    elapsed = time.monotonic() - started

    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short_path(filename)}:{line}({function})",
                "calls": calls,
                "own_ms_per_request": round(own * 1000 / max(1, len(requests)), 3),
                "cumulative_ms_per_request": round(cumulative * 1000 / max(1, len(requests)), 3),
            }
        )
    rows.sort(key=lambda row: row["cumulative_ms_per_request"], reverse=True)
    return {
        "statuses": statuses,
        "profiled_requests": len(requests),
        "profiled_ms_per_request": round(elapsed * 1000 / max(1, len(requests)), 3),
        "profile_top": rows[:PROFILE_TOP],
    }


def _short_path(filename: str) -> str:
    marker = "site-packages/"
    return filename.split(marker, 1)[1] if marker in filename else filename


def floor(spec: dict[str, Any]) -> dict[str, Any]:
    """Import ``floor_modules`` and return the time the imports finished."""
    for name in spec["floor_modules"]:
        importlib.import_module(name)
    return {"ready_at": time.monotonic(), "ready_cpu_seconds": time.process_time()}


def import_main(spec: dict[str, Any]) -> dict[str, Any]:
    """Import ``main`` from the working directory, without creating the app."""
    importlib.import_module("main")
    return {"ready_at": time.monotonic(), "ready_cpu_seconds": time.process_time()}


MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "serve": serve,
    "floor": floor,
    "import_main": import_main,
}


def main(argv: list[str]) -> int:
    """Run the spec in ``argv[1]`` and write the result JSON to ``argv[2]``."""
    if len(argv) != 3:
        print("usage: python -m benchmarks.first_request SPEC.json RESULT.json", file=sys.stderr)
        return 2

    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    mode = spec["mode"]
    if mode not in MODES:
        print(f"mode {mode!r} is unknown; use one of {', '.join(MODES)}", file=sys.stderr)
        return 2

    result = MODES[mode](spec)
    result["modules"] = sorted(sys.modules)
    Path(argv[2]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
