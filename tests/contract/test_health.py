"""Real ``health`` responses of the local stack against openapi.yaml."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from devstack.stack import LocalStack

TIMEOUT_SECONDS = 30.0


@pytest.fixture
def storage_stopped(stack: LocalStack) -> Iterator[LocalStack]:
    """The stack with fake-gcs-server stopped; it is started again, with its bucket, afterwards."""
    stack.stop_emulator("storage")
    try:
        yield stack
    finally:
        stack.start_emulator("storage")


def test_anonymous(health_endpoint: str, conforms: Callable[[requests.Response], None]) -> None:
    response = requests.get(health_endpoint, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 200, response.text
    conforms(response)
    body = response.json()
    assert body["services"]["firebase"] == "connected"
    assert body["services"]["storage"] == "connected"
    assert "checks" not in body


def test_authenticated(
    health_endpoint: str, mint_token: Callable[..., str], conforms: Callable[[requests.Response], None]
) -> None:
    response = requests.get(
        health_endpoint, headers={"Authorization": f"Bearer {mint_token('contract-operator')}"}, timeout=TIMEOUT_SECONDS
    )

    assert response.status_code == 200, response.text
    conforms(response)
    assert set(response.json()["checks"]) == set(response.json()["services"])


def test_head(health_endpoint: str) -> None:
    response = requests.head(health_endpoint, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_method_not_allowed(health_endpoint: str, matches_schema: Callable[[str, object], None], method: str) -> None:
    response = requests.request(method, health_endpoint, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    matches_schema("MethodNotAllowedError", response.json())


def test_storage_down(
    storage_stopped: LocalStack, health_endpoint: str, conforms: Callable[[requests.Response], None]
) -> None:
    response = requests.get(health_endpoint, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 503, response.text
    conforms(response)
    assert response.json()["status"] == "unhealthy"
    assert response.json()["services"]["storage"] != "connected"
