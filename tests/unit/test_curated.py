"""The curated writer: one Parquet object per unit of work, its schema, name, bytes and bounds."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from pipeline import curated
from pipeline.curated import CuratedWriter, arrow_schema, curated_key
from pipeline.database import WriteResult
from pipeline.datasets import EVENTS, USERS, Dataset
from pipeline.loader import load_stream
from pipeline.objects import ObjectRef
from pipeline.validation import Item, iter_validated_batches

LAKE = "lake"
REF = ObjectRef(
    bucket="landing",
    key="in/users.csv",
    event_time=datetime(2026, 3, 4, 23, 59, 58, 123456, tzinfo=UTC),
    version_id="v1",
)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=LAKE)
        yield client


def users_csv(rows: int, start: int = 0) -> bytes:
    lines = ["user_id,first_name,last_name,email,gender,age"]
    lines += [f"u{n},First{n},Last{n},u{n}@example.com,x,{n % 100}" for n in range(start, start + rows)]
    return ("\n".join(lines) + "\n").encode()


def items_of(body: bytes, dataset: Dataset = USERS, ref: ObjectRef = REF, batch: int = 1000) -> list[Item]:
    assert dataset.schema is not None
    fmt = "jsonl" if dataset is EVENTS else "csv"
    return [
        item
        for validated in iter_validated_batches(
            io.BytesIO(body), schema=dataset.schema, ref=ref, fmt=fmt, batch_size=batch
        )
        for item in validated.items
    ]


def write(
    s3: Any, items: list[Item], *, chunk: int = 1000, dataset: Dataset = USERS, **kw: Any
) -> str | None:
    writer = CuratedWriter(dataset, kw.pop("ref", REF), **kw)
    for start in range(0, len(items), chunk):
        writer.add(items[start : start + chunk])
    return writer.upload(s3, LAKE)


def read(s3: Any, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=LAKE, Key=key)["Body"].read()))


def test_users_schema_is_the_declared_columns_then_lineage() -> None:
    schema = arrow_schema(USERS)
    assert [(f.name, str(f.type)) for f in schema] == [
        ("user_id", "string"),
        ("first_name", "string"),
        ("last_name", "string"),
        ("email", "string"),
        ("gender", "string"),
        ("age", "int32"),
        ("source_key", "string"),
        ("source_version", "string"),
        ("source_order", "string"),
        ("source_line", "int64"),
        ("event_time", "timestamp[ms, tz=UTC]"),
        ("uploaded_by", "string"),  # who landed the file; null when not known
        # What the users enrichment adds (pipeline.enrichment): the writer takes them from its declaration.
        ("email_domain", "string"),
        ("age_band", "string"),
        ("email_provider", "string"),
        ("enricher_version", "string"),
    ]


def test_events_schema() -> None:
    names = [(f.name, str(f.type)) for f in arrow_schema(EVENTS)]
    assert names[:5] == [
        ("event_id", "string"),
        ("user_id", "string"),
        ("event_type", "string"),
        ("occurred_at", "timestamp[ms, tz=UTC]"),
        ("properties", "string"),
    ]
    assert [name for name, _ in names[5:]] == [name for name, _ in curated.LINEAGE_COLUMNS]  # no enrichment


def test_an_unknown_column_type_is_refused() -> None:
    odd = Dataset(
        "odd",
        patterns=("odd*.csv",),
        schema=USERS.schema,
        key_field="user_id",
        columns=(("user_id", "uuid"),),
    )
    with pytest.raises(ValueError, match="unknown curated column type"):
        arrow_schema(odd)


# These items come straight from validation: the enrichment's columns are there, null.
NOT_ENRICHED = dict.fromkeys(("email_domain", "age_band", "email_provider", "enricher_version"))


def test_rows_types_and_lineage(s3: Any) -> None:
    body = b"user_id,email,age,first_name\nu1,A@Example.com,42,Ada\nu2,b@example.com,,\n"
    key = write(s3, items_of(body))
    assert key is not None
    table = read(s3, key)
    assert table.schema == arrow_schema(USERS)
    assert table.to_pylist() == [
        {
            "user_id": "u1",
            "first_name": "Ada",
            "last_name": None,
            "email": "a@example.com",
            "gender": None,
            "age": 42,
            "source_key": "in/users.csv",
            "source_version": "v1",
            "source_order": REF.order_token,
            "source_line": 2,
            "event_time": datetime(2026, 3, 4, 23, 59, 58, 123000, tzinfo=UTC),
            "uploaded_by": None,  # REF has no uploader
            **NOT_ENRICHED,
        },
        {
            "user_id": "u2",
            "first_name": None,
            "last_name": None,
            "email": "b@example.com",
            "gender": None,
            "age": None,
            "source_key": "in/users.csv",
            "source_version": "v1",
            "source_order": REF.order_token,
            "source_line": 3,
            "event_time": datetime(2026, 3, 4, 23, 59, 58, 123000, tzinfo=UTC),
            "uploaded_by": None,  # REF has no uploader
            **NOT_ENRICHED,
        },
    ]


def test_every_row_names_the_files_uploader_and_the_name_stays_the_same(s3: Any) -> None:
    body = b"user_id,email\nu1,a@example.com\nu2,b@example.com\n"
    ref = dataclasses.replace(REF, uploaded_by="3f1c-sub")
    key = write(s3, items_of(body, ref=ref), ref=ref)
    assert key == curated_key(USERS, REF)  # the uploader is a column, not part of the object's identity
    table = read(s3, key)
    assert table.schema.field("uploaded_by").type == pa.string()
    assert table.column("uploaded_by").to_pylist() == ["3f1c-sub", "3f1c-sub"]


def test_the_key_is_partitioned_by_event_date_and_names_the_unit() -> None:
    key = curated_key(USERS, REF)
    assert key.startswith("curated/dataset=users/ingest_date=2026-03-04/")
    assert key.endswith(".parquet")
    assert key == curated_key(USERS, REF, unit="whole", start=0)  # deterministic
    others = {
        curated_key(USERS, REF, unit="part-0"),
        curated_key(USERS, REF, unit="part-1"),
        curated_key(USERS, REF, unit="part-1", start=500),
        curated_key(USERS, ObjectRef(**{**_fields(REF), "version_id": "v2"})),
        curated_key(USERS, ObjectRef(**{**_fields(REF), "key": "in/users2.csv"})),
    }
    assert len(others | {key}) == 6


def test_a_key_as_long_as_s3_allows_still_gives_a_short_name() -> None:
    long_ref = ObjectRef(**{**_fields(REF), "key": "ü" * 512})
    assert len(curated_key(USERS, long_ref).encode()) < 120


def _fields(ref: ObjectRef) -> dict[str, Any]:
    return {name: getattr(ref, name) for name in ref.__slots__}  # type: ignore[attr-defined]


def test_a_rerun_writes_identical_bytes_whatever_the_batch_sizes(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curated, "ROW_GROUP_ROWS", 1000)  # several row groups, cut across batches
    items = items_of(users_csv(3500))
    key = write(s3, items, chunk=1000)
    assert key is not None
    first = s3.get_object(Bucket=LAKE, Key=key)["Body"].read()
    assert write(s3, items, chunk=333) == key
    second = s3.get_object(Bucket=LAKE, Key=key)["Body"].read()
    assert first == second
    metadata = pq.ParquetFile(io.BytesIO(first)).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [1000, 1000, 1000, 500]


def test_zero_valid_records_write_no_object(s3: Any) -> None:
    writer = CuratedWriter(USERS, REF)
    writer.add([])
    assert writer.upload(s3, LAKE) is None
    assert s3.list_objects_v2(Bucket=LAKE).get("KeyCount", 0) == 0


def test_unicode_survives(s3: Any) -> None:
    body = "user_id,email,first_name,last_name\nü-1,zoë@example.com,Zoë,Ølsen 東京\n".encode()
    ref = ObjectRef(**{**_fields(REF), "key": "in/ユーザー/users.csv"})
    key = write(s3, items_of(body, ref=ref), ref=ref)
    assert key is not None
    [row] = read(s3, key).to_pylist()
    assert (row["user_id"], row["first_name"], row["last_name"]) == ("ü-1", "Zoë", "Ølsen 東京")
    assert row["source_key"] == "in/ユーザー/users.csv"


def test_events_timestamps_in_utc_and_properties_as_compact_json(s3: Any) -> None:
    body = (
        b'{"event_id": "e-1", "type": "click", "timestamp": "2024-05-01T12:00:05.250+02:00",'
        b' "properties": {"target": "signup", "n": [1, 2]}}\n'
        b'{"event_id": 7, "event_type": "view", "occurred_at": "2024-05-01T10:00:00Z"}\n'
    )
    ref = ObjectRef(**{**_fields(REF), "key": "in/events.jsonl"})
    key = write(s3, items_of(body, EVENTS, ref), dataset=EVENTS, ref=ref)
    assert key is not None
    assert key.startswith("curated/dataset=events/ingest_date=2026-03-04/")
    rows = read(s3, key).to_pylist()
    assert [(r["event_id"], r["user_id"], r["event_type"]) for r in rows] == [
        ("e-1", None, "click"),
        ("7", None, "view"),
    ]
    assert rows[0]["occurred_at"] == datetime(2024, 5, 1, 10, 0, 5, 250000, tzinfo=UTC)
    assert rows[0]["properties"] == '{"target":"signup","n":[1,2]}'
    assert orjson.loads(rows[1]["properties"]) == {}


def test_a_big_part_is_held_as_row_groups_spilled_to_a_temporary_file(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curated, "ROW_GROUP_ROWS", 2000)
    monkeypatch.setattr(curated, "SPOOL_IN_MEMORY", 64 * 1024)
    writer = CuratedWriter(USERS, REF)
    written = 0
    for start in range(0, 20_000, 1000):
        writer.add(items_of(users_csv(1000, start)))
        written += 1000
        # Never more than one row group's rows waiting in memory as Arrow; the rest is in the spool.
        assert writer._pending_rows < 2000
    assert writer._spool._rolled  # type: ignore[attr-defined]  # past SPOOL_IN_MEMORY: on disk, not in memory
    key = writer.upload(s3, LAKE)
    assert key is not None
    table = read(s3, key)
    assert table.num_rows == written
    assert table.column("user_id").to_pylist()[-1] == "u19999"


class FailingTable:
    """A table writer whose second batch fails, as a throttled or dying write would."""

    def __init__(self) -> None:
        self.batches = 0

    def write(self, items: list[Item]) -> WriteResult:
        self.batches += 1
        if self.batches == 2:
            raise RuntimeError("the table went away")
        return WriteResult(written=len(items))


class WorkingTable:
    def write(self, items: list[Item]) -> WriteResult:
        return WriteResult(written=len(items))


def test_a_unit_that_fails_part_way_leaves_no_curated_object(s3: Any) -> None:
    s3.create_bucket(Bucket="quarantine")
    with pytest.raises(RuntimeError, match="the table went away"):
        load_stream(
            s3,
            FailingTable(),  # type: ignore[arg-type]
            REF,
            USERS,
            io.BytesIO(users_csv(300)),
            quarantine_bucket="quarantine",
            curated_bucket=LAKE,
            batch_size=100,
        )
    # The first batch was curated in the spool only: nothing is uploaded until the unit is complete.
    assert s3.list_objects_v2(Bucket=LAKE).get("KeyCount", 0) == 0
    manifest = load_stream(
        s3,
        WorkingTable(),  # type: ignore[arg-type]
        REF,
        USERS,
        io.BytesIO(users_csv(300)),
        quarantine_bucket="quarantine",
        curated_bucket=LAKE,
        batch_size=100,
    )
    assert manifest.records_loaded == 300
    [listed] = s3.list_objects_v2(Bucket=LAKE)["Contents"]
    assert read(s3, listed["Key"]).num_rows == 300
