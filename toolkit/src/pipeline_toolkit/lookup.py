"""``pipeline get-user``: the hot tier's answers to the application, by user id or by email.

By id it is one ``GetItem`` (strongly consistent). By email it is a ``Query`` on the table's ``email-index``
(``terraform/modules/table``), which projects the keys only, then a ``BatchGetItem`` of the user ids found:
the index stays as small as its keys, and each item is read whole from the table. Several users may share an
email (nothing makes an email unique): all of them are returned, ordered by user id. The index is eventually
consistent: a user written a moment ago may not be found by email yet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The table module's index on email (``terraform/modules/table``; a static test keeps the two equal).
EMAIL_INDEX = "email-index"
_BATCH_GET_LIMIT = 100  # keys per BatchGetItem request
_BATCH_GET_ATTEMPTS = 8


def _plain(value: Any) -> Any:
    """A deserialised DynamoDB value as JSON carries it (numbers come back as Decimal, sets as sets)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(item) for item in value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return value


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    return {name: _plain(deserializer.deserialize(value)) for name, value in sorted(raw.items())}


def normalise_email(email: str) -> str:
    """As the loader stores emails (``pipeline.schemas.users``: trimmed, lowercased)."""
    return email.strip().lower()


def get_user(dynamodb: DynamoDBClient, table: str, user_id: str) -> dict[str, Any] | None:
    """The user's item, or None."""
    response = dynamodb.get_item(TableName=table, Key={"user_id": {"S": user_id}}, ConsistentRead=True)
    raw = response.get("Item")
    return None if raw is None else _item(dict(raw))


def _user_ids_by_email(dynamodb: DynamoDBClient, table: str, email: str) -> Iterator[str]:
    paginator = dynamodb.get_paginator("query")
    for page in paginator.paginate(
        TableName=table,
        IndexName=EMAIL_INDEX,
        KeyConditionExpression="email = :email",
        ExpressionAttributeValues={":email": {"S": email}},
    ):
        for key in page.get("Items", []):
            yield key["user_id"]["S"]


def get_users_by_email(dynamodb: DynamoDBClient, table: str, email: str) -> list[dict[str, Any]]:
    """Every user whose email is ``email`` (normalised as stored), ordered by user id; empty when none."""
    user_ids = sorted(set(_user_ids_by_email(dynamodb, table, normalise_email(email))))
    items: list[dict[str, Any]] = []
    for start in range(0, len(user_ids), _BATCH_GET_LIMIT):
        keys: list[Any] = [
            {"user_id": {"S": user_id}} for user_id in user_ids[start : start + _BATCH_GET_LIMIT]
        ]
        request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(_BATCH_GET_ATTEMPTS):
            response = dynamodb.batch_get_item(RequestItems=request)
            items.extend(_item(dict(raw)) for raw in response.get("Responses", {}).get(table, []))
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 1.0))  # unprocessed keys: throttled, back off
        else:
            raise RuntimeError(
                f"{table}: BatchGetItem left keys unprocessed after {_BATCH_GET_ATTEMPTS} attempts"
            )
    # The index lags the table: an item deleted since is not there, one whose email changed since is dropped.
    wanted = normalise_email(email)
    return sorted(
        (item for item in items if item.get("email") == wanted), key=lambda item: str(item["user_id"])
    )
