"""Command line: ``python -m devstack up`` runs the local stack until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from pathlib import Path

from devstack.stack import REPO_ROOT, LocalStack
from functions.errors import BraindumpError

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description="Run the backend on local emulators.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack and keep it running until Ctrl-C or SIGTERM")
    up.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the functions, repeatable (for example EXTRACTOR=offline)",
    )
    up.add_argument(
        "--source-dir",
        type=Path,
        default=REPO_ROOT,
        help="directory that contains main.py (default: the repository root)",
    )
    return parser.parse_args(argv)


def parse_env(pairs: list[str]) -> dict[str, str]:
    """Turn ``NAME=VALUE`` items into a dict.

    Raises:
        SystemExit: an item has no ``=`` or an empty name.
    """
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env {pair!r} is invalid; write NAME=VALUE")
        env[name] = value
    return env


def print_summary(stack: LocalStack) -> None:
    """Print the endpoints and the client environment as shell ``export`` lines."""
    endpoints = stack.endpoints
    print("# Functions")
    print(f"#   upload_url     POST {endpoints.upload_url}")
    print(f"#   process_audio  (CloudEvents from the bridge) {endpoints.process_audio}")
    print(f"#   health         GET  {endpoints.health}")
    print(f"#   bridge stats   GET  {endpoints.bridge_stats}")
    print(f"# Logs: {stack.log_dir}")
    client_env = {
        **stack.client_env,
        # Read by the braindump command-line client.
        "BRAINDUMP_UPLOAD_URL": endpoints.upload_url,
        "BRAINDUMP_HEALTH_URL": endpoints.health,
    }
    for name, value in client_env.items():
        print(f"export {name}={shlex.quote(value)}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    # A shell starts background jobs with SIGINT ignored; Ctrl-C must still stop the stack.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stack = LocalStack(extra_env=parse_env(args.env), source_dir=args.source_dir)
    try:
        stack.start()
        print_summary(stack)
        logger.info("stack is running; press Ctrl-C to stop it")
        threading.Event().wait()
    except KeyboardInterrupt:
        logger.info("interrupted; stopping the stack")
    except BraindumpError as err:
        logger.error("%s", err.message)
        return 1
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
