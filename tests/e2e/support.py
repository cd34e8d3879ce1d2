"""The end-to-end tests' view of a deployed pipeline: drop files, wait for them, read what they became."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from pipeline_toolkit.clients import Clients
from pipeline_toolkit.outputs import StackOutputs
from pipeline_toolkit.report import FileStatus, wait_until_settled
from pipeline_toolkit.runtime import LocalRuntime

PROCESS_TIMEOUT_SECONDS = 180.0
_deserializer = TypeDeserializer()


def unique(prefix: str = "e2e") -> str:
    """A run-unique token: tests share one stack, so every key and record id they create carries one."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Latency:
    key: str
    seconds: float


@dataclass
class Pipeline:
    """A deployed stack as the end-to-end tests use it."""

    clients: Clients
    outputs: StackOutputs
    # The local runtime running the functions, when this target has one (the embedded target does).
    runtime: LocalRuntime | None = None
    latencies: list[Latency] = field(default_factory=list)

    # -- dropping and waiting ----------------------------------------------------------------------------

    def drop(self, key: str, body: bytes) -> tuple[str, str, float]:
        """Put a file in the landing bucket; returns (key, version id, monotonic time of the drop)."""
        response = self.clients.s3.put_object(Bucket=self.outputs.landing_bucket, Key=key, Body=body)
        return key, response.get("VersionId") or "null", time.monotonic()

    def process(self, key: str, body: bytes, timeout: float = PROCESS_TIMEOUT_SECONDS) -> FileStatus:
        """Drop a file and wait until every stage that should see it has; records drop-to-processed time."""
        key, version, dropped_at = self.drop(key, body)
        return self.wait(key, version, dropped_at, timeout)

    def wait(
        self, key: str, version: str, dropped_at: float, timeout: float = PROCESS_TIMEOUT_SECONDS
    ) -> FileStatus:
        status, settled_at = wait_until_settled(self.clients, self.outputs, [(key, version)], timeout=timeout)
        file = status.file(key, version)
        assert file is not None, f"{key}@{version} is not in the landing bucket"
        assert (key, version) in settled_at, (
            f"{key}@{version} not processed within {timeout}s: {file.outcome}"
        )
        self.latencies.append(Latency(key, settled_at[(key, version)] - dropped_at))
        return file

    # -- reading results ---------------------------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any] | None:
        item = self.clients.dynamodb.get_item(
            TableName=self.outputs.table_name, Key={"user_id": {"S": user_id}}, ConsistentRead=True
        ).get("Item")
        return (
            None if item is None else {name: _deserializer.deserialize(value) for name, value in item.items()}
        )

    def users_with_prefix(self, prefix: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        paginator = self.clients.dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.outputs.table_name,
            FilterExpression="begins_with(user_id, :p)",
            ExpressionAttributeValues={":p": {"S": prefix}},
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                record = {name: _deserializer.deserialize(value) for name, value in item.items()}
                found[str(record["user_id"])] = record
        return found

    def lake_object(self, key: str) -> bytes:
        return self.clients.s3.get_object(Bucket=self.outputs.datalake_bucket, Key=key)["Body"].read()

    def quarantine_object(self, key: str) -> bytes:
        return self.clients.s3.get_object(Bucket=self.outputs.quarantine_bucket, Key=key)["Body"].read()

    def dead_letters(self, function_key: str) -> list[dict[str, Any]]:
        """The messages in a function's dead-letter queue (peeked and released at once)."""
        url = self.outputs.queues[function_key].dlq_url
        sqs = self.clients.sqs
        seen: dict[str, dict[str, Any]] = {}
        handles: list[str] = []
        for _ in range(20):
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                seen[message["MessageId"]] = dict(message)
        for start in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for i, handle in enumerate(handles[start : start + 10])
                ],
            )
        return list(seen.values())

    def remove_dead_letters(self, function_key: str, marker: str) -> int:
        """Delete the messages of a function's dead-letter queue whose body holds ``marker`` (what a test put
        there itself), so that no other test finds them; returns how many."""
        url = self.outputs.queues[function_key].dlq_url
        sqs = self.clients.sqs
        removed = 0
        others: list[str] = []  # kept invisible while looking, so that each message is seen once
        for _ in range(20):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                if marker in message.get("Body", ""):
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    removed += 1
                else:
                    others.append(message["ReceiptHandle"])
        for handle in others:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        return removed

    def max_receive_count(self, function_key: str) -> int:
        attributes = self.clients.sqs.get_queue_attributes(
            QueueUrl=self.outputs.queues[function_key].url, AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        return int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])

    def summary(self) -> list[str]:
        if not self.latencies:
            return []
        seconds = sorted(latency.seconds for latency in self.latencies)
        lines = [
            f"drop-to-processed (both stages, {len(seconds)} files): "
            f"median {statistics.median(seconds):.2f} s, max {seconds[-1]:.2f} s"
        ]
        lines.extend(
            f"  {latency.seconds:6.2f} s  {json.dumps(latency.key, ensure_ascii=False)}"
            for latency in self.latencies
        )
        return lines


def csv_users(prefix: str, rows: list[tuple[str, str, int]]) -> bytes:
    """A users CSV in the article's column names: (id suffix, email, age) per row."""
    lines = ["UserId,FirstName,LastName,Email,Gender,Age"]
    lines.extend(
        f"{prefix}-{suffix},First{suffix},Last{suffix},{email},female,{age}" for suffix, email, age in rows
    )
    return ("\n".join(lines) + "\n").encode()
