"""Server-side copy into the partitioned lake: keys, lineage, idempotence, ordering, multipart."""

from __future__ import annotations

import hashlib
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


# S3's limits (AWS refuses beyond them; the stricter emulator of pipeline_toolkit.moto_compat does too): a key
# of 1,024 UTF-8 bytes, user metadata of 2 KB. A CJK character is 3 bytes, 9 once percent-encoded.
CJK = "用户数据"
LONG_KEYS = {
    "ascii, 1,024 bytes in folders": "/".join(["f" * 99] * 9) + "/" + "u" * 114 + "/users.csv",
    "ascii, 1,024 bytes of file name": "users-" + "x" * 1014 + ".csv",
    "cjk, 1,024 bytes": "in/" + CJK * 84 + "/users-yy.csv",
    "cjk file name, 1,024 bytes": "users-" + CJK * 84 + "abc.csv.gz",
}


def test_the_long_keys_are_as_long_as_s3_allows() -> None:
    assert {len(key.encode()) for key in LONG_KEYS.values()} == {1024}


@pytest.mark.parametrize("key", LONG_KEYS.values(), ids=LONG_KEYS.keys())
def test_a_key_as_long_as_s3_allows_is_copied_with_bounded_lineage(s3: Any, key: str) -> None:
    moto_compat.apply()  # refuses keys over 1,024 bytes and metadata over 2 KB, as AWS does
    ref = land(s3, key, b"user_id\n1\n", NOV_22)
    result = datalake.copy_to_lake(s3, ref, USERS, LAKE)

    assert result.status == "copied"
    assert len(result.lake_key.encode()) <= 1024
    meta = s3.head_object(Bucket=LAKE, Key=result.lake_key)["Metadata"]
    assert datalake.metadata_size(meta) <= datalake.USER_METADATA_LIMIT
    assert meta["source-key-sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert meta["source-version"] == ref.version_id
    assert meta["source-event-time"] == "2026-11-22T23:59:59.000000Z"
    if key.isascii():
        assert meta["source-key"] == key  # fits: 1,024 bytes leave 1 KB for the rest
    else:
        assert "source-key" not in meta  # 3 KB once percent-encoded: the manifest has it
    assert datalake.copy_to_lake(s3, ref, USERS, LAKE).status == "unchanged"


def test_the_former_metadata_of_a_cjk_key_is_refused_like_aws_refuses_it(s3: Any) -> None:
    """What the copy used to write (every lineage field, so the key twice, percent-encoded) is over 2 KB for
    a key of about a hundred CJK characters; what it writes now holds the key once, and fits."""
    moto_compat.apply()
    key = "in/" + CJK * 28 + ".csv"  # 112 CJK characters, 343 bytes
    ref = land(s3, key, b"x\n", NOV_22)
    former = {name.replace("_", "-"): datalake._ascii(value) for name, value in ref.lineage().items()}
    former["source-etag"] = ref.etag or ""
    with pytest.raises(ClientError, match="MetadataTooLarge"):
        s3.copy_object(
            CopySource={"Bucket": LANDING, "Key": key, "VersionId": ref.version_id},
            Bucket=LAKE,
            Key="former",
            Metadata=former,
            MetadataDirective="REPLACE",
        )
    now = datalake.lineage_metadata(ref)
    assert datalake.metadata_size(now) <= datalake.USER_METADATA_LIMIT
    assert now["source-key"] == former["source-key"]
    assert datalake.copy_to_lake(s3, ref, USERS, LAKE).status == "copied"


def test_the_later_event_wins_for_long_unicode_keys_too(s3: Any) -> None:
    moto_compat.apply()
    key = LONG_KEYS["cjk file name, 1,024 bytes"]
    old = land(s3, key, b"old\n", NOV_22.replace(hour=8))
    new = land(s3, key, b"new\n", NOV_22.replace(hour=9))
    assert datalake.copy_to_lake(s3, new, USERS, LAKE).status == "copied"
    late = datalake.copy_to_lake(s3, old, USERS, LAKE)
    assert late.status == "superseded"
    assert s3.get_object(Bucket=LAKE, Key=late.lake_key)["Body"].read() == b"new\n"
    assert datalake.copy_to_lake(s3, new, USERS, LAKE).status == "unchanged"


def test_the_order_token_sorts_by_event_time_and_tells_versions_apart() -> None:
    early = ObjectRef(bucket=LANDING, key="z" * 900, event_time=NOV_22.replace(hour=1), version_id="b")
    late = ObjectRef(bucket=LANDING, key="a", event_time=NOV_22.replace(hour=2), version_id="a")
    assert datalake.lake_order(early) < datalake.lake_order(late)
    other = ObjectRef(bucket=LANDING, key="z" * 900, event_time=NOV_22.replace(hour=1), version_id="c")
    assert datalake.lake_order(other) != datalake.lake_order(early)
    assert len(datalake.lake_order(early)) == len(datalake.lake_order(late)) == 27 + 1 + 64


def test_metadata_stays_under_2_kb_with_the_longest_version_id_s3_may_give() -> None:
    ref = ObjectRef(
        bucket="b" * 63, key=CJK * 85, event_time=NOV_22, version_id="v" * 1024, etag="e" * 34 + "-10000"
    )
    assert datalake.metadata_size(datalake.lineage_metadata(ref)) <= datalake.USER_METADATA_LIMIT


def test_a_file_name_too_long_for_its_partition_keeps_its_extensions_and_stays_distinct() -> None:
    long_name = LONG_KEYS["ascii, 1,024 bytes of file name"]
    twin = long_name.replace("x", "z", 1)
    keys = [
        datalake.lake_key(USERS, ObjectRef(bucket=LANDING, key=name, event_time=NOV_22))
        for name in (long_name, twin, LONG_KEYS["cjk file name, 1,024 bytes"])
    ]
    assert all(len(key.encode()) <= 1024 for key in keys)
    assert keys[0] != keys[1]
    assert keys[0].startswith("dataset=users/ingest_date=2026-11-22/users-xxx")
    assert keys[0].endswith(".csv")
    assert keys[2].endswith(".csv.gz")
    # Short names are left alone.
    short = ObjectRef(bucket=LANDING, key="a/users.csv", event_time=NOV_22)
    assert datalake.lake_key(USERS, short) == "dataset=users/ingest_date=2026-11-22/users.csv"
