"""V4 signed URLs for the direct upload to Cloud Storage.

The URL is narrow on purpose: method ``PUT`` only, a short expiry, and these
signed headers, which the client must send with exactly these values:

- ``content-type``: the canonical audio type of the note;
- ``x-goog-content-length-range: 0,{max bytes}``: Cloud Storage rejects a larger body;
- ``x-goog-if-generation-match: 0``: the PUT only creates, so the URL cannot overwrite.

Signing uses a service-account key file when ``SIGNING_KEY_FILE`` is set (the
local stack). On Cloud Functions the runtime credentials hold no private key,
so the signature comes from IAM ``signBlob`` through
:class:`~functions.uploads.iam_signer.IamBlobSigner`, which needs the service
account email and a fresh access token.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from functions.clients import storage_client
from functions.config import Settings
from functions.errors import ConfigError
from functions.uploads.iam_signer import IAM_CREDENTIALS_URL, IamBlobSigner

if TYPE_CHECKING:
    from google.auth.credentials import Credentials, Signing

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedUpload:
    """A signed PUT URL and the headers the client must send with it."""

    url: str
    headers: dict[str, str]
    expires_at: dt.datetime


def upload_headers(content_type: str, max_bytes: int) -> dict[str, str]:
    """Return the headers that are signed into the URL, with their required values."""
    return {
        "Content-Type": content_type,
        "x-goog-content-length-range": f"0,{max_bytes}",
        "x-goog-if-generation-match": "0",
    }


@functools.cache
def _key_file_credentials(path: str) -> Signing:
    from google.oauth2 import service_account

    try:
        credentials: Signing = service_account.Credentials.from_service_account_file(path)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as err:
        raise ConfigError(f"SIGNING_KEY_FILE={path!r} could not be read as a service account key: {err}") from err
    return credentials


@functools.cache
def _runtime_credentials() -> Credentials:
    import google.auth

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return credentials


def runtime_signer(
    settings: Settings,
    credentials: Credentials | None = None,
    *,
    iam_base_url: str = IAM_CREDENTIALS_URL,
) -> IamBlobSigner:
    """Return a signer that signs through IAM ``signBlob`` as the runtime service account.

    Args:
        settings: ``signing_service_account`` overrides the credentials' email.
        credentials: Credentials with an access token; default: the runtime's
            application default credentials.
        iam_base_url: Base URL of the IAM Service Account Credentials API.

    Raises:
        ConfigError: the service account email is unknown.
    """
    from google.auth.transport.requests import Request

    if credentials is None:
        credentials = _runtime_credentials()
    if not credentials.valid:
        # NOTE: refresh() is not thread-safe; with one request per instance
        # (max_instance_request_concurrency = 1) no two requests race here.
        credentials.refresh(Request())  # type: ignore[no-untyped-call]

    email = settings.signing_service_account or getattr(credentials, "service_account_email", None)
    if not email or email == "default":
        raise ConfigError(
            "the runtime service account email is unknown; set SIGNING_SERVICE_ACCOUNT "
            "to the email of the account that signs upload URLs"
        )
    token = credentials.token
    if not isinstance(token, str) or not token:
        raise ConfigError(
            "the runtime credentials returned no access token; set SIGNING_KEY_FILE, or run with a service account"
        )
    return IamBlobSigner(email, token, base_url=iam_base_url)


def _signing_credentials(settings: Settings) -> Signing:
    if settings.signing_key_file:
        return _key_file_credentials(settings.signing_key_file)
    return runtime_signer(settings)


def sign_upload(
    settings: Settings,
    object_name: str,
    content_type: str,
    now: dt.datetime,
    *,
    signer: Signing | None = None,
) -> SignedUpload:
    """Create a V4 signed URL that lets the client PUT one new object.

    Args:
        settings: Bucket, maximum size, URL lifetime and signing identity.
        object_name: The object the URL may create.
        content_type: The canonical audio type the PUT must declare.
        now: The time the note is created, for ``expires_at``.
        signer: Signing credentials; default: the key file of
            ``SIGNING_KEY_FILE``, otherwise :func:`runtime_signer`.

    Raises:
        ConfigError: no signing identity is configured.
        TransientError: IAM ``signBlob`` failed.
    """
    headers = upload_headers(content_type, settings.max_upload_bytes)
    lifetime = dt.timedelta(seconds=settings.upload_url_ttl_seconds)

    blob = storage_client().bucket(settings.bucket).blob(object_name)
    url = blob.generate_signed_url(
        version="v4",
        method="PUT",
        expiration=lifetime,
        content_type=content_type,
        headers={key: value for key, value in headers.items() if key != "Content-Type"},
        credentials=signer if signer is not None else _signing_credentials(settings),
    )

    return SignedUpload(url=url, headers=headers, expires_at=now + lifetime)
