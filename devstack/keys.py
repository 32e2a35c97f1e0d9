"""A local service-account key for V4 signed URLs against fake-gcs-server.

The key is generated on this machine and is valid nowhere else, because no
Google service has its public half. Its ``token_uri`` points at a loopback port
where nothing listens. Signing needs no token and works, while anything that
tries to trade the key for an access token fails at once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "signing-key.json"
# Port 9 is the discard service, which nothing on this machine serves.
UNUSED_TOKEN_URI = "http://127.0.0.1:9/token"


def service_account_email(project_id: str) -> str:
    """Return the client email of the local signing key for ``project_id``."""
    return f"devstack-signer@{project_id}.iam.gserviceaccount.com"


def write_signing_key(directory: Path, project_id: str) -> Path:
    """Generate an RSA-2048 key and write it as a service-account JSON key file.

    The file is written with mode 0600 and replaces any earlier key there.

    Args:
        directory: Run directory that receives ``signing-key.json``.
        project_id: Project id written into the key.

    Returns:
        The path of the key file, for ``SIGNING_KEY_FILE``.
    """
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")

    email = service_account_email(project_id)
    key = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": UNUSED_TOKEN_URI,
        "token_uri": UNUSED_TOKEN_URI,
    }

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / KEY_FILE_NAME
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(key, handle, indent=2)
    logger.info("wrote local signing key for %s to %s", email, path)
    return path
