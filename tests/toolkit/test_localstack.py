"""The parts of the LocalStack deployment that need neither Docker nor LocalStack."""

from __future__ import annotations

import pytest

from pipeline_toolkit.deployment import FunctionConfig
from pipeline_toolkit.localstack import env_file_text, localstack_variables, push_commands


def function(**environment: str) -> FunctionConfig:
    return FunctionConfig(
        name="pipeline-dev-datalake-loader",
        arn="arn:aws:lambda:us-east-1:000000000000:function:pipeline-dev-datalake-loader",
        handler="pipeline.handlers.datalake.handler",
        timeout_seconds=5,
        memory_mb=512,
        region="us-east-1",
        environment=environment,
    )


def test_env_file_holds_the_deployed_environment_and_lambdas_own_variables() -> None:
    text = env_file_text(function(PIPELINE_DATALAKE_BUCKET="lake", POWERTOOLS_LOG_LEVEL="INFO"))

    lines = text.splitlines()
    assert "PIPELINE_DATALAKE_BUCKET=lake" in lines
    assert "AWS_LAMBDA_FUNCTION_TIMEOUT=5" in lines  # the Runtime Interface Emulator enforces it
    assert "AWS_LAMBDA_FUNCTION_NAME=pipeline-dev-datalake-loader" in lines
    assert lines == sorted(lines)


def test_env_file_refuses_a_value_it_cannot_carry() -> None:
    with pytest.raises(ValueError, match="newline"):
        env_file_text(function(BAD="two\nlines"))


def test_images_are_tagged_for_the_repository_then_pushed() -> None:
    commands = push_commands("s3-ingest-pipeline/datalake-loader:local", "000000000000.dkr.ecr.example/repo")

    assert commands == [
        [
            "docker",
            "tag",
            "s3-ingest-pipeline/datalake-loader:local",
            "000000000000.dkr.ecr.example/repo:latest",
        ],
        ["docker", "push", "000000000000.dkr.ecr.example/repo:latest"],
    ]


@pytest.mark.parametrize("managed", [True, False])
def test_variables_choose_who_polls(managed: bool) -> None:
    variables = localstack_variables(managed_sqs_polling=managed)

    assert variables["managed_sqs_polling"] is managed
    assert set(variables["function_settings"]) == {"datalake-loader", "database-loader"}
