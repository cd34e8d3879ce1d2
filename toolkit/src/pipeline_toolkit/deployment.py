"""Read what the stack deployed (functions, their SQS event source mappings, the queues) from the emulator.

The local runtime runs exactly what Terraform deployed: the handler named by the image command, the
function's environment and timeout, each mapping's batch size, batching window and response types, and each
queue's visibility timeout and redrive policy. Nothing here reads Terraform files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_lambda.type_defs import (
        EventSourceMappingConfigurationTypeDef,
        FunctionConfigurationTypeDef,
    )
    from mypy_boto3_sqs import SQSClient

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


class DeploymentError(RuntimeError):
    """The deployed configuration cannot be run locally (no handler, unknown queue, ...)."""


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """An SQS queue as a mapping reads from it."""

    arn: str
    url: str
    visibility_timeout: int
    max_receive_count: int | None = None
    dead_letter_arn: str | None = None

    @property
    def name(self) -> str:
        return self.arn.rsplit(":", 1)[-1]


@dataclass(frozen=True, slots=True)
class MappingConfig:
    """An SQS event source mapping: which queue feeds the function, and how."""

    uuid: str
    queue: QueueConfig
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool
    maximum_concurrency: int | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """A deployed function as the runtime needs it."""

    name: str
    arn: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    region: str
    environment: dict[str, str] = field(default_factory=dict)
    mappings: tuple[MappingConfig, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FunctionConfig:
        raw = json.loads(text)
        mappings = tuple(
            MappingConfig(**{**mapping, "queue": QueueConfig(**mapping["queue"])})
            for mapping in raw["mappings"]
        )
        return cls(**{**raw, "mappings": mappings})


def handler_of(configuration: Mapping[str, Any]) -> str:
    """The handler's dotted path: the image command for an image function, else the ``Handler`` setting."""
    command = configuration.get("ImageConfigResponse", {}).get("ImageConfig", {}).get("Command") or []
    if command:
        return str(command[0])
    handler = configuration.get("Handler")
    if handler:
        return str(handler)
    raise DeploymentError(
        f"function {configuration.get('FunctionName')}: no handler; an image function must set "
        "image_config.command so that the deployed configuration names its handler"
    )


def region_of(arn: str) -> str:
    return arn.split(":")[3]


def read_queue(sqs: SQSClient, queue_arn: str) -> QueueConfig:
    """A queue's URL, visibility timeout and redrive policy, from its ARN."""
    _, _, _, _, account, name = queue_arn.split(":", 5)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    return QueueConfig(
        arn=queue_arn,
        url=url,
        visibility_timeout=int(attributes.get("VisibilityTimeout", "30")),
        max_receive_count=int(redrive["maxReceiveCount"]) if "maxReceiveCount" in redrive else None,
        dead_letter_arn=redrive.get("deadLetterTargetArn"),
    )


def mapping_from(raw: EventSourceMappingConfigurationTypeDef, queue: QueueConfig) -> MappingConfig:
    scaling = raw.get("ScalingConfig") or {}
    return MappingConfig(
        uuid=raw["UUID"],
        queue=queue,
        batch_size=int(raw.get("BatchSize") or 10),
        batching_window_seconds=int(raw.get("MaximumBatchingWindowInSeconds") or 0),
        report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in (raw.get("FunctionResponseTypes") or []),
        maximum_concurrency=scaling.get("MaximumConcurrency"),
        enabled=raw.get("State", "Enabled") not in ("Disabled", "Disabling"),
    )


def sqs_mappings(awslambda: LambdaClient) -> dict[str, list[EventSourceMappingConfigurationTypeDef]]:
    """Every SQS event source mapping in the account and region, by unqualified function ARN.

    Listed whole and matched on ``FunctionArn`` rather than filtered with ``FunctionName=``: emulators match
    that filter against whatever form of the name the mapping was created with (Terraform passes the ARN).
    """
    mappings: dict[str, list[EventSourceMappingConfigurationTypeDef]] = {}
    for page in awslambda.get_paginator("list_event_source_mappings").paginate():
        for raw in page["EventSourceMappings"]:
            if raw.get("EventSourceArn", "").split(":")[2:3] != ["sqs"]:
                continue  # only SQS sources are polled locally
            function_arn = ":".join(raw.get("FunctionArn", "").split(":")[:7])  # drop a version or alias
            mappings.setdefault(function_arn, []).append(raw)
    return mappings


def read_function(
    awslambda: LambdaClient,
    sqs: SQSClient,
    name: str,
    mappings: Mapping[str, list[EventSourceMappingConfigurationTypeDef]] | None = None,
) -> FunctionConfig:
    """One function's deployed configuration and its SQS event source mappings."""
    configuration: FunctionConfigurationTypeDef = awslambda.get_function(FunctionName=name)["Configuration"]
    arn = configuration["FunctionArn"]
    raw_mappings = (sqs_mappings(awslambda) if mappings is None else mappings).get(arn, [])
    read = [mapping_from(raw, read_queue(sqs, raw["EventSourceArn"])) for raw in raw_mappings]
    return FunctionConfig(
        name=configuration["FunctionName"],
        arn=arn,
        handler=handler_of(configuration),
        timeout_seconds=int(configuration.get("Timeout", 3)),
        memory_mb=int(configuration.get("MemorySize", 128)),
        region=region_of(arn),
        environment=dict(configuration.get("Environment", {}).get("Variables", {})),
        mappings=tuple(sorted(read, key=lambda mapping: mapping.queue.arn)),
    )


def function_names(awslambda: LambdaClient) -> list[str]:
    """Every function in the account and region, by name."""
    names: list[str] = []
    for page in awslambda.get_paginator("list_functions").paginate():
        names.extend(function["FunctionName"] for function in page["Functions"])
    return sorted(names)


def read_deployment(
    awslambda: LambdaClient, sqs: SQSClient, names: Iterable[str] | None = None
) -> list[FunctionConfig]:
    """The functions named (default: every function) that have at least one SQS event source mapping."""
    chosen = function_names(awslambda) if names is None else list(names)
    mappings = sqs_mappings(awslambda)
    functions = [read_function(awslambda, sqs, name, mappings) for name in chosen]
    return [function for function in functions if function.mappings]
