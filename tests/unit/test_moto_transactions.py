"""moto_compat's transaction patch: all or nothing, as AWS, without copying the table.

In tests/unit on purpose: ``mock_aws`` resets moto's in-process state on exit, which would wipe the session's
embedded emulator (it shares that state) for the suites that run after it.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pipeline_toolkit import moto_compat


def test_transactions_are_all_or_nothing_without_copying_the_table() -> None:
    moto_compat.apply()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="t", Item={"k": {"S": "a"}, "o": {"S": "5"}})

        def put(key: str, order: str) -> dict[str, Any]:
            return {
                "Put": {
                    "TableName": "t",
                    "Item": {"k": {"S": key}, "o": {"S": order}},
                    "ConditionExpression": "attribute_not_exists(k) OR o <= :o",
                    "ExpressionAttributeValues": {":o": {"S": order}},
                }
            }

        with pytest.raises(ClientError) as cancelled:
            ddb.transact_write_items(TransactItems=[put("a", "3"), put("b", "3")])
        reasons = [reason["Code"] for reason in cancelled.value.response["CancellationReasons"]]
        assert reasons == ["ConditionalCheckFailed", "None"]
        assert "Item" not in ddb.get_item(TableName="t", Key={"k": {"S": "b"}})  # nothing was written
        ddb.transact_write_items(TransactItems=[put("a", "6"), put("b", "6")])
        assert ddb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["o"] == {"S": "6"}
