"""Staging: big gzip files and JSON arrays become plain copies that the part planner can cut by byte range."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline.budget import Budget, OutOfTime
from pipeline.datasets import route
from pipeline.objects import ObjectRef
from pipeline.parts import layout, plan_file, plan_key
from pipeline.readers import iter_rows
from pipeline.staging import STAGING_CHUNK_BYTES, needs_staging, record_key, stage

LANDING, WORK = "landing", "quarantine"
PART_BYTES = 64 << 10


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (LANDING, WORK):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client


def landed(s3: Any, key: str, body: bytes) -> ObjectRef:
    version = s3.put_object(Bucket=LANDING, Key=key, Body=body)["VersionId"]
    return ObjectRef(
        bucket=LANDING,
        key=key,
        event_time=datetime(2026, 1, 2, tzinfo=UTC),
        version_id=version,
        size=len(body),
    )


def users_csv(rows: int) -> bytes:
    lines = ["user_id,first_name,last_name,email,gender,age"]
    lines += [f'u{n},First{n},"Last\n{n}",user{n}@example.com,female,{20 + n % 60}' for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def staged_bytes(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=WORK, Key=key)["Body"].read())


def test_a_gzip_csv_is_staged_as_its_decompressed_bytes_and_reused(s3: Any) -> None:
    plain = users_csv(5_000)
    ref = landed(s3, "in/users.csv.gz", gzip.compress(plain))
    dataset = route(ref.key)

    copy = stage(s3, ref, dataset, bucket=WORK, budget=None)

    assert (copy.format, copy.size, copy.error) == ("csv", len(plain), None)
    assert staged_bytes(s3, copy.key) == plain
    written = s3.head_object(Bucket=WORK, Key=copy.key)["LastModified"]
    again = stage(s3, ref, dataset, bucket=WORK, budget=None)
    assert again == copy
    assert s3.head_object(Bucket=WORK, Key=copy.key)["LastModified"] == written


def test_a_json_array_becomes_one_element_per_line_numbered_as_the_array_reader_numbers_it(s3: Any) -> None:
    elements: list[Any] = [
        {"user_id": f"u{n}", "email": f"u{n}@example.com", "age": n % 90, "score": n / 3}
        for n in range(3_000)
    ]
    elements += ["not a record", None, {"name": "Zoë ✓", "nested": {"list": [1, 2.5, True]}}]
    body = json.dumps(elements, indent=2, ensure_ascii=False).encode()
    ref = landed(s3, "in/users.json", body)

    copy = stage(s3, ref, route(ref.key), bucket=WORK, budget=None)

    assert copy.format == "jsonl"
    lines = staged_bytes(s3, copy.key).splitlines()
    assert [json.loads(line) for line in lines] == elements
    original = list(iter_rows(_Stream(body), "json"))
    assert [number for number, _ in original] == list(range(1, len(lines) + 1))


def test_a_json_array_broken_part_way_keeps_the_elements_before_the_fault(s3: Any) -> None:
    ref = landed(s3, "in/users.json", b'[{"user_id": "u1"}, {"user_id": "u2"}, {"user_id": ')

    copy = stage(s3, ref, route(ref.key), bucket=WORK, budget=None)

    assert copy.error is not None
    assert "invalid JSON array after element 2" in copy.error
    assert staged_bytes(s3, copy.key) == b'{"user_id":"u1"}\n{"user_id":"u2"}\n'


def test_a_truncated_gzip_is_staged_up_to_its_last_whole_line_and_the_fault_recorded(s3: Any) -> None:
    # Several MiB decompressed: the reader yields whole chunks before it meets the cut.
    plain = b"".join(f"u{n},user{n}@example.com\n".encode() for n in range(400_000))
    packed = gzip.compress(b"user_id,email\n" + plain)
    ref = landed(s3, "in/users.csv.gz", packed[: len(packed) // 2])

    copy = stage(s3, ref, route(ref.key), bucket=WORK, budget=None)

    assert copy.error is not None
    assert "truncated gzip" in copy.error
    staged = staged_bytes(s3, copy.key)
    assert staged.endswith(b"\n")
    assert 0 < len(staged) < len(plain)
    assert (b"user_id,email\n" + plain).startswith(staged)


class _Stream:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1, /) -> bytes:
        data, self._data = (self._data, b"") if size < 0 else (self._data[:size], self._data[size:])
        return data


class Clock:
    def __init__(self, calls_left: int) -> None:
        self.calls_left = calls_left

    def get_remaining_time_in_millis(self) -> int:
        self.calls_left -= 1
        return 60_000 if self.calls_left > 0 else 0


def test_running_out_of_time_leaves_no_copy_and_no_open_upload(s3: Any) -> None:
    # Incompressible enough that the copy takes several multipart chunks.
    plain = b"".join(f"u{n},{n * 7919 % 1000003:x}{n}@example.com\n".encode() for n in range(1_200_000))
    assert len(plain) > 2 * STAGING_CHUNK_BYTES
    ref = landed(s3, "in/users.csv.gz", gzip.compress(b"user_id,email\n" + plain, compresslevel=1))

    with pytest.raises(OutOfTime):
        stage(s3, ref, route(ref.key), bucket=WORK, budget=Budget(Clock(calls_left=3), margin_ms=1_000))

    assert s3.list_objects_v2(Bucket=WORK).get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket=WORK).get("Uploads")
    # The next delivery starts again and completes.
    copy = stage(s3, ref, route(ref.key), bucket=WORK, budget=None)
    assert copy.size == len(plain) + len(b"user_id,email\n")
    s3.head_object(Bucket=WORK, Key=record_key(ref))


@pytest.mark.parametrize(
    ("key", "body", "expected"),
    [
        ("a/users.csv.gz", gzip.compress(users_csv(4_000)), "stage"),
        ("a/users.csv", gzip.compress(users_csv(4_000)), "stage"),  # gzip content under a plain name
        ("a/users.json", json.dumps([{"user_id": f"u{n}"} for n in range(9_000)]).encode(), "stage"),
        ("a/users.json", b'[{"user_id": "u1"}]', "whole"),
        ("a/users.csv", users_csv(4_000), "split"),
        ("a/users.csv", users_csv(10), "whole"),
        ("a/users.csv.gz", gzip.compress(users_csv(10)), "whole"),
        ("a/users.csv", b"PK\x03\x04" + b"\x00" * PART_BYTES * 2, "whole"),  # a zip: refused whole, at once
    ],
)
def test_layout_chooses_whole_split_or_stage(s3: Any, key: str, body: bytes, expected: str) -> None:
    ref = landed(s3, key, body)

    assert layout(s3, ref, route(key), PART_BYTES) == expected


def test_needs_staging_compares_a_gzip_file_with_a_share_of_the_part_size() -> None:
    ref = ObjectRef(bucket=LANDING, key="a/users.csv.gz", event_time=datetime.now(UTC), size=PART_BYTES // 4)
    assert needs_staging(ref, route(ref.key), b"\x1f\x8b", PART_BYTES)
    small = ObjectRef(
        bucket=LANDING, key="a/users.csv.gz", event_time=datetime.now(UTC), size=PART_BYTES // 16
    )
    assert not needs_staging(small, route(ref.key), b"\x1f\x8b", PART_BYTES)


def test_the_parts_of_a_staged_copy_are_ranges_of_the_copy(s3: Any) -> None:
    plain = users_csv(5_000)
    ref = landed(s3, "in/users.csv.gz", gzip.compress(plain))
    copy = stage(s3, ref, route(ref.key), bucket=WORK, budget=None)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="parts")["QueueUrl"]

    manifest = plan_file(
        s3,
        sqs,
        ref,
        route(ref.key),
        parts_queue_url=queue,
        part_bytes=PART_BYTES,
        quarantine_bucket=WORK,
        staged=copy,
    )

    messages = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        messages += [json.loads(message["Body"]) for message in batch]
    assert manifest.parts_total == len(messages) >= 2
    parts = sorted((message["part"] for message in messages), key=lambda part: part["index"])
    assert parts[0]["start"] == 0
    assert parts[-1]["end"] == len(plain)
    assert all(message["staged"]["key"] == copy.key for message in messages)


def test_planning_out_of_time_raises_before_queueing_anything(s3: Any) -> None:
    plain = users_csv(20_000)
    ref = landed(s3, "in/users.csv", plain)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="parts")["QueueUrl"]

    with pytest.raises(OutOfTime):
        plan_file(
            s3,
            sqs,
            ref,
            route(ref.key),
            parts_queue_url=queue,
            part_bytes=PART_BYTES,
            quarantine_bucket=WORK,
            budget=Budget(Clock(calls_left=1), margin_ms=1_000),
        )

    assert not sqs.receive_message(QueueUrl=queue).get("Messages")


def test_planning_out_of_time_while_queueing_resumes_where_it_stopped(s3: Any) -> None:
    plain = users_csv(60_000)
    ref = landed(s3, "in/users.csv", plain)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="parts")["QueueUrl"]
    ranged_gets: list[str] = []
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject",
        lambda params, **_: ranged_gets.append(params["Key"]) if params.get("Range") else None,
    )

    def plan(budget: Budget | None) -> Any:
        return plan_file(
            s3,
            sqs,
            ref,
            route(ref.key),
            parts_queue_url=queue,
            part_bytes=PART_BYTES,
            quarantine_bucket=WORK,
            budget=budget,
        )

    # A full plan first, to learn how many reads (one budget check each) the scan takes.
    plan(None)
    scans = len(ranged_gets)
    sqs.purge_queue(QueueUrl=queue)
    ranged_gets.clear()
    # Time enough to scan and queue two batches of ten parts, not the rest.
    with pytest.raises(OutOfTime):
        plan(Budget(Clock(calls_left=scans + 3), margin_ms=1_000))
    assert ranged_gets  # this attempt scanned
    saved = json.loads(s3.get_object(Bucket=WORK, Key=plan_key(ref))["Body"].read())
    assert saved["queued"] == 20

    ranged_gets.clear()
    manifest = plan(None)
    assert ranged_gets == []  # the next attempt did not scan again
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        messages += [json.loads(message["Body"]) for message in batch]
    indexes = sorted(message["part"]["index"] for message in messages)
    assert indexes == list(range(manifest.parts_total))  # every part once
