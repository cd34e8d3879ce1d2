"""Bucket policies with conditions and redrive policies, on the emulator (its process applies
:func:`pipeline_toolkit.moto_compat.apply` when it starts)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline_toolkit import moto_compat
from pipeline_toolkit.clients import Clients


def bucket_with_policy(clients: Clients, statement: dict[str, object]) -> str:
    name = f"policy-{uuid.uuid4().hex[:8]}"
    clients.s3.create_bucket(Bucket=name)
    resource = [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]
    policy = {"Version": "2012-10-17", "Statement": [{**statement, "Resource": resource}]}
    clients.s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    return name


def test_deny_insecure_transport_does_not_deny_everything(clients: Clients) -> None:
    bucket = bucket_with_policy(
        clients,
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )

    clients.s3.put_object(Bucket=bucket, Key="a.csv", Body=b"x")

    assert clients.s3.get_object(Bucket=bucket, Key="a.csv")["Body"].read() == b"x"


def test_an_unconditional_deny_still_denies(clients: Clients) -> None:
    bucket = bucket_with_policy(clients, {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject"})

    with pytest.raises(ClientError):
        clients.s3.put_object(Bucket=bucket, Key="a.csv", Body=b"x")


def test_statements_with_conditions_are_dropped_and_the_rest_kept() -> None:
    policy = {
        "Statement": [
            {"Effect": "Deny", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Effect": "Deny", "Action": "s3:DeleteObject"},
        ]
    }

    kept = json.loads(moto_compat.statements_without_conditions(json.dumps(policy)))

    assert kept["Statement"] == [{"Effect": "Deny", "Action": "s3:DeleteObject"}]


def test_a_redrive_policy_comes_back_as_compact_json_like_aws(clients: Clients) -> None:
    dlq = clients.sqs.create_queue(QueueName=f"compat-{uuid.uuid4().hex[:8]}-dlq")["QueueUrl"]
    dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    queue = clients.sqs.create_queue(
        QueueName=f"compat-{uuid.uuid4().hex[:8]}", Attributes={"RedrivePolicy": json.dumps(policy)}
    )["QueueUrl"]

    attributes = clients.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])[
        "Attributes"
    ]

    assert attributes["RedrivePolicy"] == json.dumps(policy, separators=(",", ":"))


def test_a_redrive_allow_policy_comes_back_as_it_was_set(clients: Clients) -> None:
    policy = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": ["arn:aws:sqs:us-east-1:1:x"]})
    dlq = clients.sqs.create_queue(
        QueueName=f"compat-{uuid.uuid4().hex[:8]}-dlq", Attributes={"RedriveAllowPolicy": policy}
    )["QueueUrl"]
    plain = clients.sqs.create_queue(QueueName=f"compat-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    named = clients.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["RedriveAllowPolicy"])
    everything = clients.sqs.get_queue_attributes(QueueUrl=plain, AttributeNames=["All"])

    assert named["Attributes"]["RedriveAllowPolicy"] == policy
    assert "RedriveAllowPolicy" not in everything["Attributes"]


def test_a_scan_while_other_threads_write_does_not_fail(clients: Clients) -> None:
    table = f"compat-{uuid.uuid4().hex[:8]}"
    clients.dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # Big enough that a scan takes a while (unpatched, about one scan in ten failed here).
    for n in range(200):
        items = [{"PutRequest": {"Item": {"id": {"S": f"seed-{n}-{i}"}}}} for i in range(25)]
        clients.dynamodb.batch_write_item(RequestItems={table: items})
    stop = threading.Event()
    # Its own client: botocore clients are thread-safe, but the test's session is shared.
    writer = Clients(clients.environment).dynamodb

    def write() -> None:
        n = 0
        while not stop.is_set():
            items = [{"PutRequest": {"Item": {"id": {"S": f"{n}-{i}"}}}} for i in range(25)]
            writer.batch_write_item(RequestItems={table: items})
            n += 1

    thread = threading.Thread(target=write)
    thread.start()
    # No retries: a 500 from the emulator would fail the scan at once.
    env = clients.environment
    scanner = boto3.client(
        "dynamodb",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}),
    )
    try:
        for _ in range(20):
            scanner.scan(TableName=table, Select="COUNT")
    finally:
        stop.set()
        thread.join()


def test_user_metadata_over_2_kb_is_refused_like_aws_refuses_it(clients: Clients) -> None:
    bucket = f"limits-{uuid.uuid4().hex[:8]}"
    clients.s3.create_bucket(Bucket=bucket)
    # 2,048 bytes of names (without x-amz-meta-) and values: the most AWS accepts.
    clients.s3.put_object(Bucket=bucket, Key="fits", Body=b"x", Metadata={"k": "v" * 2047})

    with pytest.raises(ClientError, match="MetadataTooLarge"):
        clients.s3.put_object(Bucket=bucket, Key="over", Body=b"x", Metadata={"k": "v" * 2048})
    with pytest.raises(ClientError, match="MetadataTooLarge"):
        clients.s3.copy_object(
            Bucket=bucket,
            Key="copy",
            CopySource={"Bucket": bucket, "Key": "fits"},
            Metadata={"a": "v" * 1024, "b": "v" * 1024},
            MetadataDirective="REPLACE",
        )


def test_keys_over_1024_bytes_are_refused_like_aws_refuses_them(clients: Clients) -> None:
    bucket = f"limits-{uuid.uuid4().hex[:8]}"
    clients.s3.create_bucket(Bucket=bucket)
    longest = "用" * 341 + "x"  # 1,024 bytes
    clients.s3.put_object(Bucket=bucket, Key=longest, Body=b"x")

    with pytest.raises(ClientError, match="KeyTooLongError"):
        clients.s3.put_object(Bucket=bucket, Key=longest + "x", Body=b"x")
    with pytest.raises(ClientError, match="KeyTooLongError"):
        clients.s3.copy_object(
            Bucket=bucket, Key=longest + "x", CopySource={"Bucket": bucket, "Key": longest}
        )


@pytest.mark.parametrize(
    "name",
    ["xn--pipeline-dev", "sthree-pipeline", "amzn-s3-demo-x", "pipeline-s3alias", "pipeline--ol-s3", "a..b"],
)
def test_bucket_names_aws_refuses_are_refused(clients: Clients, name: str) -> None:
    assert moto_compat.bucket_name_problem(name) is not None
    with pytest.raises(ClientError, match="InvalidBucketName"):
        clients.s3.create_bucket(Bucket=name)


def test_bucket_names_aws_accepts_are_accepted() -> None:
    for name in ("pipeline-dev-landing", "pipeline-dev-landing-123456789012-eu-west-1", "a.b-c"):
        assert moto_compat.bucket_name_problem(name) is None


def test_a_named_query_can_be_deleted_like_on_aws(clients: Clients) -> None:
    athena = clients.session.client("athena", endpoint_url=clients.endpoint_url)
    workgroup = f"compat-{uuid.uuid4().hex[:8]}"
    athena.create_work_group(Name=workgroup, Tags=[{"Key": "k", "Value": "v"}])
    kept = athena.create_named_query(Name="kept", Database="db", QueryString="SELECT 1", WorkGroup=workgroup)
    gone = athena.create_named_query(Name="gone", Database="db", QueryString="SELECT 2", WorkGroup=workgroup)

    athena.delete_named_query(NamedQueryId=gone["NamedQueryId"])

    assert athena.list_named_queries(WorkGroup=workgroup)["NamedQueryIds"] == [kept["NamedQueryId"]]


def test_two_concurrent_conditional_creates_of_one_key_let_exactly_one_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In process (moto's mock): the check is slowed so that, unpatched, both threads would pass it."""
    from moto import mock_aws
    from moto.s3.models import S3Backend

    moto_compat.apply()
    original = S3Backend.get_object

    def slow_get_object(self: S3Backend, *args: object, **kwargs: object) -> object:
        found = original(self, *args, **kwargs)  # type: ignore[arg-type]
        time.sleep(0.2)  # the window in which a concurrent create would pass the same check
        return found

    monkeypatch.setattr(S3Backend, "get_object", slow_get_object)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="conditional")
        outcomes: list[str] = []

        def create(body: bytes) -> None:
            try:
                s3.put_object(Bucket="conditional", Key="once.jsonl", Body=body, IfNoneMatch="*")
                outcomes.append("created")
            except ClientError as error:
                outcomes.append(error.response["Error"]["Code"])

        threads = [threading.Thread(target=create, args=(body,)) for body in (b"a", b"b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outcomes) == ["PreconditionFailed", "created"]
