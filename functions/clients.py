"""Google Cloud clients, created once per instance on first use.

Each getter imports its SDK inside the function, so an entry point pays the
import cost only for the clients it calls. Tests point the clients at the
emulators through the standard ``*_EMULATOR_HOST`` variables, and
:func:`reset_clients` drops the cached instances.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from functions.config import get_settings

if TYPE_CHECKING:
    from firebase_admin import App
    from google.cloud import firestore
    from google.cloud.storage import Client as StorageClient

logger = logging.getLogger(__name__)

_FIREBASE_APP_NAME = "braindump"


@functools.cache
def firestore_client() -> firestore.Client:
    """Return the Firestore client of this instance."""
    from google.cloud import firestore

    return firestore.Client(project=get_settings().project_id)


@functools.cache
def storage_client() -> StorageClient:
    """Return the Cloud Storage client of this instance."""
    from google.cloud import storage

    return storage.Client(project=get_settings().project_id)


@functools.cache
def firebase_app() -> App:
    """Return the firebase-admin app used to verify ID tokens.

    The app caches Google's public signing certificates between requests.
    """
    import firebase_admin

    return firebase_admin.initialize_app(
        options={"projectId": get_settings().project_id}, name=_FIREBASE_APP_NAME
    )


def reset_clients() -> None:
    """Drop every cached client, so the next call creates it again (tests only)."""
    firestore_client.cache_clear()
    storage_client.cache_clear()

    if firebase_app.cache_info().currsize:
        import firebase_admin

        firebase_admin.delete_app(firebase_app())
    firebase_app.cache_clear()
