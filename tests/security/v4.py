"""An independent check of Cloud Storage V4 signed URLs, written from Google's description.

Cloud Storage rebuilds the canonical request from the request it receives:

    {METHOD}\\n{PATH}\\n{CANONICAL QUERY}\\n{CANONICAL HEADERS}\\n\\n{SIGNED HEADERS}\\nUNSIGNED-PAYLOAD

where the canonical query is every query parameter but ``X-Goog-Signature``,
percent-encoded and sorted, and the canonical headers are the headers named in
``X-Goog-SignedHeaders`` as ``name:value`` lines, lower-cased and sorted. It
then checks ``X-Goog-Signature`` (hex) as an RSASSA-PKCS1-v1_5 SHA-256
signature of the string to sign:

    GOOG4-RSA-SHA256\\n{X-Goog-Date}\\n{credential scope}\\n{hex SHA-256 of the canonical request}

Source: https://cloud.google.com/storage/docs/authentication/canonical-requests
and https://cloud.google.com/storage/docs/authentication/signatures. Nothing
here imports google-cloud-storage, so a test that passes checks the library's
URLs against the documented format, not against itself.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHM = "GOOG4-RSA-SHA256"


@dataclass(frozen=True)
class SignedUrl:
    """The parts of a V4 signed URL."""

    scheme: str
    host: str
    path: str
    query: dict[str, str]

    @property
    def signed_headers(self) -> list[str]:
        """Names of the signed headers, in the URL's order."""
        return self.query["X-Goog-SignedHeaders"].split(";")

    @property
    def credential_scope(self) -> str:
        """``{date}/{location}/storage/goog4_request``, the part of the credential after the email."""
        return self.query["X-Goog-Credential"].split("/", 1)[1]

    @property
    def signer_email(self) -> str:
        """The service account that signed."""
        return self.query["X-Goog-Credential"].split("/", 1)[0]


def parse(url: str) -> SignedUrl:
    """Split ``url`` into host, path and decoded query parameters (each name once)."""
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    query = dict(pairs)
    assert len(query) == len(pairs), f"a query parameter of {url} appears twice"
    return SignedUrl(scheme=parts.scheme, host=parts.netloc, path=parts.path, query=query)


def canonical_request(method: str, url: SignedUrl, headers: Mapping[str, str]) -> str:
    """Return the canonical request of a request sent to ``url`` with ``headers``.

    Args:
        method: The HTTP method of the request.
        url: The signed URL the request goes to.
        headers: The headers the request sends; ``Host`` comes from the URL.
            A signed header that the request leaves out has an empty value.
    """
    sent = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    sent["host"] = url.host

    query = sorted(
        (urllib.parse.quote(name, safe="~"), urllib.parse.quote(value, safe="~"))
        for name, value in url.query.items()
        if name != "X-Goog-Signature"
    )
    canonical_query = "&".join(f"{name}={value}" for name, value in query)

    names = sorted(url.signed_headers)
    canonical_headers = "".join(f"{name}:{sent.get(name, '')}\n" for name in names)

    return "\n".join([method, url.path, canonical_query, canonical_headers, ";".join(names), "UNSIGNED-PAYLOAD"])


def string_to_sign(method: str, url: SignedUrl, headers: Mapping[str, str]) -> str:
    """Return the string whose signature ``X-Goog-Signature`` must be."""
    digest = hashlib.sha256(canonical_request(method, url, headers).encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, url.query["X-Goog-Date"], url.credential_scope, digest])


def signature_valid(method: str, url: str, headers: Mapping[str, str], public_key: rsa.RSAPublicKey) -> bool:
    """Return True when Cloud Storage would accept the signature of this request.

    Only the signature is checked; expiry, the length range and the generation
    precondition are enforced by Cloud Storage after it.
    """
    parsed = parse(url)
    if parsed.query.get("X-Goog-Algorithm") != ALGORITHM:
        return False

    signature = bytes.fromhex(parsed.query["X-Goog-Signature"])
    message = string_to_sign(method, parsed, headers).encode("utf-8")
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
