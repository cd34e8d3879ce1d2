"""A part that runs out of time resumes after the records it had done; its counts and rejects stay exact."""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from pipeline.budget import Budget, OutOfTime
from pipeline.curated import curated_key
from pipeline.database import TableWriter
from pipeline.datasets import route
from pipeline.objects import ObjectRef
from pipeline.parts import checkpoint_key, finish, load_part, result_key
from pipeline.splits import plan_parts

LANDING, WORK, TABLE, LAKE = "landing", "quarantine", "users", "lake"
ROWS = 2_000
BAD_EVERY = 97  # an invalid email every 97th record: rejects on both sides of the interruption


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (LANDING, WORK):
            s3.create_bucket(Bucket=bucket)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3, ddb


class Checks:
    """A Lambda context with plenty of time for ``checks`` questions about it, then none. A paced load asks
    twice per batch: for the batch's size, then whether to write it."""

    def __init__(self, checks: int) -> None:
        self.left = checks

    def get_remaining_time_in_millis(self) -> int:
        self.left -= 1
        return 600_000 if self.left >= 0 else 0


def users_csv() -> bytes:
    lines = ["user_id,email,age"]
    for n in range(ROWS):
        email = "not-an-email" if n % BAD_EVERY == 0 else f"u{n}@example.com"
        lines.append(f'u{n},{email},"{20 + n % 60}"')
    return ("\n".join(lines) + "\n").encode()


def landed_in_one_part(s3: Any) -> tuple[ObjectRef, Any, Any]:
    """:func:`users_csv` landed, its dataset, and the one part it is planned into."""
    body = users_csv()
    s3.put_object(Bucket=LANDING, Key="in/users.csv", Body=body)
    ref = ObjectRef(
        bucket=LANDING, key="in/users.csv", event_time=datetime(2026, 1, 2, tzinfo=UTC), size=len(body)
    )
    [part] = plan_parts(lambda start, end: body[start:end], len(body), "csv", len(body) + 1)
    return ref, route(ref.key), part


def test_a_part_out_of_time_resumes_after_what_it_had_done(aws: tuple[Any, Any]) -> None:
    s3, ddb = aws
    ref, dataset, part = landed_in_one_part(s3)
    writer = TableWriter(ddb, TABLE, "user_id")
    items_written: list[int] = []

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "BatchWriteItem":
            items_written.append(sum(len(requests) for requests in params["RequestItems"].values()))
        elif model.name in {"TransactWriteItems", "PutItem"}:
            items_written.append(len(params.get("TransactItems", [])) or 1)

    ddb.meta.events.register("before-parameter-build.dynamodb", count)

    # Three batches of 250 fit (six questions), then time is up before the fourth is written.
    with pytest.raises(OutOfTime):
        load_part(
            s3, writer, ref, dataset, part, quarantine_bucket=WORK, batch_size=250, budget=Budget(Checks(7))
        )
    checkpoint = json.loads(s3.get_object(Bucket=WORK, Key=checkpoint_key(ref, 0))["Body"].read())
    assert (checkpoint["records_read"], checkpoint["attempts"]) == (750, 1)
    first_attempt = sum(items_written)
    assert first_attempt == 750 - len(range(0, 750, BAD_EVERY))

    assert load_part(s3, writer, ref, dataset, part, quarantine_bucket=WORK, batch_size=250)

    # The second attempt wrote only the records after the checkpoint: each valid record written once.
    rejected = len(range(0, ROWS, BAD_EVERY))
    assert sum(items_written) == ROWS - rejected
    result = json.loads(s3.get_object(Bucket=WORK, Key=result_key(ref, 0))["Body"].read())
    assert (result["records_read"], result["records_loaded"], result["records_rejected"]) == (
        ROWS,
        ROWS - rejected,
        rejected,
    )
    manifest = finish(s3, ref, dataset, part, quarantine_bucket=WORK)
    assert manifest.status == "partial"
    assert manifest.records_loaded == ROWS - rejected
    # Rejects from both attempts, each once, with the file's own line numbers (header = line 1).
    rejects: list[dict[str, Any]] = []
    for key in sorted(o["Key"] for o in s3.list_objects_v2(Bucket=WORK, Prefix="rejects/")["Contents"]):
        rejects += [
            json.loads(line) for line in s3.get_object(Bucket=WORK, Key=key)["Body"].read().splitlines()
        ]
    assert sorted(r["line"] for r in rejects) == [n + 2 for n in range(0, ROWS, BAD_EVERY)]
    assert ddb.scan(TableName=TABLE, Select="COUNT")["Count"] == ROWS - rejected


def test_finish_lists_until_the_last_part_then_adds_up_every_result(aws: tuple[Any, Any]) -> None:
    s3, ddb = aws
    body = users_csv()
    s3.put_object(Bucket=LANDING, Key="in/users.csv", Body=body)
    ref = ObjectRef(
        bucket=LANDING, key="in/users.csv", event_time=datetime(2026, 1, 2, tzinfo=UTC), size=len(body)
    )
    dataset = route(ref.key)
    parts = plan_parts(lambda start, end: body[start:end], len(body), "csv", len(body) // 4)
    assert len(parts) >= 3
    writer = TableWriter(ddb, TABLE, "user_id")
    gets: list[str] = []
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: gets.append(params["Key"])
    )

    for done, part in enumerate(parts[:-1], 1):
        load_part(s3, writer, ref, dataset, part, quarantine_bucket=WORK, batch_size=250)
        gets.clear()
        manifest = finish(s3, ref, dataset, part, quarantine_bucket=WORK)
        assert (manifest.status, manifest.parts_done, manifest.parts_total) == (
            "in_progress",
            done,
            len(parts),
        )
        assert gets == []  # listed, not read

    load_part(s3, writer, ref, dataset, parts[-1], quarantine_bucket=WORK, batch_size=250)
    manifest = finish(s3, ref, dataset, parts[-1], quarantine_bucket=WORK)

    rejected = len(range(0, ROWS, BAD_EVERY))
    assert (manifest.status, manifest.parts_done) == ("partial", len(parts))
    assert (manifest.records_read, manifest.records_loaded, manifest.records_rejected) == (
        ROWS,
        ROWS - rejected,
        rejected,
    )
    assert [error.line for error in manifest.first_errors] == [n + 2 for n in range(0, ROWS, BAD_EVERY)][:10]


