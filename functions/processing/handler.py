"""The ``process_audio`` CloudEvent handler: filter events, then run the pipeline."""

from __future__ import annotations

import logging
from typing import Any

from functions.config import get_settings
from functions.log import log_context, trace_from_headers, uid_hash
from functions.objects import OBJECT_PREFIX, parse_object_name
from functions.processing.event import MalformedEvent, parse_event
from functions.processing.pipeline import process_note

logger = logging.getLogger(__name__)


def handle_storage_event(cloud_event: Any) -> None:
    """Handle one ``google.cloud.storage.object.v1.finalized`` CloudEvent.

    Objects outside ``voice-notes/``, in another bucket or with a name that
    does not parse are acknowledged with a log line. The function writes only
    to Firestore (and deletes audio), so nothing it does emits another finalize event.
    """
    settings = get_settings()
    attributes = dict(cloud_event.get_attributes()) if hasattr(cloud_event, "get_attributes") else {}

    # Eventarc passes the W3C trace context as the CloudEvent's traceparent extension.
    trace = trace_from_headers(attributes, settings.project_id)

    with log_context(trace=trace, function="process_audio", event_id=attributes.get("id")):
        try:
            event = parse_event(attributes, cloud_event.data)
        except MalformedEvent as err:
            logger.error("event acknowledged without work: %s", err.message)
            return

        if event.bucket != settings.bucket:
            logger.info("event acknowledged without work: object is in bucket %s, not %s", event.bucket, settings.bucket)
            return
        if not event.name.startswith(OBJECT_PREFIX):
            logger.info("event acknowledged without work: object is outside %s", OBJECT_PREFIX)
            return

        ref = parse_object_name(event.name)
        if ref is None:
            logger.warning("event acknowledged without work: object name under %s does not parse", OBJECT_PREFIX)
            return

        with log_context(note_id=ref.note_id, uid_hash=uid_hash(ref.uid)):
            process_note(settings, event, ref)
