"""The SQS event as Lambda builds it, and how partial batch responses are read."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pipeline_toolkit.sqs_event import failed_message_ids, sqs_event

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:landing"


def received(message_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Body": "hello",
        "Attributes": {
            "SenderId": "AIDAEXAMPLE",
            "SentTimestamp": "1700000000000",
            "ApproximateReceiveCount": "1",
            "ApproximateFirstReceiveTimestamp": "1700000000100",
            "MessageRetentionPeriod": "ignored",
        },
        **extra,
    }


def test_a_record_has_exactly_lambdas_keys() -> None:
    event = sqs_event([received()], QUEUE_ARN, "eu-west-1")

    (record,) = event["Records"]
    assert record == {
        "messageId": "m-1",
        "receiptHandle": "rh-m-1",
        "body": "hello",
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000100",
        },
        "messageAttributes": {},
        "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-west-1",
    }


def test_message_attributes_take_lambdas_camel_case_form() -> None:
    message = received(
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "users"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        }
    )

    attributes = sqs_event([message], QUEUE_ARN, "eu-west-1")["Records"][0]["messageAttributes"]

    assert attributes["kind"] == {
        "stringValue": "users",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert attributes["blob"]["binaryValue"] == base64.b64encode(b"\x00\xff").decode()
    assert attributes["blob"]["dataType"] == "Binary"


def test_batch_keeps_the_received_order() -> None:
    event = sqs_event([received("a"), received("b"), received("c")], QUEUE_ARN, "us-east-1")

    assert [record["messageId"] for record in event["Records"]] == ["a", "b", "c"]


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_empty_answers_mean_full_success(response: object) -> None:
    assert failed_message_ids(response, ["a", "b"]) == set()


def test_named_failures_are_the_only_failures() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "b"}]}

    assert failed_message_ids(response, ["a", "b", "c"]) == {"b"}


@pytest.mark.parametrize(
    "response",
    [
        "not an object",
        {"batchItemFailures": "b"},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"wrongKey": "a"}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
    ],
)
def test_answers_lambda_rejects_fail_the_whole_batch(response: object) -> None:
    assert failed_message_ids(response, ["a", "b"]) == {"a", "b"}
