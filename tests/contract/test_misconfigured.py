"""Responses of functions started with invalid settings, against openapi.yaml.

Each fixture restarts the session stack's functions with one broken setting
and restarts them with the previous settings afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from devstack.stack import LocalStack

TIMEOUT_SECONDS = 30.0
BODY: dict[str, Any] = {"contentType": "audio/ogg", "sizeBytes": 1000, "timezone": "UTC"}


def _restarted(stack: LocalStack, broken: dict[str, str]) -> Iterator[LocalStack]:
    previous = dict(stack.extra_env)
    stack.restart_functions({**previous, **broken})
    try:
        yield stack
    finally:
        stack.restart_functions(previous)


@pytest.fixture(scope="module")
def unreadable_key(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Functions whose SIGNING_KEY_FILE is not a service account key."""
    key = tmp_path_factory.mktemp("keys") / "not-a-key.json"
    key.write_text("{}", encoding="utf-8")
    yield from _restarted(stack, {"SIGNING_KEY_FILE": str(key)})


@pytest.fixture(scope="module")
def no_bucket(stack: LocalStack) -> Iterator[LocalStack]:
    """Functions with UPLOAD_BUCKET empty, so reading the settings fails."""
    yield from _restarted(stack, {"UPLOAD_BUCKET": ""})


def test_upload_config_invalid(
    unreadable_key: LocalStack, mint_token: Callable[..., str], conforms: Callable[[requests.Response], None]
) -> None:
    response = requests.post(
        f"{unreadable_key.endpoints.upload_url}/upload_url",
        json=BODY,
        headers={"Authorization": f"Bearer {mint_token('contract-misconfigured')}"},
        timeout=TIMEOUT_SECONDS,
    )

    assert response.status_code == 500, response.text
    assert response.json()["error"]["code"] == "config_invalid"
    conforms(response)


def test_upload_settings_missing(
    no_bucket: LocalStack, mint_token: Callable[..., str], conforms: Callable[[requests.Response], None]
) -> None:
    response = requests.post(
        f"{no_bucket.endpoints.upload_url}/upload_url",
        json=BODY,
        headers={"Authorization": f"Bearer {mint_token('contract-misconfigured')}"},
        timeout=TIMEOUT_SECONDS,
    )

    assert response.status_code == 500, response.text
    assert response.json()["error"]["code"] == "config_invalid"
    assert "UPLOAD_BUCKET" not in response.text
    conforms(response)


def test_health_settings_missing(no_bucket: LocalStack, conforms: Callable[[requests.Response], None]) -> None:
    response = requests.get(f"{no_bucket.endpoints.health}/health", timeout=TIMEOUT_SECONDS)

    assert response.status_code == 503, response.text
    conforms(response)
    assert response.json()["services"]["config"] == "error"
