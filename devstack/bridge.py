"""Eventarc's part of the local stack: Pub/Sub push messages in, CloudEvents out.

fake-gcs-server publishes a Cloud Storage notification (``payloadFormat``
JSON_API_V1) to the Pub/Sub emulator for each finalized object, and a push
subscription sends it here. The bridge acknowledges the push at once, queues the
event and delivers it to the ``process_audio`` function as a binary-mode
CloudEvent of type ``google.cloud.storage.object.v1.finalized``, as Eventarc
does. A delivery that fails (connection error, timeout or non-2xx reply) is
retried with exponential backoff until it succeeds or the bridge stops. At most
``max_in_flight`` deliveries run at once, like a function
deployed with max-instances 3 and concurrency 1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import itertools
import json
import logging
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from devstack.processes import LOOPBACK, DevstackError

logger = logging.getLogger(__name__)

FINALIZED_TYPE = "google.cloud.storage.object.v1.finalized"
NOTIFICATION_EVENT_TYPE = "OBJECT_FINALIZE"
PUSH_PATH = "/push"
STATS_PATH = "/stats"
RESET_PATH = "/stats/reset"


class MalformedPushError(DevstackError):
    """A push request does not contain a Cloud Storage notification."""

    code = "malformed_push"


@dataclass(frozen=True)
class BridgeConfig:
    """Delivery settings of the bridge.

    Attributes:
        target_url: URL of the CloudEvent function (``process_audio``).
        max_in_flight: Deliveries that may run at once.
        initial_backoff_seconds: Wait before the first retry.
        max_backoff_seconds: Cap on the wait between retries.
        backoff_multiplier: Factor between consecutive waits.
        attempt_timeout_seconds: HTTP timeout of one delivery attempt. The
            default covers the 540 s function timeout the backend is deployed with.
    """

    target_url: str
    max_in_flight: int = 3
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    backoff_multiplier: float = 2.0
    attempt_timeout_seconds: float = 600.0

    def backoff_seconds(self, failed_attempts: int) -> float:
        """Return the wait after ``failed_attempts`` failed attempts (1 or more)."""
        wait = self.initial_backoff_seconds * self.backoff_multiplier ** (failed_attempts - 1)
        return min(wait, self.max_backoff_seconds)


@dataclass(frozen=True)
class StorageEvent:
    """A finalize notification, ready to send as a binary-mode CloudEvent."""

    event_id: str
    bucket: str
    name: str
    time: str
    data: dict[str, Any]

    def headers(self) -> dict[str, str]:
        """Return the HTTP headers of the binary-mode CloudEvent."""
        return {
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": self.event_id,
            "ce-type": FINALIZED_TYPE,
            "ce-source": f"//storage.googleapis.com/projects/_/buckets/{self.bucket}",
            "ce-subject": f"objects/{self.name}",
            "ce-time": self.time,
            # Eventarc sends a W3C trace context as the traceparent extension.
            # This one derives from the event id, so redeliveries share a trace.
            "ce-traceparent": _traceparent(self.event_id),
        }

    def body(self) -> bytes:
        """Return the StorageObjectData JSON body."""
        return json.dumps(self.data, separators=(",", ":")).encode()


def _traceparent(event_id: str) -> str:
    digest = hashlib.sha256(event_id.encode()).hexdigest()
    return f"00-{digest[:32]}-{digest[32:48]}-01"


def storage_object_data(notification: dict[str, Any], base_url: str | None = None) -> dict[str, Any]:
    """Map fake-gcs-server's notification payload to Eventarc's StorageObjectData.

    fake-gcs-server publishes the JSON API object resource without
    ``metageneration``, ``etag``, ``selfLink`` and ``mediaLink``. A finalize
    event is for a new object generation, whose metageneration is always 1.
    Numbers stay strings, as in the JSON API.

    Args:
        notification: The decoded message data.
        base_url: The storage server's URL, for ``selfLink`` and ``mediaLink``.
    """
    bucket = notification["bucket"]
    name = notification["name"]
    generation = str(notification["generation"])
    data: dict[str, Any] = dict(notification)
    data.setdefault("kind", "storage#object")
    # fake-gcs-server writes "bucket/name#generation"; the JSON API and
    # Eventarc write "bucket/name/generation".
    data["id"] = f"{bucket}/{name}/{generation}"
    data["generation"] = generation
    data.setdefault("metageneration", "1")
    if "size" in data:
        data["size"] = str(data["size"])
    data.setdefault("timeStorageClassUpdated", data.get("timeCreated"))
    data.setdefault("etag", data.get("md5Hash") or generation)
    if base_url is not None:
        quoted = urllib.parse.quote(name, safe="")
        data.setdefault("selfLink", f"{base_url}/storage/v1/b/{bucket}/o/{quoted}")
        data.setdefault("mediaLink", f"{base_url}/download/storage/v1/b/{bucket}/o/{quoted}?generation={generation}&alt=media")
    return data


def event_from_push(push: dict[str, Any], storage_base_url: str | None = None) -> StorageEvent | None:
    """Build the CloudEvent for one Pub/Sub push request body.

    The CloudEvent id is ``<Pub/Sub message id>-<object generation>``, so
    every redelivery of a message carries the same id. The generation is there
    because the Pub/Sub emulator numbers messages from 1 again after each
    restart, which would repeat ids that Eventarc never repeats. ``ce-time`` is
    the object's ``updated`` time, the moment the object was finalized.

    Returns:
        The event, or None for a notification that is not OBJECT_FINALIZE.

    Raises:
        MalformedPushError: the body has no message, data or required field.
    """
    try:
        message = push["message"]
        attributes = message.get("attributes", {})
        message_id = message.get("messageId") or message["message_id"]
        notification = json.loads(base64.b64decode(message["data"], validate=True))
    except (KeyError, TypeError, ValueError, binascii.Error) as err:
        raise MalformedPushError(f"push body has no decodable Pub/Sub message: {err}") from err

    if attributes.get("eventType", NOTIFICATION_EVENT_TYPE) != NOTIFICATION_EVENT_TYPE:
        return None
    if not isinstance(notification, dict) or not all(key in notification for key in ("bucket", "name", "generation")):
        raise MalformedPushError(f"notification {message_id} lacks bucket, name or generation")

    event_time = notification.get("updated") or attributes.get("eventTime") or message.get("publishTime")
    if not event_time:
        event_time = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return StorageEvent(
        event_id=f"{message_id}-{notification['generation']}",
        bucket=notification["bucket"],
        name=notification["name"],
        time=event_time,
        data=storage_object_data(notification, storage_base_url),
    )


@dataclass
class BridgeStats:
    """Counters of the bridge since start or the last reset.

    Attributes:
        received: Finalize notifications accepted from Pub/Sub.
        ignored: Notifications of other event types, acknowledged unsent.
        malformed: Push requests without a usable notification, acknowledged unsent.
        attempted: Delivery attempts made, retries included.
        succeeded: Attempts that got a 2xx response.
        failed: Attempts that failed (error, timeout or non-2xx).
        in_flight: Deliveries running now.
        max_in_flight: Most deliveries observed running at once.
        pending: Events queued or waiting for a retry, not running.
        retry_waits_seconds: Backoff waits scheduled after failed attempts, in order.
    """

    received: int = 0
    ignored: int = 0
    malformed: int = 0
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    pending: int = 0
    retry_waits_seconds: list[float] = field(default_factory=list)


@dataclass(order=True)
class _Scheduled:
    due: float
    sequence: int
    event: StorageEvent = field(compare=False)
    attempt: int = field(compare=False, default=1)


class EventarcBridge:
    """HTTP server on 127.0.0.1 that turns Pub/Sub pushes into CloudEvent deliveries.

    ``POST /push`` receives Pub/Sub push requests, ``GET /stats`` returns
    :class:`BridgeStats` as JSON and ``POST /stats/reset`` zeroes the counters.
    """

    def __init__(self, config: BridgeConfig, *, port: int = 0, storage_base_url: str | None = None) -> None:
        if config.max_in_flight < 1:
            raise DevstackError(f"max_in_flight={config.max_in_flight} is invalid; set it to 1 or more")
        self.config = config
        self.storage_base_url = storage_base_url
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._queue: list[_Scheduled] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._stopping = False
        self._stats = BridgeStats()

    @property
    def port(self) -> int:
        """The port the bridge listens on (after :meth:`start`)."""
        if self._server is None:
            raise DevstackError("the bridge is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def push_endpoint(self) -> str:
        """URL for the Pub/Sub push subscription."""
        return f"http://{LOOPBACK}:{self.port}{PUSH_PATH}"

    @property
    def stats_url(self) -> str:
        """URL of the JSON counters."""
        return f"http://{LOOPBACK}:{self.port}{STATS_PATH}"

    def start(self) -> None:
        """Bind the HTTP server and start the delivery workers."""
        if self._server is not None:
            raise DevstackError(f"the bridge is already running on port {self.port}")
        self._stopping = False
        self._server = ThreadingHTTPServer((LOOPBACK, self._requested_port), _handler_for(self))
        self._server.daemon_threads = True
        # Keep the port across stop and start, so the push subscription stays valid.
        self._requested_port = self.port

        serve = threading.Thread(target=self._server.serve_forever, name="bridge-http", daemon=True)
        serve.start()
        self._threads = [serve]
        for index in range(self.config.max_in_flight):
            worker = threading.Thread(target=self._work, name=f"bridge-worker-{index}", daemon=True)
            worker.start()
            self._threads.append(worker)
        logger.info(
            "bridge listening on %s, delivering to %s with at most %d in flight",
            self.push_endpoint, self.config.target_url, self.config.max_in_flight,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server and workers. Events still queued are dropped and logged."""
        if self._server is None:
            return
        with self._condition:
            self._stopping = True
            dropped = len(self._queue)
            self._queue.clear()
            self._condition.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            # A worker inside a long delivery is a daemon thread and is not
            # waited for; its late result is counted but not retried.
            thread.join(timeout=5)
        self._server = None
        self._threads = []
        if dropped:
            logger.warning("bridge stopped with %d undelivered events dropped", dropped)
        logger.info("bridge stopped")

    def set_target(self, target_url: str) -> None:
        """Send later deliveries, retries included, to ``target_url``."""
        self.config = BridgeConfig(**{**asdict(self.config), "target_url": target_url})

    def stats(self) -> BridgeStats:
        """Return a copy of the counters."""
        with self._condition:
            self._stats.pending = len(self._queue)
            return BridgeStats(**{**asdict(self._stats), "retry_waits_seconds": list(self._stats.retry_waits_seconds)})

    def reset_stats(self) -> None:
        """Zero the counters; ``in_flight`` keeps counting running deliveries."""
        with self._condition:
            self._stats = BridgeStats(in_flight=self._stats.in_flight, max_in_flight=self._stats.in_flight)

    def discard_pending(self) -> int:
        """Drop queued events and retries, so one test's events do not reach the next. Returns how many."""
        with self._condition:
            dropped = len(self._queue)
            self._queue.clear()
            self._condition.notify_all()
        if dropped:
            logger.warning("bridge discarded %d undelivered events", dropped)
        return dropped

    def wait_idle(self, timeout_seconds: float) -> bool:
        """Wait until nothing is queued or running. Returns False on timeout."""
        deadline = time.monotonic() + timeout_seconds
        with self._condition:
            while self._queue or self._stats.in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def accept(self, push: dict[str, Any]) -> None:
        """Queue the event of one push request body (see :func:`event_from_push`)."""
        event = event_from_push(push, self.storage_base_url)
        if event is None:
            with self._condition:
                self._stats.ignored += 1
            return
        with self._condition:
            self._stats.received += 1
            heapq.heappush(self._queue, _Scheduled(time.monotonic(), next(self._sequence), event))
            self._condition.notify_all()
        logger.info("bridge queued event id=%s object=gs://%s/%s", event.event_id, event.bucket, event.name)

    def count_malformed(self) -> None:
        """Count a push request that carried no usable notification."""
        with self._condition:
            self._stats.malformed += 1

    def _next_due(self) -> _Scheduled | None:
        """Block until an event is due; return None when stopping."""
        with self._condition:
            while not self._stopping:
                if self._queue:
                    wait = self._queue[0].due - time.monotonic()
                    if wait <= 0:
                        item = heapq.heappop(self._queue)
                        self._stats.in_flight += 1
                        self._stats.attempted += 1
                        self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)
                        return item
                    self._condition.wait(wait)
                else:
                    self._condition.wait()
            return None

    def _work(self) -> None:
        while True:
            item = self._next_due()
            if item is None:
                return
            self._deliver(item)

    def _deliver(self, item: _Scheduled) -> None:
        event = item.event
        started = time.monotonic()
        error: str | None = None
        status: int | None = None
        try:
            reply = requests.post(
                self.config.target_url,
                data=event.body(),
                headers=event.headers(),
                timeout=self.config.attempt_timeout_seconds,
            )
            status = reply.status_code
        except requests.RequestException as err:
            error = type(err).__name__
        elapsed_ms = (time.monotonic() - started) * 1000
        succeeded = status is not None and 200 <= status < 300

        with self._condition:
            self._stats.in_flight -= 1
            if succeeded:
                self._stats.succeeded += 1
            else:
                self._stats.failed += 1
                wait = self.config.backoff_seconds(item.attempt)
                self._stats.retry_waits_seconds.append(wait)
                if not self._stopping:
                    retry = _Scheduled(time.monotonic() + wait, next(self._sequence), event, item.attempt + 1)
                    heapq.heappush(self._queue, retry)
            self._condition.notify_all()

        outcome = f"status={status}" if status is not None else f"error={error}"
        if succeeded:
            logger.info(
                "delivery succeeded id=%s object=gs://%s/%s attempt=%d %s duration_ms=%.0f",
                event.event_id, event.bucket, event.name, item.attempt, outcome, elapsed_ms,
            )  # fmt: skip
        else:
            logger.warning(
                "delivery failed id=%s object=gs://%s/%s attempt=%d %s duration_ms=%.0f retry_in_s=%.2f",
                event.event_id, event.bucket, event.name, item.attempt, outcome, elapsed_ms,
                self.config.backoff_seconds(item.attempt),
            )  # fmt: skip


def _handler_for(bridge: EventarcBridge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path == RESET_PATH:
                bridge.reset_stats()
                self._reply(204)
                return
            if self.path != PUSH_PATH:
                self._reply(404, {"error": f"unknown path {self.path}; push to {PUSH_PATH}"})
                return

            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                bridge.accept(json.loads(raw))
            except (ValueError, MalformedPushError) as err:
                # Acknowledged anyway: a body that cannot be read now cannot be
                # read on redelivery either, and a nack would loop forever.
                bridge.count_malformed()
                logger.error("bridge acknowledged a malformed push request without delivery: %s", err)
            self._reply(204)

        def do_GET(self) -> None:
            if self.path != STATS_PATH:
                self._reply(404, {"error": f"unknown path {self.path}; read {STATS_PATH}"})
                return
            self._reply(200, asdict(bridge.stats()))

        def _reply(self, status: int, body: dict[str, Any] | None = None) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            # Each delivery is logged once by the bridge; per-request access
            # lines would only repeat it.
            return

    return Handler
