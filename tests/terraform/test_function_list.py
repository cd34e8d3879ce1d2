"""The one list of functions (``terraform/functions.json``) against every place that uses it.

- Each entry's handler is importable and callable, its environment names only what Terraform can resolve,
  its grants only statement groups Terraform defines.
- The deployed stack has exactly the list's functions, queues and repositories, each running its listed
  handler, and the toolkit's local settings cover every function.
- Adding a function is one list entry plus a handler module: in a copy of the checkout with a dummy third
  function, ``terraform validate`` passes and a plan creates its function, role, queue, dead-letter queue,
  repository and event source mapping, with no other file touched.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.terraform.markers import needs_terraform

from pipeline_toolkit.project import FUNCTIONS_FILE, ProjectError, load_functions, parse_functions, stack_dir
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, Terraform, local_function_settings

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = load_functions(REPO)
MAIN_TF = (REPO / "terraform" / "main.tf").read_text(encoding="utf-8")


def _block(name: str) -> str:
    """The text of ``<name> = { ... }`` in main.tf's locals (balanced braces)."""
    start = MAIN_TF.index(f"  {name} = {{")
    depth = 0
    for index in range(start, len(MAIN_TF)):
        depth += {"{": 1, "}": -1}.get(MAIN_TF[index], 0)
        if depth == 0 and MAIN_TF[index] == "}":
            return MAIN_TF[start : index + 1]
    raise AssertionError(f"unbalanced block {name}")


@pytest.mark.parametrize("key", FUNCTIONS)
def test_each_handler_is_importable_and_callable(key: str) -> None:
    module_name, _, attribute = FUNCTIONS[key].handler.rpartition(".")
    env = {"PIPELINE_DATALAKE_BUCKET": "lake-bucket", "PIPELINE_QUARANTINE_BUCKET": "quarantine-bucket"}
    env["PIPELINE_USERS_TABLE"] = "users-table"
    env["PIPELINE_LANDING_BUCKET"] = "landing-bucket"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        handler = getattr(importlib.import_module(module_name), attribute)
    assert callable(handler)


@pytest.mark.parametrize("key", FUNCTIONS)
def test_each_entry_names_only_references_and_grants_terraform_defines(key: str) -> None:
    references = set(re.findall(r'^\s*"([a-z]+\.[a-z0-9_-]+)"\s*=', _block("references"), flags=re.M))
    grants = set(re.findall(r'^    "([a-z0-9-]+)" = \[', _block("grants"), flags=re.M))
    function = FUNCTIONS[key]
    assert set(function.environment.values()) <= references, f"unknown references in {key}"
    assert set(function.grants) <= grants, f"unknown grants in {key}"
    # A function without a queue (trigger http) writes no manifest.
    assert function.manifest_stage in ({"datalake", "database"} if function.has_queue else {"none"})


def test_local_settings_cover_every_function() -> None:
    assert set(local_function_settings()) == set(FUNCTIONS)


def test_a_malformed_list_is_refused_with_the_reason() -> None:
    with pytest.raises(ProjectError, match="lacks handler"):
        parse_functions(json.dumps({"x": {"trigger": "landing-events", "manifest_stage": "database"}}))
    with pytest.raises(ProjectError, match="trigger"):
        parse_functions(
            json.dumps({"x": {"handler": "a.b", "trigger": "cron", "manifest_stage": "database"}})
        )
    with pytest.raises(ProjectError, match="not JSON"):
        parse_functions("{")


