"""Reading the deployed configuration back from the emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.toolkit.support import TestFunction

from pipeline_toolkit.clients import Clients
from pipeline_toolkit.deployment import DeploymentError, FunctionConfig, handler_of, read_deployment


def test_the_deployed_configuration_is_read_whole(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(
        environment={"PIPELINE_X": "1"},
        timeout=7,
        batch_size=25,
        window=3,
        visibility_timeout=42,
        max_receive_count=4,
        maximum_concurrency=3,
    )

    (function,) = read_deployment(clients.awslambda, clients.sqs, [fn.name])

    assert function.handler == "local_test_handlers.handler"
    assert function.timeout_seconds == 7
    assert function.memory_mb == 256
    assert function.environment["PIPELINE_X"] == "1"
    (mapping,) = function.mappings
    assert (mapping.batch_size, mapping.batching_window_seconds) == (25, 3)
    assert mapping.report_batch_item_failures
    assert mapping.maximum_concurrency == 3
    assert not mapping.enabled
    assert mapping.queue.arn == fn.queue_arn
    assert (mapping.queue.visibility_timeout, mapping.queue.max_receive_count) == (42, 4)
    assert mapping.queue.dead_letter_arn is not None
    assert mapping.queue.dead_letter_arn.endswith(f"{fn.name}-dlq")


def test_a_mapping_created_with_the_function_arn_is_found(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    # Terraform names the function by ARN in CreateEventSourceMapping; the emulator filters on that literally.
    fn = deploy()
    arn = clients.awslambda.get_function(FunctionName=fn.name)["Configuration"]["FunctionArn"]
    other = clients.sqs.create_queue(QueueName=f"{fn.name}-second")["QueueUrl"]
    other_arn = clients.sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    clients.awslambda.create_event_source_mapping(FunctionName=arn, EventSourceArn=other_arn, Enabled=False)

    (function,) = read_deployment(clients.awslambda, clients.sqs, [fn.name])

    assert sorted(mapping.queue.arn for mapping in function.mappings) == sorted([fn.queue_arn, other_arn])


def test_functions_without_an_sqs_mapping_are_left_out(clients: Clients, role_arn: str) -> None:
    clients.awslambda.create_function(
        FunctionName="no-mapping-here",
        Role=role_arn,
        PackageType="Image",
        Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:latest"},
        ImageConfig={"Command": ["some.handler"]},
    )

    assert read_deployment(clients.awslambda, clients.sqs, ["no-mapping-here"]) == []


def test_the_configuration_survives_the_trip_to_a_worker(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    (function,) = read_deployment(clients.awslambda, clients.sqs, [deploy().name])

    assert FunctionConfig.from_json(function.to_json()) == function


def test_the_image_command_names_the_handler() -> None:
    configuration = {"ImageConfigResponse": {"ImageConfig": {"Command": ["pkg.mod.fn", "ignored"]}}}

    assert handler_of(configuration) == "pkg.mod.fn"
    assert handler_of({"Handler": "zip.handler"}) == "zip.handler"


def test_an_image_function_without_a_command_is_refused() -> None:
    with pytest.raises(DeploymentError, match=r"image_config\.command"):
        handler_of({"FunctionName": "f", "ImageConfigResponse": {"ImageConfig": {}}})
