"""``pipeline drop`` and ``pipeline status`` against a running session (buckets, queues, table made here)."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from pipeline.manifests import Manifest, RecordError, write_manifest
from pipeline.objects import ObjectRef
from pipeline_toolkit import emulator as emulator_module
from pipeline_toolkit.cli import main
from pipeline_toolkit.clients import Clients
from pipeline_toolkit.outputs import QueueOutputs, Session, StackOutputs
from pipeline_toolkit.render import render_status
from pipeline_toolkit.report import collect
from pipeline_toolkit.s3_events import s3_event, s3_record, sns_notification


@dataclass
class FakeStack:
    outputs: StackOutputs
    state_dir: Path


def make_queue(clients: Clients, name: str) -> QueueOutputs:
    def arn(url: str) -> str:
        return clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    dlq = clients.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    queue = clients.sqs.create_queue(QueueName=name)["QueueUrl"]
    return QueueOutputs(url=queue, arn=arn(queue), dlq_url=dlq, dlq_arn=arn(dlq))


@pytest.fixture
def stack(clients: Clients, local_emulator: emulator_module.Emulator, tmp_path: Path) -> FakeStack:
    """The resources the CLI reads, named as Terraform's outputs would name them, and a session file."""
    run = uuid.uuid4().hex[:8]
    buckets = {role: f"cli-{run}-{role}" for role in ("landing", "datalake", "quarantine")}
    for name in buckets.values():
        clients.s3.create_bucket(Bucket=name)
    clients.s3.put_bucket_versioning(Bucket=buckets["landing"], VersioningConfiguration={"Status": "Enabled"})
    table = f"cli-{run}-users"
    clients.dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    outputs = StackOutputs(
        landing_bucket=buckets["landing"],
        datalake_bucket=buckets["datalake"],
        quarantine_bucket=buckets["quarantine"],
        table_name=table,
        region=clients.region,
        queues={
            key: make_queue(clients, f"cli-{run}-{key}") for key in ("datalake-loader", "database-loader")
        },
    )
    state_dir = tmp_path / "state"
    Session(local_emulator.endpoint_url, local_emulator.region, outputs, os.getpid()).save(state_dir)
    return FakeStack(outputs, state_dir)


def ref_for(stack: FakeStack, key: str, version: str) -> ObjectRef:
    return ObjectRef(
        bucket=stack.outputs.landing_bucket, key=key, event_time=datetime.now(UTC), version_id=version
    )


def manifest(stack: FakeStack, ref: ObjectRef, stage: str, **fields: Any) -> Manifest:
    return Manifest(
        stage=stage,  # type: ignore[arg-type]
        dataset="users",
        source_bucket=ref.bucket,
        source_key=ref.key,
        source_version=ref.version_label,
        event_time=ref.event_time_iso,
        **{"status": "loaded", **fields},
    )


def s3_event_body(bucket: str, key: str, version: str) -> str:
    record = s3_record(bucket, key, version=version, etag="abc", size=1, minimal=True)
    return sns_notification(s3_event(record))


