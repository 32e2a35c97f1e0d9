"""Unsigned ID tokens in the form the Firebase Auth emulator issues.

firebase-admin 7.7.0 (``firebase_admin/_token_gen.py``, ``TokenVerifier``)
skips the signature, ``kid`` and ``alg`` checks and does not look at ``exp``
when ``FIREBASE_AUTH_EMULATOR_HOST`` is set. It still requires ``aud`` to equal
the project id, ``iss`` to equal ``https://securetoken.google.com/<project id>``
and ``sub`` to be a non-empty string of at most 128 characters. Without
``check_revoked`` the verification makes no request to the emulator host, so
nothing has to listen there.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

ISSUER_PREFIX = "https://securetoken.google.com/"
TOKEN_LIFETIME_SECONDS = 3600


def _segment(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def emulator_id_token(uid: str, project_id: str, email: str | None = None) -> str:
    """Build an unsigned (``alg: none``) Firebase ID token for ``uid``.

    Only a backend with ``FIREBASE_AUTH_EMULATOR_HOST`` set accepts it; a
    production backend rejects it for its missing ``kid`` and signature.

    Args:
        uid: Firebase user id, placed in ``sub`` and ``user_id``.
        project_id: Project id, placed in ``aud`` and ``iss``.
        email: Optional verified email address of the user.

    Returns:
        The token as ``header.payload.`` with an empty signature.
    """
    now = int(time.time())
    identities: dict[str, list[str]] = {"email": [email]} if email else {}
    claims: dict[str, Any] = {
        "iss": ISSUER_PREFIX + project_id,
        "aud": project_id,
        "sub": uid,
        "user_id": uid,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "auth_time": now,
        "firebase": {
            "identities": identities,
            "sign_in_provider": "password" if email else "custom",
        },
    }
    if email:
        claims["email"] = email
        claims["email_verified"] = True

    header = {"alg": "none", "typ": "JWT"}
    return f"{_segment(header)}.{_segment(claims)}."
