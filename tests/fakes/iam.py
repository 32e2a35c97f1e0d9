"""A fake IAM Service Account Credentials API (``signBlob``) on 127.0.0.1.

The real call is ``POST https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:signBlob``
with ``Authorization: Bearer {access token}`` and the body ``{"payload": base64}``.
It returns ``{"keyId": ..., "signedBlob": base64}``, where ``signedBlob`` is an
RSASSA-PKCS1-v1_5 SHA-256 signature made with the service account's Google-managed
key. The fake signs with a key generated in the test, accepts one service
account and one access token, and rejects other callers as the real API does:
401 ``UNAUTHENTICATED`` for a missing or wrong token, 403 ``PERMISSION_DENIED``
for another account and 400 ``INVALID_ARGUMENT`` for a bad body.

Usage::

    with FakeIamCredentials(email="signer@p.iam.gserviceaccount.com", access_token="t") as iam:
        ...  # send signBlob requests to iam.base_url
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.loopback import LoopbackServer

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_SIGN_BLOB = re.compile(r"^/v1/projects/-/serviceAccounts/(?P<email>[^/:]+):signBlob$")
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}


@dataclass(frozen=True)
class SignBlobCall:
    """One request the fake received."""

    email: str
    authorized: bool
    payload: bytes | None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        match = _SIGN_BLOB.fullmatch(path)
        if match is None:
            self._error(404, f"no method at {path}; the fake serves only :signBlob")
            return

        email = urllib.parse.unquote(match["email"])
        authorized = self.headers.get("Authorization") == f"Bearer {self.server.access_token}"
        payload = self._payload()
        self.server.record(SignBlobCall(email=email, authorized=authorized, payload=payload))

        if not authorized:
            self._error(401, "Request had invalid authentication credentials.")
            return
        if email != self.server.email:
            self._error(403, f"Permission 'iam.serviceAccounts.signBlob' denied on {email}")
            return
        if payload is None:
            self._error(400, "field 'payload' is missing or not base64")
            return

        signature = self.server.private_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        self._reply(200, {"keyId": self.server.key_id, "signedBlob": base64.b64encode(signature).decode("ascii")})

    def _payload(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
            return base64.b64decode(body["payload"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None

    def _error(self, status: int, message: str) -> None:
        self._reply(status, {"error": {"code": status, "message": message, "status": _STATUS_NAMES[status]}})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake IAM: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, email: str, access_token: str, private_key: rsa.RSAPrivateKey, key_id: str) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.email = email
        self.access_token = access_token
        self.private_key = private_key
        self.key_id = key_id
        self._calls: list[SignBlobCall] = []
        self._lock = threading.Lock()

    def record(self, call: SignBlobCall) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(self) -> list[SignBlobCall]:
        with self._lock:
            return list(self._calls)


class FakeIamCredentials(LoopbackServer):
    """The fake API for one service account ``email`` that accepts ``access_token``."""

    _thread_name = "fake-iam"

    def __init__(self, *, email: str, access_token: str, key_id: str = "fake-iam-key") -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server = _Server(email, access_token, self.private_key, key_id)
        super().__init__()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}``, in place of ``https://iamcredentials.googleapis.com``."""
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The public half of the key that signs every blob."""
        return self.private_key.public_key()

    @property
    def calls(self) -> list[SignBlobCall]:
        """The signBlob requests received so far, oldest first."""
        return self._server.calls()