class RefusedMidBatch(TableWriter):
    """Writes half of its ``refuse_at``-th batch, then raises OutOfTime, as a refused retry would."""

    refuse_at = 4
    batches = 0

    def write(self, items: Any) -> Any:
        self.batches += 1
        if self.batches == self.refuse_at:
            super().write(items[: len(items) // 2])
            raise OutOfTime("no time for a retry")
        return super().write(items)


def test_a_retry_refused_mid_batch_leaves_that_batch_to_the_next_attempt(aws: tuple[Any, Any]) -> None:
    s3, ddb = aws
    ref, dataset, part = landed_in_one_part(s3)
    writer = RefusedMidBatch(ddb, TABLE, "user_id")

    with pytest.raises(OutOfTime):
        load_part(s3, writer, ref, dataset, part, quarantine_bucket=WORK, batch_size=250)
    checkpoint = json.loads(s3.get_object(Bucket=WORK, Key=checkpoint_key(ref, 0))["Body"].read())
    # The half-written fourth batch is not counted: the next attempt reads it again.
    assert checkpoint["records_read"] == 750

    assert load_part(s3, writer, ref, dataset, part, quarantine_bucket=WORK, batch_size=250)
    rejected = len(range(0, ROWS, BAD_EVERY))
    result = json.loads(s3.get_object(Bucket=WORK, Key=result_key(ref, 0))["Body"].read())
    # Exact counts although half a batch was written twice (the second time as "unchanged", no write).
    assert (result["records_read"], result["records_loaded"], result["records_rejected"]) == (
        ROWS,
        ROWS - rejected,
        rejected,
    )
    assert ddb.scan(TableName=TABLE, Select="COUNT")["Count"] == ROWS - rejected


def test_a_resumed_part_curates_each_valid_record_once_and_a_rerun_overwrites(aws: tuple[Any, Any]) -> None:
    s3, ddb = aws
    s3.create_bucket(Bucket=LAKE)
    ref, dataset, part = landed_in_one_part(s3)
    writer = TableWriter(ddb, TABLE, "user_id")
    load = functools.partial(
        load_part, s3, writer, ref, dataset, part, quarantine_bucket=WORK, batch_size=250, curated_bucket=LAKE
    )

    with pytest.raises(OutOfTime):
        load(budget=Budget(Checks(7)))  # three batches of 250 written, then out of time
    # The records written before the stop are curated already, under the part's start (0).
    assert curated_lines(s3) == {curated_key(dataset, ref, unit="part-0", start=0): 750 - 8}
    assert load()  # resumes after the checkpoint: a continuation object from record 750
    valid = ROWS - len(range(0, ROWS, BAD_EVERY))
    objects = curated_lines(s3)
    assert objects == {
        curated_key(dataset, ref, unit="part-0", start=0): 750 - 8,
        curated_key(dataset, ref, unit="part-0", start=750): valid - (750 - 8),
    }
    lines = [line for key in objects for line in read_curated(s3, key).column("source_line").to_pylist()]
    assert sorted(lines) == [n + 2 for n in range(ROWS) if n % BAD_EVERY]  # each valid record once

    # The part again from the start (its result and checkpoint gone): the start-0 object is overwritten with
    # every record, no third object. The continuation's rows are then twice in the zone, with equal order:
    # the merge view keeps one of them, as it does for a key given twice in one file.
    for key in (result_key(ref, 0), checkpoint_key(ref, 0)):
        s3.delete_object(Bucket=WORK, Key=key)
    assert load()
    assert curated_lines(s3) == {
        curated_key(dataset, ref, unit="part-0", start=0): valid,
        curated_key(dataset, ref, unit="part-0", start=750): valid - (750 - 8),
    }


def curated_lines(s3: Any) -> dict[str, int]:
    listed = s3.list_objects_v2(Bucket=LAKE, Prefix="curated/").get("Contents", [])
    return {o["Key"]: read_curated(s3, o["Key"]).num_rows for o in listed}


def read_curated(s3: Any, key: str) -> Any:
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=LAKE, Key=key)["Body"].read()))


def test_a_retry_refused_mid_batch_curates_that_batch_once(aws: tuple[Any, Any]) -> None:
    """The table is written before the curated zone gets a batch: a batch left to the next attempt is
    curated by that attempt (its continuation object) only."""
    s3, ddb = aws
    s3.create_bucket(Bucket=LAKE)
    ref, dataset, part = landed_in_one_part(s3)
    writer = RefusedMidBatch(ddb, TABLE, "user_id")
    load = functools.partial(
        load_part, s3, writer, ref, dataset, part, quarantine_bucket=WORK, batch_size=250, curated_bucket=LAKE
    )
    with pytest.raises(OutOfTime):
        load()
    assert load()
    lines = [
        line for key in curated_lines(s3) for line in read_curated(s3, key).column("source_line").to_pylist()
    ]
    assert sorted(lines) == [n + 2 for n in range(ROWS) if n % BAD_EVERY]
