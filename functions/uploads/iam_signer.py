"""Signing through the IAM Service Account Credentials API, for runtimes without a key file.

Cloud Functions credentials hold no private key, so a V4 signature comes from
``POST {base}/v1/projects/-/serviceAccounts/{email}:signBlob``, which signs
with a Google-managed key of that account (RSASSA-PKCS1-v1_5 with SHA-256).
google-cloud-storage 3.17.1 makes the same call itself when it is given an
access token and an email, but it builds the URL as
``https://iamcredentials.{universe domain}/...``, so that call cannot be aimed
at a local fake without patching the library. :class:`IamBlobSigner` makes the
call here instead, with the base URL as a parameter, and is handed to
``generate_signed_url`` as its signing credentials.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import urllib.parse

import requests
from google.auth import credentials as google_credentials
from google.auth import crypt

from functions.errors import ConfigError, TransientError

logger = logging.getLogger(__name__)

IAM_CREDENTIALS_URL = "https://iamcredentials.googleapis.com"
TIMEOUT_SECONDS = 10.0
MAX_ATTEMPTS = 3
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF_SECONDS = 0.2


class IamBlobSigner(google_credentials.Signing, crypt.Signer):
    """Signing credentials whose signatures come from IAM ``signBlob``."""

    def __init__(
        self,
        service_account_email: str,
        access_token: str,
        *,
        base_url: str = IAM_CREDENTIALS_URL,
        session: requests.Session | None = None,
    ) -> None:
        self._email = service_account_email
        self._access_token = access_token
        self._base_url = base_url.rstrip("/")
        self._session = session or requests.Session()

    @property
    def signer_email(self) -> str:
        """The service account whose key signs."""
        return self._email

    @property
    def signer(self) -> crypt.Signer:
        """This object, which is also a ``google.auth.crypt.Signer``."""
        return self

    @property
    def key_id(self) -> str | None:
        """None, because IAM picks the key and returns its id only with each signature."""
        return None

    def sign(self, message: bytes | str) -> bytes:
        """Sign ``message``; the same as :meth:`sign_bytes`."""
        return self.sign_bytes(message.encode("utf-8") if isinstance(message, str) else message)

    def sign_bytes(self, message: bytes) -> bytes:
        """Return the RSA SHA-256 signature of ``message`` made by IAM.

        Retries up to ``MAX_ATTEMPTS`` times on 429, 5xx and connection errors.

        Raises:
            ConfigError: IAM responded with 403 or 404, so the account lacks the
                ``iam.serviceAccounts.signBlob`` permission or does not exist.
            TransientError: IAM kept failing or returned another error.
        """
        email = urllib.parse.quote(self._email, safe="@.")
        url = f"{self._base_url}/v1/projects/-/serviceAccounts/{email}:signBlob"
        body = {"payload": base64.b64encode(message).decode("ascii")}
        headers = {"Authorization": f"Bearer {self._access_token}"}

        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                reply = self._session.post(url, json=body, headers=headers, timeout=TIMEOUT_SECONDS)
            except requests.RequestException as err:
                logger.warning("IAM signBlob attempt %d failed: %s", attempt, type(err).__name__)
                if attempt == MAX_ATTEMPTS:
                    raise TransientError(f"IAM signBlob for {self._email} is unreachable; retry shortly") from err
                time.sleep(_BACKOFF_SECONDS * attempt)
                continue

            if reply.status_code == 200:
                return _signature(reply)
            if reply.status_code in (403, 404):
                raise ConfigError(
                    f"IAM signBlob for {self._email} returned HTTP {reply.status_code}; grant the function's "
                    "service account roles/iam.serviceAccountTokenCreator on itself, or set SIGNING_SERVICE_ACCOUNT "
                    "to an account it may sign for"
                )
            logger.warning("IAM signBlob attempt %d returned HTTP %d", attempt, reply.status_code)
            if reply.status_code not in _RETRY_STATUSES or attempt == MAX_ATTEMPTS:
                break
            time.sleep(_BACKOFF_SECONDS * attempt)

        raise TransientError(f"IAM signBlob for {self._email} returned HTTP {reply.status_code}; retry shortly")


def _signature(reply: requests.Response) -> bytes:
    try:
        return base64.b64decode(reply.json()["signedBlob"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise TransientError("IAM signBlob returned HTTP 200 without a base64 'signedBlob'; retry shortly") from err