def test_drop_uploads_files_to_the_sessions_landing_bucket(
    stack: FakeStack, clients: Clients, tmp_path: Path
) -> None:
    first = tmp_path / "users.csv"
    first.write_text("UserId,Email\nu1,a@example.com\n")
    second = tmp_path / "events.jsonl"
    second.write_text('{"e": 1}\n')

    code = main(
        [
            "--state-dir",
            str(stack.state_dir),
            "drop",
            "--quiet",
            "--prefix",
            "incoming",
            str(first),
            str(second),
        ]
    )

    assert code == 0
    listed = clients.s3.list_objects_v2(Bucket=stack.outputs.landing_bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == ["incoming/events.jsonl", "incoming/users.csv"]
    body = clients.s3.get_object(Bucket=stack.outputs.landing_bucket, Key="incoming/users.csv")["Body"].read()
    assert body == first.read_bytes()


def test_drop_with_an_explicit_key(stack: FakeStack, clients: Clients, tmp_path: Path) -> None:
    path = tmp_path / "local-name.csv"
    path.write_text("x\n")
    key = "a folder/ünïcødé: users.csv"

    assert main(["--state-dir", str(stack.state_dir), "drop", "--quiet", "--key", key, str(path)]) == 0

    assert clients.s3.head_object(Bucket=stack.outputs.landing_bucket, Key=key)["ContentLength"] == 2


def test_drop_without_a_running_stack_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("PIPELINE_LANDING_BUCKET", raising=False)
    path = tmp_path / "users.csv"
    path.write_text("x\n")

    code = main(["--state-dir", str(tmp_path / "nothing"), "drop", str(path)])

    assert code == 2
    assert "pipeline local up" in capsys.readouterr().out


def test_a_session_whose_process_is_gone_is_not_used(stack: FakeStack) -> None:
    session_file = stack.state_dir / "session.json"
    document = json.loads(session_file.read_text())
    document["pid"] = 2**22 + 12345  # above the default pid_max: no such process
    session_file.write_text(json.dumps(document))

    with pytest.raises(Exception, match="is gone"):
        Session.load(stack.state_dir)


def test_status_tells_each_files_story(
    stack: FakeStack, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = stack.outputs.landing_bucket
    quarantine = stack.outputs.quarantine_bucket
    good = clients.s3.put_object(Bucket=landing, Key="users.csv", Body=b"1")["VersionId"]
    bad = clients.s3.put_object(Bucket=landing, Key="users-bad.csv", Body=b"2")["VersionId"]
    dead = clients.s3.put_object(Bucket=landing, Key="users-dead.csv", Body=b"3")["VersionId"]
    pending = clients.s3.put_object(Bucket=landing, Key="users-pending.csv", Body=b"4")["VersionId"]
    for key, version, database in (
        ("users.csv", good, {"records_loaded": 5}),
        (
            "users-bad.csv",
            bad,
            {
                "status": "partial",
                "records_loaded": 1,
                "records_rejected": 1,
                "first_errors": [RecordError(line=3, reasons=["email: required field is empty"])],
            },
        ),
    ):
        ref = ref_for(stack, key, version)
        write_manifest(
            clients.s3, quarantine, ref, manifest(stack, ref, "datalake", lake_key=f"dataset=users/{key}")
        )
        write_manifest(clients.s3, quarantine, ref, manifest(stack, ref, "database", **database))
    dlq = stack.outputs.queues["database-loader"].dlq_url
    clients.sqs.send_message(QueueUrl=dlq, MessageBody=s3_event_body(landing, "users-dead.csv", dead))
    clients.sqs.send_message(QueueUrl=dlq, MessageBody="poison that names no file")

    assert main(["--state-dir", str(stack.state_dir), "status", "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    outcomes = {file["key"]: file["outcome"] for file in document["files"]}
    assert outcomes == {
        "users.csv": "loaded",
        "users-bad.csv": "partial",
        "users-dead.csv": "dead-lettered (database-loader)",
        "users-pending.csv": "in progress",
    }
    assert {file["key"]: file["version"] for file in document["files"]}["users-pending.csv"] == pending
    assert document["dlq_depths"] == {"database-loader": 2, "datalake-loader": 0}
    assert document["table"]["items"] == 0
    # Peeking at the dead letters left them where they were.
    assert collect(clients, stack.outputs).dlq_depths["database-loader"] == 2


def test_the_rendered_status_shows_reasons_and_totals(stack: FakeStack, clients: Clients) -> None:
    version = clients.s3.put_object(Bucket=stack.outputs.landing_bucket, Key="users.csv", Body=b"1")[
        "VersionId"
    ]
    ref = ref_for(stack, "users.csv", version)
    errors = [RecordError(line=line, reasons=[f"age: bad on {line}"]) for line in (2, 3, 4, 5)]
    write_manifest(
        clients.s3, stack.outputs.quarantine_bucket, ref, manifest(stack, ref, "datalake", lake_key="k")
    )
    write_manifest(
        clients.s3,
        stack.outputs.quarantine_bucket,
        ref,
        manifest(stack, ref, "database", status="partial", records_rejected=4, first_errors=errors),
    )
    console = Console(record=True, width=200)

    render_status(collect(clients, stack.outputs), console)

    text = console.export_text()
    assert "users.csv" in text
    assert "partial" in text
    assert "line 2: age: bad on 2" in text
    assert "and 1 more" in text
    assert f"Table {stack.outputs.table_name}: 0 item(s)" in text
    assert "Dead-letter queue of database-loader: 0 message(s)" in text
