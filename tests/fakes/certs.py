"""Google's ID-token signing certificates, faked on 127.0.0.1.

Google publishes the public keys that sign Firebase ID tokens at
``https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com``
as a JSON object that maps each key id (the token header's ``kid``) to a PEM
X.509 certificate. :class:`CertificateServer` serves the same shape for keys
generated in the test, and :class:`SigningKey` mints RS256 tokens with them, so
firebase-admin's real signature, audience, issuer and expiry checks can run
without the network.

Usage::

    key = SigningKey.generate("key-1")
    with CertificateServer([key]) as server:
        token = key.mint(claims)
        ...  # point the verifier's certificate fetch at server.certs_url
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.fakes.loopback import LoopbackServer

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CERTS_PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
# The fake forbids caching, so every verification fetches the set again and a
# test can count the fetches.
CACHE_CONTROL = "no-store"


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """An RSA-2048 key pair with a self-signed certificate, named by ``kid``."""

    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        """Generate a key pair and a certificate valid from a day ago for a day."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(private_key, hashes.SHA256())
        )
        return cls(kid=kid, private_key=private_key, certificate=certificate)

    @property
    def certificate_pem(self) -> str:
        """The certificate in PEM form, as Google's endpoint serves it."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def mint(self, claims: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
        """Return a compact JWT of ``claims`` signed with RS256 by this key.

        Args:
            claims: The payload, written as given.
            header: Replaces the default header ``{"alg": "RS256", "kid": kid, "typ": "JWT"}``.
        """
        token_header = dict(header) if header is not None else {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = ".".join(
            (
                _segment(json.dumps(token_header, separators=(",", ":")).encode()),
                _segment(json.dumps(dict(claims), separators=(",", ":")).encode()),
            )
        )
        signature = self.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_segment(signature)}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.record(self.path)
        if self.path.split("?", 1)[0] != CERTS_PATH:
            self._reply(404, {"error": f"no resource at {self.path}; the certificates are at {CERTS_PATH}"})
            return
        self._reply(200, self.server.certificates())

    def _reply(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", CACHE_CONTROL)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("certificate server: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self._certificates = {key.kid: key.certificate_pem for key in keys}
        self._requests: list[str] = []
        self._lock = threading.Lock()

    def certificates(self) -> dict[str, str]:
        with self._lock:
            return dict(self._certificates)

    def record(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)

    def requests(self) -> list[str]:
        with self._lock:
            return list(self._requests)


class CertificateServer(LoopbackServer):
    """Serve ``{kid: PEM certificate}`` for ``keys`` on 127.0.0.1 at a free port."""

    _thread_name = "fake-certs"

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        self._server = _Server(keys)
        super().__init__()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}``."""
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    @property
    def certs_url(self) -> str:
        """The URL of the certificate set, with Google's path."""
        return self.base_url + CERTS_PATH

    @property
    def requests(self) -> list[str]:
        """Paths of the requests received so far, oldest first."""
        return self._server.requests()
