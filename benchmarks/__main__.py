"""Run the benchmark suite: ``python -m benchmarks [--runs N] [--only NAME ...]``.

Starts one local stack on 127.0.0.1 (emulators, bridge, functions) with the
fake Gemini server, runs the selected benchmarks against it, and writes
``benchmarks/results/<name>.json`` plus ``cold_start.png``. The offline
extractor benchmark runs after the stack has stopped, so that it has the CPUs
to itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks import cold_start, concurrency, memory, offline, process_overhead, upload_load
from benchmarks.context import RESULTS_DIR, BenchContext, machine_info, running_context, write_result
from benchmarks.plot import plot_cold_start

logger = logging.getLogger(__name__)

STACK_BENCHMARKS: dict[str, Callable[[BenchContext, int], dict[str, Any]]] = {
    "cold_start": cold_start.run,
    "upload_load": upload_load.run,
    "process_overhead": process_overhead.run,
    "concurrency": concurrency.run,
    "memory": memory.run,
}
NAMES = (*STACK_BENCHMARKS, "offline")
MIN_RUNS = 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Run the backend benchmarks.")
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each benchmark (default: 5)")
    parser.add_argument(
        "--only",
        action="append",
        choices=NAMES,
        metavar="NAME",
        help=f"run only this benchmark; repeat for several (one of: {', '.join(NAMES)})",
    )
    args = parser.parse_args(argv)
    if args.runs < MIN_RUNS:
        parser.error(f"--runs {args.runs} is below {MIN_RUNS}; pass 1 or more (5 for recorded results)")
    return args


def _record(name: str, result: dict[str, Any], runs: int, started: float) -> None:
    result["benchmark"] = name
    result["runs_requested"] = runs
    result["seconds_taken"] = round(time.monotonic() - started, 1)
    result["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["machine"] = machine_info()
    path = write_result(name, result)
    logger.info("%s finished in %.0f s; results in %s", name, result["seconds_taken"], path)


def main(argv: list[str]) -> int:
    """Run the selected benchmarks and write their results; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The stack logs every delivery and process start; the benchmarks' own lines are the report.
    for noisy in ("devstack", "functions", "tests.fakes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The paused bridge of the cold-start benchmark fails deliveries on purpose.
    logging.getLogger("devstack.bridge").setLevel(logging.ERROR)

    selected = args.only or list(NAMES)
    suite_started = time.monotonic()
    logger.info("running %s with %d runs each on %s", ", ".join(selected), args.runs, machine_info())

    stack_names = [name for name in selected if name in STACK_BENCHMARKS]
    if stack_names:
        with running_context() as context:
            for name in stack_names:
                started = time.monotonic()
                result = STACK_BENCHMARKS[name](context, args.runs)
                _record(name, result, args.runs, started)
                if name == "cold_start":
                    plot = plot_cold_start(result, RESULTS_DIR / "cold_start.png")
                    logger.info("cold start chart written to %s", plot)

    if "offline" in selected:
        started = time.monotonic()
        _record("offline", offline.run(args.runs), args.runs, started)

    logger.info("suite finished in %.0f s", time.monotonic() - suite_started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
