"""Write validated records into DynamoDB, idempotently, with "the later S3 event time wins".

Every item carries ``source_order``: a string whose order is the order of the S3 events that produced the
records (event time, then source key and version, then line, to break ties). The rule, for each key:
the table keeps the item with the greatest ``source_order``. So a replay, or the same message delivered
twice, rewrites identical items; an older file processed late never overwrites a newer one.

How it is enforced, per chunk of up to 25 keys:

1. ``BatchGetItem`` (strongly consistent) reads the ``source_order`` the table holds for those keys.
2. Keys the table does not hold yet are written with ``BatchWriteItem``; ``UnprocessedItems`` are retried
   with exponential backoff and jitter.
3. Keys it holds with the *same* order are left alone: items are deterministic, so the table already holds
   exactly this item (a replay or duplicate delivery). They count as written, and cost no write.
4. Keys it holds with an older order are written in one ``TransactWriteItems`` of conditional puts
   (``attribute_not_exists(key) OR source_order <= :new``) per chunk, not one ``PutItem`` each. When a
   condition fails (a newer version raced in since step 1) the transaction is cancelled as a whole; its
   ``CancellationReasons`` name the items whose condition failed, which are counted as superseded, and the
   rest is sent again. Cost: a transactional write costs 2 write units per item (a ``PutItem`` 1), in one
   request per 25 items instead of 25 requests; keys held with a newer order are superseded with no write.

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

from pipeline import budget

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
    written: int = 0  # items the table now holds from this batch (``unchanged`` ones included)
    superseded: int = 0  # items not written because the table holds a newer version of their key
    unchanged: int = 0  # of ``written``: already in the table, identical, so no write was sent
    requests: int = 0  # write requests sent (BatchWriteItem, TransactWriteItems, PutItem calls)

    def add(self, other: WriteResult) -> None:
        self.written += other.written
        self.superseded += other.superseded
        self.unchanged += other.unchanged
        self.requests += other.requests


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
            result.requests += self._batch_put(fresh)
            result.written += len(fresh)
        if self.strict_ordering:
            for item in conditional:
                result.requests += 1
                if self._conditional_put(item):
                    result.written += 1
                else:
                    result.superseded += 1
            return result
        updates: list[Item] = []
        for item in conditional:
            held = existing[item[self.key_field]["S"]]
            if held == _order(item):
                result.written += 1
                result.unchanged += 1
            elif held > _order(item):
                result.superseded += 1
            else:
                updates.append(item)
        if updates:
            written, superseded, requests = self._transactional_puts(updates)
            result.written += written
            result.superseded += superseded
            result.requests += requests
        return result

    def _backoff(self, attempt: int) -> None:
        # Full jitter: spreads retries of concurrent writers instead of synchronising them.
        delay = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311
        budget.retry_fits(delay)  # never sleep into the invocation's timeout: OutOfTime hands the work back
        self.sleep(delay)

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

    def _batch_put(self, items: list[Item]) -> int:
        """BatchWriteItem until every item is written; returns the number of requests sent."""
        pending: list[Any] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(self.max_attempts):
            response = self.client.batch_write_item(RequestItems={self.table: pending})
            pending = list(response.get("UnprocessedItems", {}).get(self.table, []))
            if not pending:
                return attempt + 1
            self._backoff(attempt)
        raise WriteError(
            f"{self.table}: {len(pending)} items still unprocessed"
            f" after {self.max_attempts} BatchWriteItem attempts"
        )

    def _condition(self, item: Item) -> dict[str, Any]:
        return {
            "ConditionExpression": "attribute_not_exists(#k) OR #o <= :o",
            "ExpressionAttributeNames": {"#k": self.key_field, "#o": ORDER_ATTRIBUTE},
            "ExpressionAttributeValues": {":o": item[ORDER_ATTRIBUTE]},
        }

    def _transactional_puts(self, items: list[Item]) -> tuple[int, int, int]:
        """Conditional puts in one transaction; (written, superseded, requests).

        A cancelled transaction writes nothing: the items whose condition failed are superseded and the
        others are sent again; a cancellation for another reason (a conflicting transaction, throttling) is
        retried with backoff.
        """
        pending = list(items)
        superseded = requests = 0
        for attempt in range(self.max_attempts):
            requests += 1
            try:
                transaction: list[Any] = [
                    {"Put": {"TableName": self.table, "Item": item, **self._condition(item)}}
                    for item in pending
                ]
                self.client.transact_write_items(TransactItems=transaction)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                failed = {
                    index
                    for index, reason in enumerate(reasons)
                    if reason.get("Code") == "ConditionalCheckFailed"
                }
                superseded += len(failed)
                pending = [item for index, item in enumerate(pending) if index not in failed]
                if not pending:
                    return 0, superseded, requests
                if not failed:
                    self._backoff(attempt)
                continue
            return len(pending), superseded, requests
        raise WriteError(
            f"{self.table}: TransactWriteItems kept being cancelled after {self.max_attempts} attempts"
        )

    def _conditional_put(self, item: Item) -> bool:
        """Put unless the table holds a newer version of the key; False when it does."""
        try:
            self.client.put_item(TableName=self.table, Item=item, **self._condition(item))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
