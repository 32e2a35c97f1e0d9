"""Cloud Functions entry points. Each one binds a handler from the ``functions`` package.

The handlers import their SDKs lazily, so each deployed function pays only for
the clients it calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import functions_framework

from functions.log import setup_logging

if TYPE_CHECKING:
    import flask

setup_logging()


@functions_framework.http
def upload_url(request: flask.Request) -> flask.Response:
    """Return a signed URL for the caller to PUT one voice note."""
    from functions.uploads import handle_upload_url

    return handle_upload_url(request)


@functions_framework.cloud_event
def process_audio(cloud_event: Any) -> None:
    """Turn a finalized voice-note upload into tasks."""
    from functions.processing import handle_storage_event

    handle_storage_event(cloud_event)


@functions_framework.http
def health(request: flask.Request) -> flask.Response:
    """Probe Firestore, Cloud Storage and the extractor."""
    from functions.health import handle_health

    return handle_health(request)
