"""Schemathesis against the running ``upload_url``: each generated request must get a response that the spec allows.

Bounded: at most ``MAX_EXAMPLES`` generated requests per phase and mode, each
completed within ``DEADLINE_MS``. Every request carries a valid emulator ID
token, so generated bodies get past authentication; schemathesis also sends
some without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from devstack.stack import REPO_ROOT, LocalStack

MAX_EXAMPLES = 100
DEADLINE_MS = 10_000
FUZZ_UID = "contract-fuzz"

schema = schemathesis.openapi.from_path(REPO_ROOT / "openapi.yaml").include(operation_id="createUploadUrl")


HYPOTHESIS_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=DEADLINE_MS,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@schema.parametrize()
@HYPOTHESIS_SETTINGS
def test_upload_url(case: schemathesis.Case[Any], stack: LocalStack, mint_token: Callable[..., str]) -> None:
    # Positive cases may still get 400: the spec cannot express which strings
    # are IANA zones or accepted audio types, so that check would flag them.
    case.call_and_validate(
        base_url=stack.endpoints.upload_url,
        headers={"Authorization": f"Bearer {mint_token(FUZZ_UID)}"},
        timeout=DEADLINE_MS / 1000,
        excluded_checks=[positive_data_acceptance],
    )
