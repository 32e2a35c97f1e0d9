"""Fixtures shared by every test folder that needs the local stack.

``stack`` runs one :class:`devstack.LocalStack` per test session (a few
seconds to start) with the settings from ``stack_extra_env``, which a test
module or a conftest closer to the tests can override. ``clean_stack`` resets
Firestore, the bucket and the bridge before a test. ``backend`` calls the
functions and reads Firestore as the phone app would; ``mint_token`` makes an
emulator ID token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.client import BackendClient
from devstack.stack import REPO_ROOT, LocalStack
from devstack.tokens import emulator_id_token

logger = logging.getLogger(__name__)

SAMPLES_DIR = REPO_ROOT / "samples"
MAIN_SOURCE = REPO_ROOT / "main.py"


@pytest.fixture(scope="session")
def stack_extra_env() -> dict[str, str]:
    """Settings for the functions of the session stack; override to use another extractor."""
    return {"EXTRACTOR": "offline"}


@pytest.fixture(scope="session")
def stack(stack_extra_env: dict[str, str]) -> Iterator[LocalStack]:
    """The session's running stack, with its client variables set in ``os.environ``."""
    if not MAIN_SOURCE.is_file():
        pytest.skip(f"{MAIN_SOURCE} does not exist yet, so the functions cannot run")
    local = LocalStack(extra_env=stack_extra_env)
    local.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in local.client_env.items():
                patch.setenv(name, value)
            yield local
    finally:
        local.stop()


@pytest.fixture
def clean_stack(stack: LocalStack) -> LocalStack:
    """The session stack with every emulator running, no documents, no objects and zeroed bridge counters."""
    stack.reset()
    return stack


@pytest.fixture
def backend(clean_stack: LocalStack) -> BackendClient:
    """A client of the clean stack's ``upload_url`` function and Firestore."""
    return BackendClient(upload_endpoint=clean_stack.endpoints.upload_url, project_id=clean_stack.project_id)


@pytest.fixture(scope="session")
def mint_token() -> Callable[..., str]:
    """Return ``mint(uid, email=None)``, which builds an emulator ID token for the stack's project."""

    def mint(uid: str, email: str | None = None, project_id: str = "demo-braindump") -> str:
        return emulator_id_token(uid, project_id, email)

    return mint


@pytest.fixture(scope="session")
def sample_path() -> Callable[[str], Path]:
    """Return ``path(name)`` for a file in ``samples/``, failing when it does not exist."""

    def path(name: str) -> Path:
        candidate = SAMPLES_DIR / name
        if not candidate.is_file():
            pytest.fail(f"sample {candidate} does not exist")
        return candidate

    return path
