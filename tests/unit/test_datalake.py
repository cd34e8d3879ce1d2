"""Server-side copy into the partitioned lake: keys, lineage, idempotence, ordering, multipart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pipeline import datalake
from pipeline.datasets import UNCLASSIFIED, Dataset
from pipeline.objects import ObjectRef
from pipeline_toolkit import moto_compat

LANDING, LAKE = "test-landing", "test-lake"
USERS = Dataset("users", patterns=("users*.csv",))


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (LANDING, LAKE):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client


def land(s3: Any, key: str, body: bytes, when: datetime) -> ObjectRef:
    put = s3.put_object(Bucket=LANDING, Key=key, Body=body)
    return ObjectRef(
        bucket=LANDING,
        key=key,
        event_time=when,
        version_id=put["VersionId"],
        etag=put["ETag"].strip('"'),
        size=len(body),
    )


def lake_versions(s3: Any, key: str) -> list[dict[str, Any]]:
    return [
        v for v in s3.list_object_versions(Bucket=LAKE, Prefix=key).get("Versions", []) if v["Key"] == key
    ]


NOV_22 = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)


def test_lake_key_is_partitioned_by_dataset_and_event_date() -> None:
    ref = ObjectRef(bucket=LANDING, key="uploads/a b/users.csv", event_time=NOV_22)
    assert datalake.lake_key(USERS, ref) == "dataset=users/ingest_date=2026-11-22/users.csv"
    assert datalake.lake_key(UNCLASSIFIED, ref).startswith("dataset=unclassified/ingest_date=2026-11-22/")


def test_copy_carries_lineage_and_bytes(s3: Any) -> None:
    ref = land(s3, "in/users.csv", b"user_id\n1\n", NOV_22)
    result = datalake.copy_to_lake(s3, ref, USERS, LAKE)
    assert result.status == "copied"
    obj = s3.get_object(Bucket=LAKE, Key=result.lake_key)
    assert obj["Body"].read() == b"user_id\n1\n"
    assert obj["Metadata"]["source-key"] == "in/users.csv"
    assert obj["Metadata"]["source-version"] == ref.version_id
    assert obj["Metadata"]["source-bucket"] == LANDING
    assert obj["Metadata"]["source-etag"] == ref.etag
    assert obj["Metadata"]["source-event-time"] == "2026-11-22T23:59:59.000000Z"


def test_replaying_the_same_version_is_a_no_op(s3: Any) -> None:
    ref = land(s3, "users.csv", b"a\n", NOV_22)
    first = datalake.copy_to_lake(s3, ref, USERS, LAKE)
    second = datalake.copy_to_lake(s3, ref, USERS, LAKE)
    assert second == datalake.CopyResult(first.lake_key, "unchanged")
    assert len(lake_versions(s3, first.lake_key)) == 1


def test_older_version_never_overwrites_a_newer_one(s3: Any) -> None:
    old = land(s3, "users.csv", b"old\n", NOV_22.replace(hour=8))
    new = land(s3, "users.csv", b"new\n", NOV_22.replace(hour=9))
    assert datalake.copy_to_lake(s3, new, USERS, LAKE).status == "copied"
    late = datalake.copy_to_lake(s3, old, USERS, LAKE)
    assert late.status == "superseded"
    assert s3.get_object(Bucket=LAKE, Key=late.lake_key)["Body"].read() == b"new\n"


def test_copies_the_announced_version_not_the_latest(s3: Any) -> None:
    first = land(s3, "users.csv", b"first\n", NOV_22.replace(hour=8))
    land(s3, "users.csv", b"second\n", NOV_22.replace(hour=9))
    result = datalake.copy_to_lake(s3, first, USERS, LAKE)
    assert s3.get_object(Bucket=LAKE, Key=result.lake_key)["Body"].read() == b"first\n"


def test_unicode_key_lineage_is_ascii_safe(s3: Any) -> None:
    ref = land(s3, "café/用户 users.csv", b"x\n", NOV_22)
    result = datalake.copy_to_lake(s3, ref, USERS, LAKE)
    assert result.lake_key.endswith("/用户 users.csv")
    meta = s3.head_object(Bucket=LAKE, Key=result.lake_key)["Metadata"]
    assert meta["source-key"] == "caf%C3%A9/%E7%94%A8%E6%88%B7 users.csv"


def test_large_objects_use_multipart_upload_part_copy(s3: Any) -> None:
    body = bytes(range(256)) * (11 * 1024 * 1024 // 256)  # 11 MiB
    ref = land(s3, "users.csv", body, NOV_22)
    # Same code path as above 5 GiB, with the threshold lowered so the test stays small.
    config = datalake.transfer_config(ref.size, threshold=5 * 1024 * 1024, min_part=5 * 1024 * 1024)
    result = datalake.copy_to_lake(s3, ref, USERS, LAKE, config=config)
    head = s3.head_object(Bucket=LAKE, Key=result.lake_key)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts
    assert head["Metadata"]["source-version"] == ref.version_id
    assert s3.get_object(Bucket=LAKE, Key=result.lake_key)["Body"].read() == body


def test_part_size_keeps_huge_copies_under_ten_thousand_parts() -> None:
    five_tib = 5 * 1024**4
    config = datalake.transfer_config(five_tib)
    assert config.multipart_threshold == 5 * 1024**3
    assert five_tib / config.multipart_chunksize <= 10_000
    assert datalake.transfer_config(6 * 1024**3).multipart_chunksize == 256 * 1024**2


def test_an_older_version_that_lost_the_race_never_overwrites_the_newer(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both deliveries read "empty" before either copies; the newer copies first; the older's conditional copy
    is refused (412), it reads again, and leaves the newer in place."""
    moto_compat.apply()  # moto ignores If-None-Match / If-Match on CopyObject without it
    older = land(s3, "in/users.csv", b"user_id\n1\n", NOV_22)
    newer = land(
        s3, "in/users.csv", b"user_id\n2\n", NOV_22.replace(hour=23, minute=59, second=59, microsecond=1)
    )
    reads = iter([(None, None)])
    real = datalake._existing
    monkeypatch.setattr(datalake, "_existing", lambda *args: next(reads, None) or real(*args))

    assert datalake.copy_to_lake(s3, newer, USERS, LAKE).status == "copied"
    reads = iter([(None, None)])  # the older delivery read the key before the newer was written
    assert datalake.copy_to_lake(s3, older, USERS, LAKE).status == "superseded"
    key = datalake.lake_key(USERS, newer)
    assert s3.get_object(Bucket=LAKE, Key=key)["Body"].read() == b"user_id\n2\n"
    assert len(lake_versions(s3, key)) == 1


def test_a_newer_version_replaces_an_older_only_if_it_is_still_there(s3: Any) -> None:
    moto_compat.apply()
    older = land(s3, "in/users.csv", b"user_id\n1\n", NOV_22)
    datalake.copy_to_lake(s3, older, USERS, LAKE)
    newer = land(s3, "in/users.csv", b"user_id\n2\n", NOV_22.replace(microsecond=5))
    assert datalake.copy_to_lake(s3, newer, USERS, LAKE).status == "copied"
    with pytest.raises(ClientError, match=r"PreconditionFailed|412"):
        s3.copy_object(
            CopySource={"Bucket": LANDING, "Key": "in/users.csv", "VersionId": older.version_id},
            Bucket=LAKE,
            Key=datalake.lake_key(USERS, older),
            IfMatch='"not-the-etag"',
        )
