"""Firebase ID token verification for HTTP requests.

Every failure becomes :class:`Unauthenticated` (401) with its own code, so the
app can tell an expired session from a broken client, except an outage of
Google's certificate endpoint, which is :class:`TransientError` (503). The
token itself never reaches a log line or an error message.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

from functions.clients import firebase_app
from functions.config import Settings
from functions.errors import TransientError, Unauthenticated
from functions.uploads.token_claims import rejection_code

logger = logging.getLogger(__name__)

_MAX_TOKEN_CHARS = 8192

# The uid becomes a Firestore path segment and part of an object name, so only
# characters that are safe in both are accepted. Firebase's generated uids are
# 28 alphanumeric characters; custom uids may be up to 128.
_UID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


class HeaderLookup(Protocol):
    """Request headers: a ``Mapping[str, str]`` or werkzeug's ``Headers``."""

    def get(self, key: str, /) -> str | None:
        """Return the value of header ``key``, or None when it is absent."""


_REJECTION_MESSAGES = {
    "malformed_token": "the bearer token is not a decodable JWT; send a Firebase ID token",
    "token_wrong_audience": "the ID token was issued for another Firebase project; sign in to this app's project",
    "token_wrong_issuer": "the ID token was not issued by Firebase Authentication for this project; sign in again",
    "token_bad_signature": "the ID token's signature does not verify against Google's public keys; sign in again",
    "token_invalid": "the ID token is invalid for this project; sign in again",
}


def bearer_token(headers: HeaderLookup) -> str:
    """Return the token from an ``Authorization: Bearer <token>`` header.

    Raises:
        Unauthenticated: ``missing_token`` or ``malformed_token``.
    """
    header = headers.get("Authorization")
    if not header:
        raise Unauthenticated(
            "the Authorization header is missing; send 'Authorization: Bearer <Firebase ID token>'",
            code="missing_token",
        )

    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > _MAX_TOKEN_CHARS:
        raise Unauthenticated(
            "the Authorization header is malformed; send 'Authorization: Bearer <Firebase ID token>'",
            code="malformed_token",
        )
    if token.count(".") != 2:
        raise Unauthenticated("the bearer token is not a JWT; send a Firebase ID token", code="malformed_token")

    return token


def verify_uid(headers: HeaderLookup, settings: Settings) -> str:
    """Verify the request's Firebase ID token and return its uid.

    Raises:
        Unauthenticated: with code ``missing_token``, ``malformed_token``,
            ``token_expired``, ``token_revoked``, ``user_disabled``, ``user_not_found``,
            ``token_wrong_audience``, ``token_wrong_issuer``, ``token_bad_signature``
            or ``token_invalid``.
        TransientError: ``auth_unavailable``, when Google's public keys or the
            revocation check could not be fetched.
    """
    from firebase_admin import auth
    from firebase_admin import exceptions as firebase_exceptions

    token = bearer_token(headers)

    try:
        claims = auth.verify_id_token(token, app=firebase_app(), check_revoked=settings.check_revoked)
    except auth.ExpiredIdTokenError as err:
        raise Unauthenticated("the ID token has expired; refresh it and retry", code="token_expired") from err
    except auth.RevokedIdTokenError as err:
        raise Unauthenticated("the ID token was revoked; sign in again", code="token_revoked") from err
    except auth.UserDisabledError as err:
        raise Unauthenticated("the user account is disabled", code="user_disabled") from err
    except auth.UserNotFoundError as err:
        raise Unauthenticated("the ID token's user no longer exists; sign in again", code="user_not_found") from err
    except auth.CertificateFetchError as err:
        logger.error("fetching Google's ID token certificates failed: %s", type(err.cause).__name__)
        raise TransientError(
            "the ID token could not be checked because Google's public keys are unreachable; retry shortly",
            code="auth_unavailable",
        ) from err
    except auth.InvalidIdTokenError as err:
        code = rejection_code(token, settings.project_id, err.cause)
        logger.info("ID token rejected: %s (%s)", code, type(err.cause).__name__)
        raise Unauthenticated(_REJECTION_MESSAGES[code], code=code) from err
    except ValueError as err:
        logger.info("ID token rejected: %s", type(err).__name__)
        raise Unauthenticated(_REJECTION_MESSAGES["token_invalid"], code="token_invalid") from err
    except firebase_exceptions.FirebaseError as err:
        # With CHECK_REVOKED the SDK also calls the Auth API, which can fail.
        logger.error("checking the ID token's revocation failed: %s", type(err).__name__)
        raise TransientError(
            "the ID token could not be checked because Firebase Authentication is unreachable; retry shortly",
            code="auth_unavailable",
        ) from err

    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not _UID_PATTERN.fullmatch(uid):
        raise Unauthenticated(
            "the ID token's user id is empty or has characters other than letters, digits, '-' and '_'",
            code="token_invalid",
        )
    return uid
