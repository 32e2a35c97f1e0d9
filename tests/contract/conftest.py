"""Fixtures for the client contract tests: the spec, the stack and response validation.

The stack fixtures come from ``tests/conftest.py``, so one stack serves the
whole session.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from devstack.stack import REPO_ROOT, LocalStack

logger = logging.getLogger(__name__)


SPEC_PATH: Path = REPO_ROOT / "openapi.yaml"
HTTP_TIMEOUT_SECONDS = 30.0


@pytest.fixture(scope="session")
def openapi() -> OpenAPI:
    """The parsed ``openapi.yaml``."""
    return OpenAPI.from_file_path(str(SPEC_PATH))


@pytest.fixture(scope="session")
def conforms(openapi: OpenAPI) -> Callable[[requests.Response], None]:
    """Return ``check(response)``, which fails the test when the response is outside the spec."""

    def check(response: requests.Response) -> None:
        errors = list(
            openapi.iter_response_errors(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))
        )
        details = "; ".join(f"{type(error).__name__}: {error}" for error in errors)
        assert not errors, f"{response.request.method} HTTP {response.status_code} is outside openapi.yaml: {details}"

    return check


@pytest.fixture(scope="session")
def spec() -> dict[str, Any]:
    """``openapi.yaml`` as plain data."""
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="session")
def matches_schema(spec: dict[str, Any]) -> Callable[[str, object], None]:
    """Return ``check(name, instance)``, which validates ``instance`` against ``components/schemas/{name}``.

    For responses that the spec has no operation for, such as a 405 to a method
    that is not listed.
    """
    resource = referencing.Resource.from_contents(spec, default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource("urn:braindump:openapi", resource)

    def check(name: str, instance: object) -> None:
        assert name in spec["components"]["schemas"], f"openapi.yaml has no schema {name}"
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"urn:braindump:openapi#/components/schemas/{name}"}, registry=registry
        )
        errors = [error.message for error in validator.iter_errors(instance)]
        assert not errors, f"{instance!r} does not match {name}: {errors}"

    return check


@pytest.fixture(scope="session")
def upload_endpoint(stack: LocalStack) -> str:
    """URL of ``upload_url`` with the path that the spec names it by."""
    return f"{stack.endpoints.upload_url}/upload_url"


@pytest.fixture(scope="session")
def health_endpoint(stack: LocalStack) -> str:
    """URL of ``health`` with the path that the spec names it by."""
    return f"{stack.endpoints.health}/health"


@pytest.fixture
def uid() -> str:
    """A user id of its own for each test, so no test uses up another's quota."""
    return f"contract-{uuid.uuid4().hex[:16]}"
