"""pipeline_toolkit.quotas: a plan's functions against the account's Lambda quotas (new accounts get less)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline_toolkit import quotas
from pipeline_toolkit.quotas import FunctionSizing, LambdaLimits


def _function(name: str, memory: int, action: str = "create") -> dict[str, Any]:
    return {
        "address": f'module.function["{name}"].aws_lambda_function.this',
        "type": "aws_lambda_function",
        "change": {"actions": [action], "after": {"function_name": name, "memory_size": memory}},
    }


def _mapping(name: str, concurrency: int | None, *, enabled: bool = True) -> dict[str, Any]:
    scaling = [] if concurrency is None else [{"maximum_concurrency": concurrency}]
    return {
        "address": f'module.function["{name}"].aws_lambda_event_source_mapping.this',
        "type": "aws_lambda_event_source_mapping",
        "change": {
            "actions": ["create"],
            "after": {"function_name": name, "enabled": enabled, "scaling_config": scaling},
        },
    }


PLAN = {
    "resource_changes": [
        _function("p-dev-datalake-loader", 512),
        _mapping("p-dev-datalake-loader", 5),
        _function("p-dev-database-loader", 4096),
        _mapping("p-dev-database-loader", 5),
        _function("p-dev-part-loader", 1024),
        _mapping("p-dev-part-loader", 5),
        {"type": "aws_sqs_queue", "change": {"actions": ["create"], "after": {"name": "q"}}},
        {"type": "aws_lambda_function", "change": {"actions": ["delete"], "after": None}},
    ]
}
NEW_ACCOUNT = LambdaLimits(concurrent_executions=10, unreserved_concurrent_executions=10)
ESTABLISHED = LambdaLimits(concurrent_executions=1000, unreserved_concurrent_executions=900)


def test_the_plan_gives_each_functions_memory_and_the_concurrency_its_mappings_may_drive() -> None:
    assert quotas.sizing_from_plan(PLAN) == [
        FunctionSizing("p-dev-database-loader", 4096, 5),
        FunctionSizing("p-dev-datalake-loader", 512, 5),
        FunctionSizing("p-dev-part-loader", 1024, 5),
    ]


def test_a_mapping_already_deployed_names_its_function_by_arn() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:p-dev-datalake-loader"
    plan = {"resource_changes": [_function("p-dev-datalake-loader", 512, "no-op"), _mapping(arn, 7)]}
    plan["resource_changes"].append(_mapping(f"{arn}:live", 3))
    assert quotas.sizing_from_plan(plan) == [FunctionSizing("p-dev-datalake-loader", 512, 10)]


def test_a_disabled_mapping_drives_nothing_and_one_without_a_maximum_may_take_the_pool() -> None:
    plan = {"resource_changes": [_function("a", 512), _mapping("a", 5, enabled=False), _function("b", 512)]}
    plan["resource_changes"].append(_mapping("b", None))
    assert quotas.sizing_from_plan(plan) == [FunctionSizing("a", 512, 0), FunctionSizing("b", 512, 1000)]


def test_a_new_account_is_warned_about_concurrency_and_memory() -> None:
    warnings = quotas.quota_warnings(quotas.sizing_from_plan(PLAN), NEW_ACCOUNT, "eu-west-1")
    assert len(warnings) == 2
    concurrency, memory = warnings
    assert "may run 15 invocations at once" in concurrency
    assert "10 unreserved concurrent executions in eu-west-1" in concurrency
    assert "p-dev-database-loader asks for 4096 MB" in memory
    assert "3008 MB" in memory
    assert "heuristic" in memory


def test_an_account_with_the_default_quotas_is_not_warned() -> None:
    assert quotas.quota_warnings(quotas.sizing_from_plan(PLAN), ESTABLISHED) == []


def test_the_unreserved_pool_is_what_counts_not_the_quota() -> None:
    taken = LambdaLimits(concurrent_executions=1000, unreserved_concurrent_executions=12)
    (warning,) = quotas.quota_warnings(quotas.sizing_from_plan(PLAN), taken)
    assert "12 unreserved" in warning
    assert "quota 1000" in warning


def _stubbed(response: dict[str, Any] | None = None, error: str | None = None) -> tuple[Any, Stubber]:
    client = boto3.client(
        "lambda", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    if error:
        stubber.add_client_error("get_account_settings", service_error_code=error, http_status_code=403)
    else:
        stubber.add_response("get_account_settings", response or {}, {})
    return client, stubber


def test_the_limits_are_read_from_get_account_settings() -> None:
    client, stubber = _stubbed(
        {
            "AccountLimit": {"ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10},
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
        }
    )
    with stubber:
        assert quotas.read_limits(client) == NEW_ACCOUNT
        stubber.assert_no_pending_responses()


def test_check_plan_warns_on_a_new_account() -> None:
    client, stubber = _stubbed(
        {"AccountLimit": {"ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10}}
    )
    with stubber:
        warnings = quotas.check_plan(PLAN, client, "eu-west-1")
    assert len(warnings) == 2


@pytest.mark.parametrize("error", ["AccessDeniedException", "404"])
def test_settings_it_cannot_read_are_said_not_checked(error: str) -> None:
    client, stubber = _stubbed(error=error)
    with stubber:
        (warning,) = quotas.check_plan(PLAN, client)
    assert "quotas not checked" in warning


def test_a_plan_without_functions_needs_no_settings() -> None:
    client, stubber = _stubbed()
    with stubber:
        assert quotas.check_plan({"resource_changes": []}, client) == []
