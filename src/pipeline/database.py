"""Write validated records into DynamoDB, idempotently, with "the later S3 event time wins".

Every item carries ``source_order``: a string whose order is the order of the S3 events that produced the
records (event time, then source key and version, then line, to break ties). The rule, for each key:
the table keeps the item with the greatest ``source_order``. So a replay, or the same message delivered
twice, rewrites identical items; an older file processed late never overwrites a newer one.

How it is enforced, per chunk of up to 25 keys:

1. ``BatchGetItem`` (strongly consistent) reads the ``source_order`` the table holds for those keys.
2. Keys the table does not hold yet are written with ``BatchWriteItem``; ``UnprocessedItems`` are retried
   with exponential backoff and jitter.
3. Keys it holds are written with a conditional ``PutItem``
   (``attribute_not_exists(key) OR source_order <= :new``); a failed condition means a newer version is
   already there, and the record is counted as superseded.

One window is left open by step 2: two *different* files inserting the same *new* key at the same moment.
Set ``strict_ordering`` (env ``PIPELINE_STRICT_ORDERING=true``) to write every item conditionally and
close it, at the cost of one request per item instead of one per 25.

Duplicates of one key inside a batch are collapsed first (the greatest ``source_order``, i.e. the later
line, wins): BatchWriteItem rejects a request that names a key twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
ORDER_ATTRIBUTE = "source_order"


class WriteError(RuntimeError):
    """DynamoDB kept refusing part of a batch after every retry."""


@dataclass(slots=True)
class WriteResult:
    written: int = 0
    superseded: int = 0

    def add(self, other: WriteResult) -> None:
        self.written += other.written
        self.superseded += other.superseded


def _order(item: Item) -> str:
    return str(item[ORDER_ATTRIBUTE]["S"])


def collapse_duplicates(items: Sequence[Item], key_field: str) -> list[Item]:
    """One item per key: the one with the greatest source order (input order kept otherwise)."""
    chosen: dict[str, Item] = {}
    for item in items:
        key = item[key_field]["S"]
        current = chosen.get(key)
        if current is None or _order(item) >= _order(current):
            chosen[key] = item
    return list(chosen.values())


@dataclass
class TableWriter:
    client: DynamoDBClient
    table: str
    key_field: str
    threads: int = 4
    strict_ordering: bool = False
    max_attempts: int = 10
    base_delay: float = 0.05
    max_delay: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def write(self, items: Sequence[Item]) -> WriteResult:
        """Write a batch of items; returns how many were written and how many were superseded."""
        unique = collapse_duplicates(items, self.key_field)
        chunks = [unique[i : i + BATCH_WRITE_LIMIT] for i in range(0, len(unique), BATCH_WRITE_LIMIT)]
        total = WriteResult()
        if self.threads <= 1 or len(chunks) <= 1:
            for chunk in chunks:
                total.add(self._write_chunk(chunk))
            return total
        with ThreadPoolExecutor(max_workers=min(self.threads, len(chunks))) as pool:
            for result in pool.map(self._write_chunk, chunks):
                total.add(result)
        return total

    # -- one chunk -------------------------------------------------------------------------------------

    def _write_chunk(self, chunk: list[Item]) -> WriteResult:
        result = WriteResult()
        if self.strict_ordering:
            existing: dict[str, str] = {}
            conditional = chunk
            fresh: list[Item] = []
        else:
            existing = self._existing_orders([item[self.key_field]["S"] for item in chunk])
            fresh = [item for item in chunk if item[self.key_field]["S"] not in existing]
            conditional = [item for item in chunk if item[self.key_field]["S"] in existing]
        if fresh:
            self._batch_put(fresh)
            result.written += len(fresh)
        for item in conditional:
            held = existing.get(item[self.key_field]["S"])
            if held is not None and held > _order(item):
                result.superseded += 1
            elif self._conditional_put(item):
                result.written += 1
            else:
                result.superseded += 1
        return result

    def _backoff(self, attempt: int) -> None:
        # Full jitter: spreads retries of concurrent writers instead of synchronising them.
        self.sleep(random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt)))  # noqa: S311

    def _existing_orders(self, keys: list[str]) -> dict[str, str]:
        request: dict[str, Any] = {
            self.table: {
                "Keys": [{self.key_field: {"S": key}} for key in keys],
                "ConsistentRead": True,
                "ProjectionExpression": "#k, #o",
                "ExpressionAttributeNames": {"#k": self.key_field, "#o": ORDER_ATTRIBUTE},
            }
        }
        found: dict[str, str] = {}
        for attempt in range(self.max_attempts):
            response = self.client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.table, []):
                order = item.get(ORDER_ATTRIBUTE, {}).get("S", "")
                found[str(item[self.key_field]["S"])] = str(order)
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                return found
            self._backoff(attempt)
        raise WriteError(
            f"{self.table}: BatchGetItem left keys unprocessed after {self.max_attempts} attempts"
        )

    def _batch_put(self, items: list[Item]) -> None:
        pending: list[Any] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(self.max_attempts):
            response = self.client.batch_write_item(RequestItems={self.table: pending})
            pending = list(response.get("UnprocessedItems", {}).get(self.table, []))
            if not pending:
                return
            self._backoff(attempt)
        raise WriteError(
            f"{self.table}: {len(pending)} items still unprocessed"
            f" after {self.max_attempts} BatchWriteItem attempts"
        )

    def _conditional_put(self, item: Item) -> bool:
        """Put unless the table holds a newer version of the key; False when it does."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(#k) OR #o <= :o",
                ExpressionAttributeNames={"#k": self.key_field, "#o": ORDER_ATTRIBUTE},
                ExpressionAttributeValues={":o": item[ORDER_ATTRIBUTE]},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
