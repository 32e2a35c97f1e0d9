"""Firebase ID tokens for the security tests: genuine RS256 ones and forgeries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.certs import SigningKey

ISSUER_PREFIX = "https://securetoken.google.com/"
# The audience of a Firebase custom token, which verify_id_token must reject.
CUSTOM_TOKEN_AUDIENCE = "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: dict[str, Any]) -> str:
    return _segment(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class TokenMint:
    """Mints tokens for ``project_id`` with the published ``key`` or the unpublished ``rogue`` key."""

    key: SigningKey
    rogue: SigningKey
    project_id: str

    def claims(self, uid: str, **overrides: Any) -> dict[str, Any]:
        """Return the claims of a current ID token for ``uid``, with ``overrides`` applied."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER_PREFIX + self.project_id,
            "aud": self.project_id,
            "sub": uid,
            "user_id": uid,
            "iat": now - 10,
            "exp": now + 3600,
            "auth_time": now - 10,
            "firebase": {"identities": {}, "sign_in_provider": "custom"},
        }
        claims.update(overrides)
        return claims

    def token(self, uid: str, **overrides: Any) -> str:
        """Return a genuine RS256 token signed by the published key."""
        return self.key.mint(self.claims(uid, **overrides))

    def signed_by_rogue(self, uid: str) -> str:
        """Return a token signed by an unpublished key under the published key's ``kid``."""
        return self.rogue.mint(self.claims(uid), header={"alg": "RS256", "kid": self.key.kid, "typ": "JWT"})

    def unknown_kid(self, uid: str) -> str:
        """Return a token signed by the unpublished key under its own, unpublished ``kid``."""
        return self.rogue.mint(self.claims(uid))

    def tampered(self, uid: str, victim: str) -> str:
        """Return a genuine token for ``uid`` whose payload was swapped for ``victim``'s claims."""
        header, _, signature = self.token(uid).split(".")
        return f"{header}.{_json_segment(self.claims(victim))}.{signature}"

    def unsigned(self, uid: str, **overrides: Any) -> str:
        """Return an ``alg: none`` token, the form the Auth emulator issues."""
        return f"{_json_segment({'alg': 'none', 'typ': 'JWT'})}.{_json_segment(self.claims(uid, **overrides))}."

    def hmac_with_certificate(self, uid: str) -> str:
        """Return an HS256 token keyed with the public certificate (algorithm confusion)."""
        header = {"alg": "HS256", "kid": self.key.kid, "typ": "JWT"}
        signing_input = f"{_json_segment(header)}.{_json_segment(self.claims(uid))}"
        mac = hmac.new(self.key.certificate_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_segment(mac)}"
