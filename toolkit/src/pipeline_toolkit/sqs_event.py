"""The SQS event exactly as Lambda builds it from a received batch, and the reading of the function's answer.

Event shape: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html (``Records`` with ``messageId``,
``receiptHandle``, ``body``, ``attributes``, ``messageAttributes``, ``md5OfBody``, ``eventSource``,
``eventSourceARN``, ``awsRegion``). Partial batch responses follow the rules Lambda documents for
``ReportBatchItemFailures``: an empty or null answer is full success; an answer that names no valid message
of the batch makes the whole batch a failure.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

# System attributes Lambda copies into each record (the FIFO and tracing ones only when the queue has them).
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def lambda_message_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    """An SQS API message attribute in Lambda's camelCase form."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _b64(value["BinaryValue"])
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [_b64(item) for item in value.get("BinaryListValues", [])]
    attribute["dataType"] = value["DataType"]
    return attribute


def lambda_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records`` entry of Lambda's SQS event."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {name: attributes[name] for name in RECORD_ATTRIBUTES if name in attributes},
        "messageAttributes": {
            name: lambda_message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(messages: Iterable[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda passes to a function for one batch of messages."""
    return {"Records": [lambda_record(message, queue_arn, region) for message in messages]}


def failed_message_ids(response: object, batch_ids: Sequence[str]) -> set[str]:
    """Which messages of the batch a partial batch response reports as failed.

    ``None``, ``{}``, a missing or empty ``batchItemFailures`` list: nothing failed. Anything Lambda would
    reject (not an object, an identifier that is empty, null, or not in the batch): the whole batch failed.
    """
    whole_batch = set(batch_ids)
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return whole_batch
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return whole_batch
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in whole_batch:
            return whole_batch
        failed.add(identifier)
    return failed
