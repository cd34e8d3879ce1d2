"""The DynamoDB writer: batching, UnprocessedItems retries, duplicates, and 'the later event wins'."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline.database import TableWriter, WriteError, collapse_duplicates

TABLE = "test-users"


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def item(user: str, order: str, name: str = "Ada", line: int = 2) -> dict[str, Any]:
    return {
        "user_id": {"S": user},
        "first_name": {"S": name},
        "line": {"N": str(line)},
        "source_order": {"S": order},
    }


def scan(client: Any) -> dict[str, dict[str, Any]]:
    items = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {i["user_id"]["S"]: i for i in items}


class FlakyBatchWrites:
    """Wraps a client so BatchWriteItem leaves part of each request unprocessed the first `times` calls."""

    def __init__(self, client: Any, times: int, keep: int = 5) -> None:
        self._client = client
        self._times = times
        self._keep = keep
        self.batch_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803 - boto3 name
        self.batch_calls += 1
        requests = RequestItems[TABLE]
        if self._times > 0 and len(requests) > self._keep:
            self._times -= 1
            if self._keep:
                self._client.batch_write_item(RequestItems={TABLE: requests[: self._keep]})
            return {"UnprocessedItems": {TABLE: requests[self._keep :]}}
        return dict(self._client.batch_write_item(RequestItems=RequestItems))


def test_writes_many_items_in_chunks(ddb: Any) -> None:
    writer = TableWriter(ddb, TABLE, "user_id", threads=3)
    result = writer.write([item(f"u{i:03}", "t1") for i in range(260)])
    assert result.written == 260
    assert len(scan(ddb)) == 260


def test_unprocessed_items_are_retried_until_written(ddb: Any) -> None:
    flaky = FlakyBatchWrites(ddb, times=3)
    sleeps: list[float] = []
    writer = TableWriter(flaky, TABLE, "user_id", threads=1, sleep=sleeps.append)  # type: ignore[arg-type]
    result = writer.write([item(f"u{i:02}", "t1") for i in range(25)])
    assert result.written == 25
    assert len(scan(ddb)) == 25
    assert flaky.batch_calls == 4
    assert len(sleeps) == 3


def test_gives_up_with_a_clear_error_when_dynamodb_never_catches_up(ddb: Any) -> None:
    flaky = FlakyBatchWrites(ddb, times=1000, keep=0)
    writer = TableWriter(flaky, TABLE, "user_id", threads=1, max_attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(WriteError, match="items still unprocessed after 3 BatchWriteItem attempts"):
        writer.write([item("u1", "t1")])


def test_replay_leaves_the_table_identical(ddb: Any) -> None:
    writer = TableWriter(ddb, TABLE, "user_id")
    batch = [item(f"u{i}", "2026-11-22T08|users.csv|v1") for i in range(30)]
    writer.write(batch)
    before = scan(ddb)
    again = writer.write(batch)
    assert again.written == 30
    assert scan(ddb) == before


def test_later_event_wins_whatever_the_arrival_order(ddb: Any) -> None:
    writer = TableWriter(ddb, TABLE, "user_id")
    newer = "2026-11-22T09:00:00.000000Z|b.csv|v2"
    older = "2026-11-22T08:00:00.000000Z|a.csv|v1"
    assert writer.write([item("u1", newer, name="New")]).written == 1
    late = writer.write([item("u1", older, name="Old"), item("u2", older, name="Only")])
    assert (late.written, late.superseded) == (1, 1)
    table = scan(ddb)
    assert table["u1"]["first_name"]["S"] == "New"
    assert table["u2"]["first_name"]["S"] == "Only"


def test_newer_file_updates_existing_rows(ddb: Any) -> None:
    writer = TableWriter(ddb, TABLE, "user_id")
    writer.write([item("u1", "2026-11-22T08|a|v1", name="Old")])
    assert writer.write([item("u1", "2026-11-22T09|a|v2", name="New")]).written == 1
    assert scan(ddb)["u1"]["first_name"]["S"] == "New"


def test_conditional_write_refuses_an_older_version_that_raced_in(ddb: Any) -> None:
    """strict_ordering writes every item conditionally: an older item never overwrites a newer one."""
    writer = TableWriter(ddb, TABLE, "user_id", strict_ordering=True)
    writer.write([item("u1", "2026-11-22T09|b|v2", name="New")])
    result = writer.write([item("u1", "2026-11-22T08|a|v1", name="Old")])
    assert (result.written, result.superseded) == (0, 1)
    assert scan(ddb)["u1"]["first_name"]["S"] == "New"


def test_duplicate_keys_in_one_batch_collapse_to_the_greatest_order() -> None:
    items = [item("u1", "t|0002", name="first"), item("u2", "t|0003"), item("u1", "t|0009", name="last")]
    collapsed = collapse_duplicates(items, "user_id")
    assert [i["first_name"]["S"] for i in collapsed if i["user_id"]["S"] == "u1"] == ["last"]
    assert len(collapsed) == 2


def test_duplicate_keys_are_written_once(ddb: Any) -> None:
    writer = TableWriter(ddb, TABLE, "user_id")
    result = writer.write([item("u1", "t|0002", name="first"), item("u1", "t|0003", name="second")])
    assert result.written == 1
    assert scan(ddb)["u1"]["first_name"]["S"] == "second"


def test_a_replay_of_the_same_version_sends_no_write(ddb: Any) -> None:
    writer = TableWriter(ddb, TABLE, "user_id")
    batch = [item(f"u{i}", "2026-11-22T08|users.csv|v1") for i in range(60)]
    first = writer.write(batch)
    assert first.requests == 3  # one BatchWriteItem per 25 new keys
    again = writer.write(batch)
    assert (again.written, again.unchanged, again.requests) == (60, 60, 0)


def test_a_re_upload_of_existing_keys_is_one_transaction_per_chunk(ddb: Any) -> None:
    writer = TableWriter(ddb, TABLE, "user_id")
    writer.write([item(f"u{i}", "2026-11-22T08|a|v1", name="Old") for i in range(50)])
    result = writer.write([item(f"u{i}", "2026-11-22T09|a|v2", name="New") for i in range(50)])
    assert (result.written, result.superseded, result.requests) == (50, 0, 2)
    assert {row["first_name"]["S"] for row in scan(ddb).values()} == {"New"}


class StaleReads:
    """Answers BatchGetItem with what the table held before a newer writer raced in."""

    def __init__(self, client: Any, stale: dict[str, str]) -> None:
        self._client = client
        self._stale = stale

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3 name
        keys = [key["user_id"]["S"] for key in RequestItems[TABLE]["Keys"]]
        found = [
            {"user_id": {"S": k}, "source_order": {"S": self._stale[k]}} for k in keys if k in self._stale
        ]
        return {"Responses": {TABLE: found}}


def test_a_newer_version_that_raced_in_is_kept_and_the_rest_of_the_transaction_written(ddb: Any) -> None:
    writer = TableWriter(ddb, TABLE, "user_id")
    writer.write([item("u1", "2026-11-22T10|b|v3", name="Newest"), item("u2", "2026-11-22T08|a|v1")])
    racing = TableWriter(
        StaleReads(ddb, {"u1": "2026-11-22T08|a|v1", "u2": "2026-11-22T08|a|v1"}), TABLE, "user_id"
    )
    result = racing.write(
        [item("u1", "2026-11-22T09|a|v2", name="Mid"), item("u2", "2026-11-22T09|a|v2", name="Mid")]
    )
    assert (result.written, result.superseded, result.requests) == (1, 1, 2)
    table = scan(ddb)
    assert table["u1"]["first_name"]["S"] == "Newest"
    assert table["u2"]["first_name"]["S"] == "Mid"
