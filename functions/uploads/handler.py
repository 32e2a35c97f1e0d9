"""The ``upload_url`` HTTP handler."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from functions.clients import firestore_client
from functions.config import get_settings
from functions.errors import BraindumpError, ConfigError, MethodNotAllowed
from functions.http import error_response, json_response
from functions.log import log_context, trace_from_headers, uid_hash
from functions.models import UploadResponse
from functions.objects import new_note_id, object_name_for
from functions.store import QuotaLimits, create_note_with_quota
from functions.uploads.auth import verify_uid
from functions.uploads.request import parse_upload_request, read_request_body
from functions.uploads.signing import sign_upload

if TYPE_CHECKING:
    import flask

logger = logging.getLogger(__name__)


def handle_upload_url(request: flask.Request) -> flask.Response:
    """Verify the caller, create an ``awaiting_upload`` note and return a signed PUT URL."""
    with log_context(function="upload_url"):
        try:
            settings = get_settings()
        except ConfigError as err:
            # The variable and its value go to the log only; callers learn that the deployment is broken.
            logger.error("upload_url cannot serve because the settings are invalid: %s", err.message)
            return error_response(ConfigError("the backend's settings are invalid; the operator log names the variable to fix"))

        with log_context(trace=trace_from_headers(request.headers, settings.project_id)):
            try:
                return _create_upload(request)
            except BraindumpError as err:
                logger.info("upload_url rejected: %s (%s)", err.code, err.http_status)
                return error_response(err)


def _create_upload(request: flask.Request) -> flask.Response:
    settings = get_settings()

    if request.method != "POST":
        raise MethodNotAllowed(request.method, "POST")

    uid = verify_uid(request.headers, settings)

    body = read_request_body(request)
    upload = parse_upload_request(body, request.headers.get("Content-Type"), max_upload_bytes=settings.max_upload_bytes)

    now = dt.datetime.now(dt.UTC)
    note_id = new_note_id()
    object_name = object_name_for(uid, note_id, upload.audio_type.extension)
    recorded_at = upload.request.recorded_at or now

    with log_context(note_id=note_id, uid_hash=uid_hash(uid)):
        signed = sign_upload(settings, object_name, upload.audio_type.mime, now)

        create_note_with_quota(
            firestore_client(),
            uid=uid,
            note_id=note_id,
            note={
                "contentType": upload.audio_type.mime,
                "declaredContentType": upload.request.content_type,
                "declaredSizeBytes": upload.request.size_bytes,
                "objectName": object_name,
                "bucket": settings.bucket,
                "timezone": upload.request.timezone,
                "recordedAt": recorded_at.astimezone(dt.UTC),
                "uploadExpiresAt": signed.expires_at,
            },
            limits=QuotaLimits(per_hour=settings.uploads_per_hour, per_day=settings.uploads_per_day),
            now=now,
        )
        logger.info("note created, awaiting upload of %s", upload.audio_type.mime)

        response = UploadResponse(
            noteId=note_id,
            uploadUrl=signed.url,
            headers=signed.headers,
            expiresAt=signed.expires_at,
            objectName=object_name,
        )
        return json_response(response.model_dump(mode="json", by_alias=True), 201)
