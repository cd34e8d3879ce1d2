"""The ingest API fuzzed from its published OpenAPI document (schemathesis), through the local gateway.

Every operation of ``docs/openapi.json`` gets generated requests, valid and invalid (wrong types, missing
fields, odd strings in paths and headers), as a signed-in user and with the deployed function behind the
gateway's authorizer. Whatever the input, the API answers 4xx or 2xx, never a 5xx.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from tests.e2e.support import Pipeline

from pipeline_toolkit.gateway.local import LocalApi, create_demo_user, sign_in, start_local_api
from pipeline_toolkit.project import project_dir

pytestmark = [pytest.mark.e2e, pytest.mark.terraform]


@schemathesis.serializer("application/x-ndjson")
def ndjson(_context: schemathesis.SerializationContext, value: object) -> dict[str, bytes]:
    # The document describes an NDJSON body as a string (its lines): sent as it was generated.
    text = value if isinstance(value, str) else json.dumps(value)
    return {"data": text.encode()}


schema = schemathesis.openapi.from_path(project_dir() / "docs" / "openapi.json")
# Enough to reach every field and status of the four operations; more examples find nothing new in a run.
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def fuzzed_api(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    # Throttling off: a 429 would stand in for the answers the fuzzer is after.
    served: LocalApi = start_local_api(
        pipeline.clients.environment,
        pipeline.outputs,
        log_dir=tmp_path_factory.mktemp("fuzz-logs"),
        throttle=False,
    )
    username, password = create_demo_user(
        pipeline.clients.environment, pipeline.outputs, f"fuzz-{uuid.uuid4().hex[:6]}@example.com"
    )
    token = sign_in(pipeline.clients.environment, pipeline.outputs, username, password)
    yield served.url, token
    served.stop()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_makes_the_api_answer_5xx(case: schemathesis.Case, fuzzed_api: tuple[str, str]) -> None:
    url, token = fuzzed_api
    case.call_and_validate(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error],
        timeout=60,
    )
