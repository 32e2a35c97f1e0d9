"""The signed-URL PUT: the 201 reply's headers against the spec's ``putVoiceNote``, and the upload itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest

from devstack.client import BackendClient
from devstack.stack import LocalStack

TIMEOUT_SECONDS = 30.0


def test_put_request_conforms(
    stack: LocalStack, openapi: OpenAPI, uid: str, sample_path: Callable[[str], Path]
) -> None:
    backend = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
    audio = sample_path("06-laundry-in-two-hours.m4a")
    ticket = backend.ticket(
        backend.token(uid), content_type="audio/mp4", size_bytes=audio.stat().st_size, timezone="UTC"
    )
    put = requests.Request(ticket.method, ticket.upload_url, data=audio.read_bytes(), headers=ticket.headers).prepare()

    errors = list(openapi.iter_request_errors(RequestsOpenAPIRequest(put)))

    assert not errors, [f"{type(error).__name__}: {error}" for error in errors]


def test_put_headers_are_spec_parameters(stack: LocalStack, spec: dict[str, object], uid: str) -> None:
    backend = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
    ticket = backend.ticket(backend.token(uid), content_type="audio/webm", size_bytes=1000, timezone="UTC")
    operation = spec["paths"]["/{bucket}/voice-notes/{uid}/{objectFile}"]["put"]  # type: ignore[index]

    header_parameters = {parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "header"}

    # OpenAPI describes Content-Type through the request body's media types, not as a parameter.
    assert set(ticket.headers) == header_parameters | {"Content-Type"}
    assert ticket.headers["Content-Type"] in operation["requestBody"]["content"]


def test_put_with_returned_headers(stack: LocalStack, uid: str, sample_path: Callable[[str], Path]) -> None:
    backend = BackendClient(upload_endpoint=stack.endpoints.upload_url, project_id=stack.project_id)
    audio = sample_path("15-slides-thursday-evening.ogg")
    ticket = backend.ticket(
        backend.token(uid), content_type="audio/ogg", size_bytes=audio.stat().st_size, timezone="UTC"
    )

    reply = backend.put_file(ticket, audio)

    assert reply.status_code == 200, reply.text
