"""The whole local Google Cloud stack, started in order and stopped as one.

Order: signing key, Firestore and Pub/Sub emulators (started together), the
notification topic, the Eventarc bridge and its push subscription,
fake-gcs-server with the upload bucket, then the three functions. Every server
listens on 127.0.0.1 on a port chosen at construction. :meth:`LocalStack.stop`
stops everything that was started, also after a failed start, on SIGTERM (in
the main thread) and at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, Self

from devstack.bridge import BridgeConfig, EventarcBridge
from devstack.emulators import Emulator, FakeGcsServer, FirestoreEmulator, PubSubEmulator
from devstack.functions_host import BACKEND_FUNCTIONS, FunctionsHost, FunctionSpec
from devstack.keys import write_signing_key
from devstack.processes import LOOPBACK, DevstackError, free_port

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEVSTACK_DIR = REPO_ROOT / ".devstack"
PROJECT_ID = "demo-braindump"
BUCKET = "braindump-local"
TOPIC = "storage-object-finalized"
SUBSCRIPTION = "eventarc-process-audio"
KEPT_RUN_DIRS = 5
# Nothing listens here: google-auth looks for the metadata server only when no
# other credentials apply, and then it must fail fast on loopback.
UNUSED_METADATA_HOST = "127.0.0.1:9"

EmulatorName = Literal["firestore", "pubsub", "storage"]


@dataclass(frozen=True)
class Endpoints:
    """URLs of the running stack."""

    upload_url: str
    process_audio: str
    health: str
    bridge_push: str
    bridge_stats: str


def new_run_dir(parent: Path = DEVSTACK_DIR) -> Path:
    """Create ``parent/run-<time>-<pid>`` and remove all but the newest older run directories.

    ``parent`` gets a ``.gitignore`` that ignores everything in it.
    """
    parent.mkdir(parents=True, exist_ok=True)
    ignore = parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")

    # Directories of stacks that still run (their owner's pid is alive) are
    # kept, because parallel test runs share this parent.
    old_runs = sorted(path for path in parent.glob("run-*") if path.is_dir() and not _owner_alive(path))
    for stale in old_runs[: max(0, len(old_runs) - KEPT_RUN_DIRS + 1)]:
        shutil.rmtree(stale, ignore_errors=True)

    run_dir = parent / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{free_port()}"
    run_dir.mkdir()
    return run_dir


def _owner_alive(run_dir: Path) -> bool:
    # Names are run-<date>-<time>-<pid>-<port>.
    parts = run_dir.name.split("-")
    if len(parts) != 5 or not parts[3].isdigit():
        return False
    return Path("/proc", parts[3]).exists()


class LocalStack:
    """Emulators, the Eventarc bridge and the backend's functions on 127.0.0.1.

    Args:
        extra_env: Settings for the functions on top of the stack's own
            (for example ``EXTRACTOR``, ``GEMINI_API_KEY``, ``GEMINI_BASE_URL``).
        source_dir: Directory with ``main.py``; the repository root by default.
        run_dir: Directory for logs and the signing key; a new
            ``.devstack/run-*`` directory by default.
        functions: Entry points to run; the backend's three by default.
        bridge_max_in_flight: Deliveries the bridge runs at once.
        bridge_initial_backoff_seconds: First retry wait of the bridge.
        bridge_max_backoff_seconds: Cap on the bridge's retry wait.
    """

    def __init__(
        self,
        *,
        extra_env: Mapping[str, str] | None = None,
        source_dir: Path = REPO_ROOT,
        run_dir: Path | None = None,
        project_id: str = PROJECT_ID,
        bucket: str = BUCKET,
        functions: tuple[FunctionSpec, ...] = BACKEND_FUNCTIONS,
        bridge_max_in_flight: int = 3,
        bridge_initial_backoff_seconds: float = 1.0,
        bridge_max_backoff_seconds: float = 30.0,
    ) -> None:
        self.project_id = project_id
        self.bucket = bucket
        self.extra_env = dict(extra_env or {})
        self.run_dir = run_dir if run_dir is not None else new_run_dir()
        self.log_dir = self.run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.signing_key_file = self.run_dir / "signing-key.json"
        # verify_id_token without check_revoked never connects to this port.
        self.auth_emulator_host = f"{LOOPBACK}:{free_port()}"

        self.firestore = FirestoreEmulator(log_dir=self.log_dir)
        self.pubsub = PubSubEmulator(log_dir=self.log_dir)
        self.storage = FakeGcsServer(
            log_dir=self.log_dir,
            project_id=project_id,
            topic=TOPIC,
            pubsub_endpoint=self.pubsub.endpoint,
        )
        self.functions = FunctionsHost(
            source_dir=source_dir,
            log_dir=self.log_dir,
            settings={},
            functions=functions,
        )
        target = self.functions.url("process_audio") if "process_audio" in self.functions.ports else f"http://{LOOPBACK}:9"
        self.bridge = EventarcBridge(
            BridgeConfig(
                target_url=target,
                max_in_flight=bridge_max_in_flight,
                initial_backoff_seconds=bridge_initial_backoff_seconds,
                max_backoff_seconds=bridge_max_backoff_seconds,
            ),
            storage_base_url=self.storage.base_url,
        )
        self._started = False
        self._previous_sigterm: Any = None

    @property
    def endpoints(self) -> Endpoints:
        """URLs of the functions and the bridge."""
        return Endpoints(
            upload_url=self.functions.url("upload_url"),
            process_audio=self.functions.url("process_audio"),
            health=self.functions.url("health"),
            bridge_push=self.bridge.push_endpoint,
            bridge_stats=self.bridge.stats_url,
        )

    @property
    def client_env(self) -> dict[str, str]:
        """Environment variables a client of the stack needs (for ``export`` lines or tests)."""
        return {
            "GOOGLE_CLOUD_PROJECT": self.project_id,
            "UPLOAD_BUCKET": self.bucket,
            "FIRESTORE_EMULATOR_HOST": self.firestore.endpoint,
            # google-cloud-storage wants a URL here, unlike the other emulators.
            "STORAGE_EMULATOR_HOST": self.storage.base_url,
            "PUBSUB_EMULATOR_HOST": self.pubsub.endpoint,
            "FIREBASE_AUTH_EMULATOR_HOST": self.auth_emulator_host,
            "SIGNING_KEY_FILE": str(self.signing_key_file),
        }

    @property
    def functions_env(self) -> dict[str, str]:
        """Settings the functions run with: :attr:`client_env` plus ``extra_env``."""
        return {
            **self.client_env,
            "GCE_METADATA_HOST": UNUSED_METADATA_HOST,
            "GCE_METADATA_IP": UNUSED_METADATA_HOST,
            **self.extra_env,
        }

    def start(self) -> LocalStack:
        """Start every part and wait until each is ready.

        Raises:
            MissingDependencyError: a program is not installed.
            StartupError: a server exited or was not ready in time.
        On any error, everything already started is stopped before the error propagates.
        """
        if self._started:
            raise DevstackError("the stack is already running; call stop() first")
        self._started = True
        atexit.register(self.stop)
        self._install_sigterm_handler()
        started = time.monotonic()
        try:
            write_signing_key(self.run_dir, self.project_id)

            self.firestore.spawn()
            self.pubsub.spawn()
            self.firestore.wait_ready()
            self.pubsub.wait_ready()

            self.bridge.start()
            self._provision_pubsub()

            self.storage.start()
            self.storage.create_bucket(self.bucket)

            self.functions.settings = self.functions_env
            self.functions.start()
        except BaseException:
            logger.error("stack start-up failed; stopping what was started (logs in %s)", self.log_dir)
            self.stop()
            raise
        logger.info("stack is ready in %.1f s; logs in %s", time.monotonic() - started, self.log_dir)
        return self

    def stop(self) -> None:
        """Stop the functions, the bridge and the emulators. Safe to call twice."""
        if not self._started:
            return
        self._started = False
        errors: list[str] = []
        # The bridge goes first so no delivery starts against a stopping function.
        for name, stop in (
            ("bridge", self.bridge.stop),
            ("functions", self.functions.stop),
            ("storage", self.storage.stop),
            ("pubsub", self.pubsub.stop),
            ("firestore", self.firestore.stop),
        ):
            try:
                stop()
            except Exception as err:  # Keep stopping the rest; report at the end.
                logger.exception("stopping %s failed", name)
                errors.append(f"{name}: {err}")
        self._restore_sigterm_handler()
        atexit.unregister(self.stop)
        if errors:
            raise DevstackError(f"stopping the stack left errors: {'; '.join(errors)}")
        logger.info("stack stopped")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def emulator(self, name: EmulatorName) -> Emulator:
        """Return the emulator called ``name``."""
        emulators: dict[str, Emulator] = {"firestore": self.firestore, "pubsub": self.pubsub, "storage": self.storage}
        if name not in emulators:
            raise DevstackError(f"unknown emulator {name!r}; use firestore, pubsub or storage")
        return emulators[name]

    def stop_emulator(self, name: EmulatorName) -> None:
        """Stop one emulator; its port stays reserved for :meth:`start_emulator`."""
        self.emulator(name).stop()

    def start_emulator(self, name: EmulatorName) -> None:
        """Start one emulator again on its port and recreate what the stack keeps in it.

        The emulators keep data in memory only: Pub/Sub gets its topic and push
        subscription back and fake-gcs-server its bucket. Firestore starts empty.
        """
        self.emulator(name).start()
        if name == "pubsub":
            self._provision_pubsub()
        elif name == "storage":
            self.storage.create_bucket(self.bucket)

    def restart_emulator(self, name: EmulatorName) -> None:
        """Stop and start one emulator (see :meth:`start_emulator`)."""
        self.stop_emulator(name)
        self.start_emulator(name)

    def restart_functions(self, extra_env: Mapping[str, str] | None = None) -> None:
        """Restart the functions on the same ports with ``extra_env`` in place of the current one."""
        if extra_env is not None:
            self.extra_env = dict(extra_env)
        self.functions.restart(self.functions_env)

    def reset(self) -> None:
        """Start any stopped emulator, delete all documents and objects, and clear the bridge.

        Queued bridge deliveries are discarded and its counters zeroed.
        """
        for name in ("firestore", "pubsub", "storage"):
            if not self.emulator(name).running():  # type: ignore[arg-type]
                logger.warning("%s was stopped; starting it again", name)
                self.start_emulator(name)  # type: ignore[arg-type]
        self.bridge.discard_pending()
        self.firestore.reset(self.project_id)
        self.storage.empty_bucket(self.bucket)
        self.bridge.reset_stats()

    def child_pids(self) -> dict[str, int]:
        """Return the process id of every server process the stack runs now."""
        pids = {f"function-{target}": pid for target, pid in self.functions.pids().items()}
        for name in ("firestore", "pubsub", "storage"):
            pid = self.emulator(name).pid  # type: ignore[arg-type]
            if pid is not None:
                pids[name] = pid
        return pids

    def _provision_pubsub(self) -> None:
        self.pubsub.create_topic(self.project_id, TOPIC)
        self.pubsub.create_push_subscription(
            self.project_id,
            SUBSCRIPTION,
            topic=TOPIC,
            push_endpoint=self.bridge.push_endpoint,
        )

    def _install_sigterm_handler(self) -> None:
        # Signal handlers can only be set from the main thread.
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    def _restore_sigterm_handler(self) -> None:
        if self._previous_sigterm is None or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, self._previous_sigterm)
        self._previous_sigterm = None


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    # Turns SIGTERM into the same unwinding as Ctrl-C, so `finally` blocks and
    # context managers stop the stack.
    raise KeyboardInterrupt(f"received signal {signum}")
