"""Firebase ID token verification for HTTP requests.

Every failure becomes :class:`Unauthenticated` with its own code, so the app
can tell an expired session from a broken client. The token itself never
reaches a log line or an error message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from functions.clients import firebase_app
from functions.config import Settings
from functions.errors import Unauthenticated

logger = logging.getLogger(__name__)

_MAX_TOKEN_CHARS = 8192

# The uid becomes a Firestore path segment and part of an object name, so only
# characters that are safe in both are accepted. Firebase's generated uids are
# 28 alphanumeric characters; custom uids may be up to 128.
_UID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def bearer_token(headers: Mapping[str, str]) -> str:
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
        raise Unauthenticated("the bearer token is not a JWT", code="malformed_token")

    return token


def verify_uid(headers: Mapping[str, str], settings: Settings) -> str:
    """Verify the request's Firebase ID token and return its uid.

    Raises:
        Unauthenticated: with code ``missing_token``, ``malformed_token``,
            ``token_expired``, ``token_revoked``, ``user_disabled`` or ``token_invalid``.
    """
    from firebase_admin import auth

    token = bearer_token(headers)

    try:
        claims = auth.verify_id_token(token, app=firebase_app(), check_revoked=settings.check_revoked)
    except auth.ExpiredIdTokenError as err:
        raise Unauthenticated("the ID token has expired; refresh it and retry", code="token_expired") from err
    except auth.RevokedIdTokenError as err:
        raise Unauthenticated("the ID token was revoked; sign in again", code="token_revoked") from err
    except auth.UserDisabledError as err:
        raise Unauthenticated("the user account is disabled", code="user_disabled") from err
    except (auth.InvalidIdTokenError, ValueError) as err:
        logger.info("ID token rejected: %s", type(err).__name__)
        raise Unauthenticated(
            "the ID token is invalid for this project; sign in again", code="token_invalid"
        ) from err

    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not _UID_PATTERN.fullmatch(uid):
        raise Unauthenticated(
            "the ID token's user id is empty or has characters other than letters, digits, '-' and '_'",
            code="token_invalid",
        )
    return uid