@pytest.mark.terraform
def test_the_deployed_stack_has_exactly_the_listed_functions(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    assert set(out["functions"]) == set(FUNCTIONS)
    # An API-invoked function (trigger http) has no queue and no event source mapping.
    queued = {key for key, spec in FUNCTIONS.items() if spec.has_queue}
    assert queued < set(FUNCTIONS)
    assert set(out["queues"]) == queued
    assert set(out["event_source_mappings"]) == queued
    assert set(out["repository_urls"]) == set(FUNCTIONS)
    awslambda = deployed_stack.client("lambda")
    for key, name in out["functions"].items():
        config = awslambda.get_function(FunctionName=name)["Configuration"]
        assert config["ImageConfigResponse"]["ImageConfig"]["Command"] == [FUNCTIONS[key].handler]
        assert config["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == key


DUMMY_HANDLER = """
def handler(event, context):
    return {"batchItemFailures": []}
"""


@pytest.mark.terraform
@needs_terraform
def test_a_third_function_is_one_list_entry_plus_its_handler(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(
        REPO / "terraform", checkout / "terraform", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*")
    )
    handlers = checkout / "src" / "pipeline_extra"
    handlers.mkdir(parents=True)
    (handlers / "__init__.py").write_text("")
    (handlers / "echo.py").write_text(DUMMY_HANDLER)
    listed = json.loads((checkout / FUNCTIONS_FILE).read_text())
    listed["echo-loader"] = {
        "description": "A dummy: proves that a function is one entry plus its handler.",
        "handler": "pipeline_extra.echo.handler",
        "trigger": "landing-events",
        "manifest_stage": "database",
        "environment": {"PIPELINE_QUARANTINE_BUCKET": "bucket.quarantine"},
        "grants": ["read-landing", "write-manifests"],
        "settings": {"memory_size": 256},
    }
    (checkout / FUNCTIONS_FILE).write_text(json.dumps(listed, indent=2))

    # The Python side sees it...
    monkeypatch.syspath_prepend(str(checkout / "src"))
    found = load_functions(checkout)
    assert set(found) == {*FUNCTIONS, "echo-loader"}
    module_name, _, attribute = found["echo-loader"].handler.rpartition(".")
    assert getattr(importlib.import_module(module_name), attribute)({}, None) == {"batchItemFailures": []}

    # ...and so does Terraform, from the same file, with nothing else changed.
    terraform = Terraform(stack_dir(checkout), data_dir=tmp_path / "data", env=emulator.environment())
    terraform.init()
    report = terraform.validate()
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    variables = {**EMBEDDED_VARIABLES, "environment": "dummy", "function_settings": {"echo-loader": {}}}
    assert terraform.plan(variables, refresh=False)
    planned = set(re.findall(r"^  # (\S+) will be created$", terraform.last_output, flags=re.M))
    for address in (
        'module.function["echo-loader"].aws_lambda_function.this',
        'module.function["echo-loader"].aws_iam_role.this',
        'module.function["echo-loader"].aws_lambda_event_source_mapping.this[0]',
        'module.fanout.aws_sqs_queue.this["echo-loader"]',
        'module.fanout.aws_sqs_queue.dead_letter["echo-loader"]',
        'module.fanout.aws_sns_topic_subscription.this["echo-loader"]',
        'module.ecr["echo-loader"].aws_ecr_repository.this',
    ):
        assert address in planned, f"{address} not planned; planned: {sorted(planned)}"
    # The API-invoked function (trigger http) gets its function, role and the API in front, but no queue.
    for address in (
        'module.function["ingest-api"].aws_lambda_function.this',
        'module.function["ingest-api"].aws_iam_role.this',
        "module.api[0].aws_lambda_permission.api",
        "module.identity.aws_cognito_user_pool_client.this",
    ):
        assert address in planned, f"{address} not planned"
    # (Route addresses hold a space, which the planned-address pattern leaves out.)
    route = 'module.api[0].aws_apigatewayv2_route.this["POST /events/{dataset}"] will be created'
    assert route in terraform.last_output
    for address in (
        'module.fanout.aws_sqs_queue.this["ingest-api"]',
        'module.function["ingest-api"].aws_lambda_event_source_mapping.this[0]',
        'module.function["ingest-api"].aws_cloudwatch_metric_alarm.dead_letters[0]',
    ):
        assert address not in planned, f"{address} planned for a function without a queue"
    assert '"pipeline_extra.echo.handler"' in terraform.last_output
    assert "256" in terraform.last_output
