"""An in-process stack on moto's ``mock_aws``: landing bucket, SNS, two SQS queues, lake, quarantine, table.

Events reach the handlers exactly as Lambda builds them: real S3 notifications published by moto through
SNS into SQS (SNS-wrapped, or raw message delivery), received and shaped by the local runtime's event
builder, then handed to the handler module with a Lambda-like context.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from pipeline.manifests import Manifest, iter_manifests
from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.sqs_event import sqs_event

REFERENCE = Path(__file__).resolve().parents[2] / "reference"  # what Terraform uploads to the lake
REGION = "us-east-1"
LANDING, LAKE, QUARANTINE, TABLE = "it-landing", "it-datalake", "it-quarantine", "it-users"
FUNCTIONS = {"datalake": "pipeline.handlers.datalake", "database": "pipeline.handlers.database"}
PART_BYTES = 4096  # what parts_stack splits files above


@dataclass
class Stack:
    delivery: str
    s3: Any
    sqs: Any
    ddb: Any
    queues: dict[str, tuple[str, str]]  # function -> (url, arn)
    handlers: dict[str, ModuleType] = field(default_factory=dict)
    lake_bucket: str = LAKE
    quarantine_bucket: str = QUARANTINE

    def put(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> str:
        put = self.s3.put_object(Bucket=LANDING, Key=key, Body=body, Metadata=metadata or {})
        return str(put["VersionId"])

    def receive(self, function: str) -> list[Any]:
        url, _ = self.queues[function]
        messages: list[Any] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    def invoke(self, function: str, messages: list[Any]) -> dict[str, Any]:
        _, arn = self.queues[function]
        context = LocalLambdaContext(
            function_name=f"it-{function}-loader",
            invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:it-{function}-loader",
            memory_limit_in_mb=1024,
            timeout_seconds=60,
        )
        response: dict[str, Any] = self.handlers[function].handler(sqs_event(messages, arn, REGION), context)
        return response

    def run(self, function: str) -> list[str]:
        """Deliver everything queued for a function, once; returns the ids of messages that failed."""
        messages = self.receive(function)
        if not messages:
            return []
        response = self.invoke(function, messages)
        failed = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
        url, _ = self.queues[function]
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return failed

    def run_all(self) -> None:
        assert self.run("datalake") == []
        assert self.run("database") == []

    def table(self) -> dict[str, dict[str, Any]]:
        items = self.ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return {item["user_id"]["S"]: item for item in items}

    def lake_keys(self) -> list[str]:
        """The lake's data objects (its reference/ tables left out)."""
        objects = self.s3.list_objects_v2(Bucket=LAKE).get("Contents", [])
        return [o["Key"] for o in objects if not o["Key"].startswith("reference/")]

    def curated_keys(self, dataset: str = "") -> list[str]:
        prefix = f"curated/dataset={dataset}/" if dataset else "curated/"
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def curated(self, dataset: str) -> pa.Table:
        """Every curated row of ``dataset``, with the partition columns as the key names them."""
        tables = []
        for key in self.curated_keys(dataset):
            table = pq.read_table(io.BytesIO(self.s3.get_object(Bucket=LAKE, Key=key)["Body"].read()))
            date = key.split("/ingest_date=")[1].split("/")[0]
            tables.append(table.append_column("ingest_date", pa.array([date] * table.num_rows)))
        return pa.concat_tables(tables) if tables else pa.table({})

    def manifests(self, stage: str) -> dict[str, Manifest]:
        return {m.source_key: m for m in iter_manifests(self.s3, QUARANTINE) if m.stage == stage}

    def rejects(self, key: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=QUARANTINE, Key=key)["Body"].read()
        return [orjson.loads(line) for line in body.splitlines()]


def _create(delivery: str) -> Stack:
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    for bucket in (LANDING, LAKE, QUARANTINE):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for path in sorted(REFERENCE.glob("*/v*/*.csv")):
        s3.put_object(Bucket=LAKE, Key=f"reference/{path.relative_to(REFERENCE)}", Body=path.read_bytes())
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = sns.create_topic(Name="it-landing-events")["TopicArn"]
    queues: dict[str, tuple[str, str]] = {}
    for function in FUNCTIONS:
        url = sqs.create_queue(QueueName=f"it-{function}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes = {"RawMessageDelivery": "true"} if delivery == "raw" else {}
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
        queues[function] = (url, arn)
    s3.put_bucket_notification_configuration(
        Bucket=LANDING,
        NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return Stack(delivery=delivery, s3=s3, sqs=sqs, ddb=ddb, queues=queues)


@pytest.fixture(params=["sns", "raw"])
def stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The stack, once with SNS-wrapped message bodies and once with raw message delivery."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("PIPELINE_DATALAKE_BUCKET", LAKE)
    monkeypatch.setenv("PIPELINE_QUARANTINE_BUCKET", QUARANTINE)
    monkeypatch.setenv("PIPELINE_USERS_TABLE", TABLE)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    with mock_aws():
        stack = _create(request.param)
        # Import (or re-import) the handlers inside the mock, as a cold start would, with this env.
        for function, module in FUNCTIONS.items():
            stack.handlers[function] = importlib.reload(importlib.import_module(module))
        # The notification configuration sends an s3:TestEvent; drain it like any other message.
        stack.run_all()
        yield stack


@pytest.fixture
def parts_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The in-process stack with a part loader: files above PART_BYTES are loaded in parts."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name, value in {
        "PIPELINE_DATALAKE_BUCKET": "it-datalake",
        "PIPELINE_QUARANTINE_BUCKET": "it-quarantine",
        "PIPELINE_USERS_TABLE": "it-users",
        "PIPELINE_PART_BYTES": str(PART_BYTES),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        stack = _create("raw")
        url = stack.sqs.create_queue(QueueName="it-parts")["QueueUrl"]
        arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        stack.queues["parts"] = (url, arn)
        monkeypatch.setenv("PIPELINE_PARTS_QUEUE_URL", url)
        for function, module in {**FUNCTIONS, "parts": "pipeline.handlers.parts"}.items():
            stack.handlers[function] = importlib.reload(importlib.import_module(module))
        stack.run_all()
        yield stack
