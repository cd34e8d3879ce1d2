"""An emulator and a way to deploy small test functions with SQS mappings to it, with boto3."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.toolkit.support import TEST_HANDLER, TestFunction

from pipeline_toolkit import emulator as emulator_module
from pipeline_toolkit.clients import Clients


@pytest.fixture(scope="session")
def local_emulator() -> Iterator[emulator_module.Emulator]:
    """A moto server of the runtime tests' own (the process environment is left alone)."""
    running = emulator_module.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def clients(local_emulator: emulator_module.Emulator) -> Clients:
    return Clients(local_emulator.environment())


@pytest.fixture(scope="session")
def role_arn(clients: Clients) -> str:
    iam = clients.session.client("iam", endpoint_url=clients.endpoint_url)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    return iam.create_role(RoleName="local-runtime-tests", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]


@pytest.fixture
def deploy(clients: Clients, role_arn: str, tmp_path: Path) -> Callable[..., TestFunction]:
    """Create a queue with a DLQ, an image function naming the test handler, and a disabled mapping."""

    def make(
        *,
        environment: dict[str, str] | None = None,
        timeout: int = 10,
        batch_size: int = 10,
        window: int = 0,
        report_failures: bool = True,
        visibility_timeout: int = 30,
        max_receive_count: int = 2,
        maximum_concurrency: int | None = None,
        enabled: bool = False,
    ) -> TestFunction:
        name = f"fn-{uuid.uuid4().hex[:8]}"
        record_dir = tmp_path / name
        record_dir.mkdir()
        sqs = clients.sqs
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue_url = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(visibility_timeout),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
                ),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        clients.awslambda.create_function(
            FunctionName=name,
            Role=role_arn,
            PackageType="Image",
            Code={"ImageUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:latest"},
            ImageConfig={"Command": [TEST_HANDLER]},
            Environment={"Variables": {"RECORD_DIR": str(record_dir), **(environment or {})}},
            Timeout=timeout,
            MemorySize=256,
        )
        mapping: dict[str, Any] = {
            "FunctionName": name,
            "EventSourceArn": queue_arn,
            "BatchSize": batch_size,
            "MaximumBatchingWindowInSeconds": window,
            "Enabled": enabled,
            "FunctionResponseTypes": ["ReportBatchItemFailures"] if report_failures else [],
        }
        if maximum_concurrency:
            mapping["ScalingConfig"] = {"MaximumConcurrency": maximum_concurrency}
        clients.awslambda.create_event_source_mapping(**mapping)
        return TestFunction(name, queue_url, queue_arn, dlq_url, record_dir)

    return make
