"""Who landed a file (its ``uploaded-by`` metadata): validated once, then carried by every writer."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws
from pydantic import BaseModel

from pipeline import datalake
from pipeline.database import TableWriter
from pipeline.datasets import USERS
from pipeline.manifests import Manifest, describe
from pipeline.objects import LINEAGE_FIELDS, ObjectRef
from pipeline.parts import ref_from_dict, ref_to_dict
from pipeline.quarantine import RejectsWriter
from pipeline.schemas import UserRecord
from pipeline.sources import MAX_UPLOADED_BY, parse_uploaded_by, read_uploader, with_uploader
from pipeline.validation import Rejection, _plan, iter_validated_batches

LANDING, LAKE, TABLE = "test-landing", "test-lake", "test-users"
SUB = "8a4e2f5c-0b1d-4c3e-9f6a-7d2b1c0e9f8a"  # a Cognito sub: what the ingest API records
WHEN = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
REF = ObjectRef(bucket=LANDING, key="uploads/u/1/users.csv", event_time=WHEN, version_id="v1")


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (LANDING, LAKE):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3, ddb


def land(s3: Any, body: bytes, metadata: dict[str, str] | None = None, key: str = "users.csv") -> ObjectRef:
    put = s3.put_object(Bucket=LANDING, Key=key, Body=body, Metadata=metadata or {})
    return ObjectRef(
        bucket=LANDING,
        key=key,
        event_time=WHEN,
        version_id=put["VersionId"],
        etag=put["ETag"].strip('"'),
        size=len(body),
    )


# --- parsing and validating the metadata ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [SUB, "alice@example.com", "service:tracker-1", "a", "A.b_c-d:e@f", "x" * MAX_UPLOADED_BY],
)
def test_a_bounded_ascii_value_is_the_uploader(value: str) -> None:
    assert parse_uploaded_by({"uploaded-by": value}) == (value, None)


def test_no_uploaded_by_is_no_uploader_and_no_note() -> None:
    assert parse_uploaded_by({}) == (None, None)
    assert parse_uploaded_by({"upload-id": "123"}) == (None, None)


def test_the_name_is_matched_whatever_its_case() -> None:
    assert parse_uploaded_by({"Uploaded-By": SUB}) == (SUB, None)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("x" * (MAX_UPLOADED_BY + 1), "129 characters, more than 128"),
        ("alice bob", "characters other than"),
        ("a/b", "characters other than"),
        ("<script>alert(1)</script>", "characters other than"),
        ("a\nb", "characters other than"),
        ("=?UTF-8?B?w6lsaXNl?=", "characters other than"),  # how S3 returns a non-ASCII value
        ("élise", "characters other than"),
        ("a,b", "characters other than"),
    ],
)
def test_any_other_value_is_dropped_with_a_note_that_does_not_repeat_it(value: str, reason: str) -> None:
    uploaded_by, note = parse_uploaded_by({"uploaded-by": value})
    assert uploaded_by is None
    assert note is not None
    assert note.startswith("uploaded-by metadata ignored: ")
    assert reason in note
    if value:
        assert value not in note


def test_with_uploader_sets_the_facts_on_the_reference() -> None:
    assert with_uploader(REF, {"uploaded-by": SUB}) == dataclasses.replace(REF, uploaded_by=SUB)
    dropped = with_uploader(REF, {"uploaded-by": "a b"})
    assert dropped.uploaded_by is None
    assert len(dropped.lineage_notes) == 1
    assert with_uploader(REF, {}) == REF


def test_read_uploader_reads_exactly_the_announced_version(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    first = land(s3, b"user_id,email\n", {"uploaded-by": SUB})
    land(s3, b"user_id,email\n", {"uploaded-by": "someone-else"})  # a later version of the same key
    assert read_uploader(s3, first).uploaded_by == SUB


# --- the lineage every writer records -------------------------------------------------------------------


def test_lineage_has_uploaded_by_only_when_known() -> None:
    assert "uploaded_by" not in REF.lineage()
    lineage = dataclasses.replace(REF, uploaded_by=SUB).lineage()
    assert lineage["uploaded_by"] == SUB
    assert tuple(lineage) == LINEAGE_FIELDS
    # The order between versions does not depend on who uploaded them.
    assert lineage["source_order"] == REF.lineage()["source_order"]


def test_the_lake_copy_keeps_uploaded_by_beside_the_lineage(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    ref = read_uploader(s3, land(s3, b"a,b\n", {"uploaded-by": SUB, "upload-id": "abc"}))
    assert datalake.lineage_metadata(ref)["uploaded-by"] == SUB
    result = datalake.copy_to_lake(s3, ref, USERS, LAKE)
    metadata = s3.head_object(Bucket=LAKE, Key=result.lake_key)["Metadata"]
    assert metadata["uploaded-by"] == SUB
    assert metadata["source-order"] == datalake.lake_order(ref)
    assert "upload-id" not in metadata  # REPLACE: only the lineage is carried over, not the rest
    # A replay of the same version is still a no-op.
    assert datalake.copy_to_lake(s3, ref, USERS, LAKE).status == "unchanged"


def test_the_lake_copy_of_a_file_without_a_valid_uploader_has_none(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    for metadata, key in (({}, "users-1.csv"), ({"uploaded-by": "not valid!"}, "users-2.csv")):
        ref = read_uploader(s3, land(s3, b"a,b\n", metadata, key=key))
        assert "uploaded-by" not in datalake.lineage_metadata(ref)
        result = datalake.copy_to_lake(s3, ref, USERS, LAKE)
        assert "uploaded-by" not in s3.head_object(Bucket=LAKE, Key=result.lake_key)["Metadata"]


def test_metadata_stays_under_2_kb_with_the_longest_uploader_and_key() -> None:
    ref = dataclasses.replace(REF, key="ü" * 512, version_id="v" * 1024, uploaded_by="x" * MAX_UPLOADED_BY)
    metadata = datalake.lineage_metadata(ref)
    assert metadata["uploaded-by"] == ref.uploaded_by
    assert datalake.metadata_size(metadata) <= datalake.USER_METADATA_LIMIT


def items(ref: ObjectRef, body: bytes = b"user_id,email\nu1,a@example.com\nu2,b@example.com\n") -> list[Any]:
    return [
        item
        for batch in iter_validated_batches(io.BytesIO(body), schema=UserRecord, ref=ref, fmt="csv")
        for item in batch.items
    ]


def test_every_item_carries_the_uploader_or_lacks_the_attribute() -> None:
    assert [item["uploaded_by"] for item in items(dataclasses.replace(REF, uploaded_by=SUB))] == [
        {"S": SUB},
        {"S": SUB},
    ]
    assert all("uploaded_by" not in item for item in items(REF))


def test_a_schema_field_named_uploaded_by_is_refused() -> None:
    class Clash(BaseModel):
        user_id: str
        uploaded_by: str

    with pytest.raises(ValueError, match="clashes with a lineage attribute"):
        _plan(Clash)


def test_the_table_keeps_the_later_versions_uploader_and_a_replay_writes_nothing(
    aws: tuple[Any, Any],
) -> None:
    _, ddb = aws
    writer = TableWriter(ddb, TABLE, "user_id")
    v1 = dataclasses.replace(REF, version_id="v1", uploaded_by="alice")
    v2 = dataclasses.replace(REF, version_id="v2", event_time=WHEN.replace(hour=11), uploaded_by="bob")
    assert writer.write(items(v2)).written == 2
    late = writer.write(items(v1))  # the older version, delivered late
    assert (late.written, late.superseded) == (0, 2)
    held = ddb.get_item(TableName=TABLE, Key={"user_id": {"S": "u1"}}, ConsistentRead=True)["Item"]
    assert held["uploaded_by"] == {"S": "bob"}
    replay = writer.write(items(v2))
    assert (replay.written, replay.unchanged, replay.requests) == (2, 2, 0)
    # A newer version dropped without metadata replaces the item: it no longer names an uploader.
    v3 = dataclasses.replace(REF, version_id="v3", event_time=WHEN.replace(hour=12))
    assert writer.write(items(v3)).written == 2
    held = ddb.get_item(TableName=TABLE, Key={"user_id": {"S": "u1"}}, ConsistentRead=True)["Item"]
    assert "uploaded_by" not in held


def test_rejects_carry_the_uploader() -> None:
    writer = RejectsWriter(dataclasses.replace(REF, uploaded_by=SUB))
    writer.add(Rejection(2, ["email: missing"], {"user_id": "u1"}))
    writer._spool.seek(0)
    [entry] = [orjson.loads(line) for line in writer._spool.read().splitlines()]
    writer.discard()
    assert entry["uploaded_by"] == SUB


# --- parts and manifests --------------------------------------------------------------------------------


def test_a_part_message_carries_the_source_versions_facts() -> None:
    ref = dataclasses.replace(REF, uploaded_by=SUB, lineage_notes=("a note",))
    assert ref_from_dict(json.loads(json.dumps(ref_to_dict(ref)))) == ref
    dropped = dataclasses.replace(REF, lineage_notes=("uploaded-by metadata ignored: empty",))
    assert ref_from_dict(json.loads(json.dumps(ref_to_dict(dropped)))) == dropped


def test_a_part_message_queued_before_the_facts_existed_still_reads() -> None:
    raw = ref_to_dict(REF)
    del raw["uploaded_by"], raw["lineage_notes"]
    assert ref_from_dict(raw) == REF


def test_the_manifest_records_the_uploader_and_the_notes() -> None:
    manifest = describe("database", "loaded", "users", dataclasses.replace(REF, uploaded_by=SUB))
    assert (manifest.uploaded_by, manifest.lineage_notes) == (SUB, [])
    noted = describe("datalake", "loaded", "users", with_uploader(REF, {"uploaded-by": "a b"}))
    assert noted.uploaded_by is None
    assert noted.lineage_notes == [
        "uploaded-by metadata ignored: characters other than letters, digits and -_.:@"
    ]
    # A manifest written before these fields existed still reads.
    old = describe("database", "loaded", "users", REF).model_dump()
    del old["uploaded_by"], old["lineage_notes"]
    assert Manifest.model_validate(old).uploaded_by is None
