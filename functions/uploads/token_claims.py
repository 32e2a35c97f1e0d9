"""Names the reason a Firebase ID token was rejected, from its unverified claims.

firebase-admin 7.7.0 raises one ``InvalidIdTokenError`` for a wrong audience, a
wrong issuer, a missing ``kid`` and a bad signature alike, and names the
cause in the message text only. This module reads the token's header and claims without
trusting them, only after firebase-admin has rejected the token, so the reason
it returns never admits a token.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

logger = logging.getLogger(__name__)

ISSUER_PREFIX = "https://securetoken.google.com/"
_MAX_SUBJECT_CHARS = 128


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Return the header and claims of a compact JWT without checking its signature.

    Returns:
        ``(header, claims)``, or None when the token is not three base64url
        segments whose first two are JSON objects.
    """
    segments = token.split(".")
    if len(segments) != 3:
        return None

    decoded: list[dict[str, Any]] = []
    for segment in segments[:2]:
        padded = segment + "=" * (-len(segment) % 4)
        try:
            value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, UnicodeError, binascii.Error):
            return None
        if not isinstance(value, dict):
            return None
        decoded.append(value)

    return decoded[0], decoded[1]


def _subject_valid(claims: dict[str, Any]) -> bool:
    subject = claims.get("sub")
    return isinstance(subject, str) and 0 < len(subject) <= _MAX_SUBJECT_CHARS


def rejection_code(token: str, project_id: str, cause: BaseException | None) -> str:
    """Return the error code for a token that firebase-admin rejected as invalid.

    The checks follow firebase-admin's own order: audience, issuer, subject,
    then the signature. ``cause`` is the google-auth error that firebase-admin
    wrapped. A google-auth ``MalformedError`` on a token that has ``iat`` and
    ``exp`` means the key id is unknown or the signature does not verify.

    Args:
        token: The rejected token.
        project_id: The Firebase project the backend serves.
        cause: ``InvalidIdTokenError.cause``, or None.

    Returns:
        ``malformed_token``, ``token_wrong_audience``, ``token_wrong_issuer``,
        ``token_bad_signature`` or ``token_invalid``.
    """
    from google.auth import exceptions as google_auth_exceptions

    decoded = decode_unverified(token)
    if decoded is None:
        return "malformed_token"
    header, claims = decoded

    if claims.get("aud") != project_id:
        return "token_wrong_audience"
    if claims.get("iss") != ISSUER_PREFIX + project_id:
        return "token_wrong_issuer"
    if not _subject_valid(claims):
        return "token_invalid"

    # Google signs ID tokens with RS256 and names the key in ``kid``. Without
    # both, no Google key can have signed the token.
    if header.get("alg") != "RS256" or not header.get("kid"):
        return "token_bad_signature"
    if isinstance(cause, google_auth_exceptions.MalformedError) and "iat" in claims and "exp" in claims:
        return "token_bad_signature"

    return "token_invalid"
