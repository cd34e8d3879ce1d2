"""Both handlers, driven by real Lambda-shaped SQS events from moto's S3 -> SNS -> SQS fan-out."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from typing import Any

import pytest

from pipeline.contracts import Contract
from pipeline.datasets import USERS
from pipeline.validation import LINEAGE_ATTRIBUTES
from pipeline_toolkit import moto_compat

HEADER = "user_id,first_name,last_name,email,gender,age\n"
LINEAGE = set(LINEAGE_ATTRIBUTES)


def users_csv(n: int, start: int = 0, bad_every: int = 0) -> bytes:
    rows = []
    for i in range(start, start + n):
        email = f"User{i}@Example.com" if not (bad_every and i % bad_every == 0) else f"user{i}-at-example"
        rows.append(f"u{i:05},First{i},Last{i},{email},female,{20 + i % 50}\n")
    return (HEADER + "".join(rows)).encode()


def users_jsonl(n: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "user_id": f"j{i}",
                "first_name": "Ada",
                "last_name": "L",
                "email": f"j{i}@x.io",
                "gender": "f",
                "age": 30,
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def test_good_csv_lands_in_lake_and_table_with_lineage(stack: Any) -> None:
    version = stack.put("incoming/users.csv", users_csv(40))
    stack.run_all()

    assert any(
        k.startswith("dataset=users/ingest_date=") and k.endswith("/users.csv") for k in stack.lake_keys()
    )
    table = stack.table()
    assert len(table) == 40
    row = table["u00003"]
    assert row["email"]["S"] == "user3@example.com"  # normalised
    assert row["source_key"]["S"] == "incoming/users.csv"
    assert row["source_version"]["S"] == version
    assert row["line"]["N"] == "5"
    manifest = stack.manifests("database")["incoming/users.csv"]
    assert (manifest.status, manifest.records_read, manifest.records_loaded, manifest.records_rejected) == (
        "loaded",
        40,
        40,
        0,
    )
    assert stack.manifests("datalake")["incoming/users.csv"].lake_key in stack.lake_keys()


def test_every_format_and_gzip_loads(stack: Any) -> None:
    array = json.dumps(
        [{"UserId": "a1", "FirstName": "A", "LastName": "B", "Email": "a1@x.io", "Gender": "m", "Age": 41}]
    )
    stack.put("users-array.json", array.encode())
    stack.put("users-lines.jsonl", users_jsonl(7))
    stack.put("users-zipped.csv.gz", gzip.compress(users_csv(5, start=100)))
    stack.put("users-zipped.jsonl.gz", gzip.compress(users_jsonl(3).replace(b'"j', b'"z')))
    stack.run_all()
    assert len(stack.table()) == 1 + 7 + 5 + 3
    assert {m.status for m in stack.manifests("database").values()} == {"loaded"}


def test_bad_rows_are_quarantined_with_reasons_and_nothing_is_lost(stack: Any) -> None:
    stack.put("users-mixed.csv", users_csv(100, bad_every=10))
    stack.run_all()
    manifest = stack.manifests("database")["users-mixed.csv"]
    assert (manifest.records_read, manifest.records_loaded, manifest.records_rejected) == (100, 90, 10)
    assert manifest.status == "partial"
    assert len(stack.table()) == 90
    rejects = stack.rejects(manifest.rejects_key or "")
    assert len(rejects) == 10
    assert rejects[0]["line"] == 2  # u00000 is on the line after the header
    assert any("email" in reason for reason in rejects[0]["reasons"])
    assert rejects[0]["record"]["user_id"] == "u00000"
    assert manifest.first_errors[0].line == 2


def test_zero_byte_file_is_recorded_not_failed(stack: Any) -> None:
    stack.put("users-empty.csv", b"")
    stack.run_all()
    manifest = stack.manifests("database")["users-empty.csv"]
    assert manifest.records_read == 0
    assert manifest.records_loaded == 0
    assert any(k.endswith("/users-empty.csv") for k in stack.lake_keys())


def test_binary_file_named_users_csv_is_quarantined(stack: Any) -> None:
    garbage = bytes(range(256)) * 64
    stack.put("users.csv", garbage)
    stack.put("users-ok.csv", users_csv(3))
    stack.run_all()  # the broken file does not fail the batch: retrying would not fix it
    manifest = stack.manifests("database")["users.csv"]
    assert manifest.status == "quarantined"
    assert manifest.error
    kept = stack.s3.get_object(Bucket=stack.quarantine_bucket, Key=manifest.quarantined_file_key)[
        "Body"
    ].read()
    assert kept == garbage
    assert len(stack.table()) == 3  # its neighbour still loaded


def test_odd_keys_are_decoded(stack: Any) -> None:
    keys = ["my folder/users 1.csv", "a+b/users+2.csv", "time:08:00/users-3.csv", "café/用户/users-4.csv"]
    for n, key in enumerate(keys):
        stack.put(key, users_csv(2, start=10 * n))
    stack.run_all()
    assert set(stack.manifests("database")) == set(keys)
    assert {m.source_key for m in stack.manifests("datalake").values()} == set(keys)
    assert len(stack.table()) == 8
    assert {row["source_key"]["S"] for row in stack.table().values()} == set(keys)


def test_non_user_file_goes_to_lake_only(stack: Any) -> None:
    stack.put("reports/q3 summary.pdf", b"%PDF-1.7 ...")
    stack.run_all()
    assert "dataset=unclassified/" in stack.manifests("datalake")["reports/q3 summary.pdf"].lake_key  # type: ignore[operator]
    assert stack.manifests("database") == {}
    assert stack.table() == {}


def test_same_message_twice_changes_nothing(stack: Any) -> None:
    stack.put("users.csv", users_csv(30))
    messages = {f: stack.receive(f) for f in ("datalake", "database")}
    for function, batch in messages.items():
        assert stack.invoke(function, batch) == {"batchItemFailures": []}
    table_once, lake_once = stack.table(), stack.lake_keys()
    for function, batch in messages.items():  # duplicate delivery of the very same messages
        assert stack.invoke(function, batch) == {"batchItemFailures": []}
    assert stack.table() == table_once
    assert stack.lake_keys() == lake_once
    versions = [  # reference/ holds the enrichment's reference data, put there by the fixture
        v
        for v in stack.s3.list_object_versions(Bucket=stack.lake_bucket)["Versions"]
        if not v["Key"].startswith("reference/")
    ]
    # No second copy of the same source version: one raw copy, one curated object, each written once.
    assert sorted(version["Key"].split("/")[0] for version in versions) == ["curated", "dataset=users"]


def test_reupload_of_the_same_bytes_keeps_the_table(stack: Any) -> None:
    stack.put("users.csv", users_csv(10))
    stack.run_all()
    first = {
        k: {a: v for a, v in row.items() if not a.startswith("source_")} for k, row in stack.table().items()
    }
    stack.put("users.csv", users_csv(10))
    stack.run_all()
    again = {
        k: {a: v for a, v in row.items() if not a.startswith("source_")} for k, row in stack.table().items()
    }
    assert again == first


def test_updated_file_updates_rows(stack: Any) -> None:
    stack.put("users.csv", users_csv(5))
    stack.run_all()
    stack.put("users.csv", users_csv(5).replace(b"First1,", b"Renamed,"))
    stack.run_all()
    assert stack.table()["u00001"]["first_name"]["S"] == "Renamed"


def test_s3_test_event_is_ignored(stack: Any) -> None:
    # The fixture already drained the test event S3 sent on configuration; send another explicitly.
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-22T08:00:00Z",
        "Bucket": "x",
    }
    for url, _ in stack.queues.values():
        stack.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(test_event))
    stack.run_all()
    assert stack.table() == {}
    assert stack.manifests("datalake") == {}


def test_a_malformed_message_fails_alone(stack: Any) -> None:
    stack.put("users.csv", users_csv(3))
    url, _ = stack.queues["database"]
    stack.sqs.send_message(QueueUrl=url, MessageBody="this is not an S3 event")
    messages = stack.receive("database")
    response = stack.invoke("database", messages)
    bad = [m["MessageId"] for m in messages if m["Body"] == "this is not an S3 event"]
    assert response == {"batchItemFailures": [{"itemIdentifier": bad[0]}]}
    assert len(stack.table()) == 3


def test_unprocessed_items_from_dynamodb_are_retried(stack: Any) -> None:
    real = stack.handlers["database"].dynamodb
    calls = {"n": 0}

    class Throttled:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
            calls["n"] += 1
            ((table, requests),) = RequestItems.items()
            if calls["n"] <= 2 and len(requests) > 1:
                real.batch_write_item(RequestItems={table: requests[:1]})
                return {"UnprocessedItems": {table: requests[1:]}}
            return dict(real.batch_write_item(RequestItems=RequestItems))

    stack.handlers["database"].dynamodb = Throttled()
    try:
        stack.put("users.csv", users_csv(60))
        stack.run_all()
    finally:
        stack.handlers["database"].dynamodb = real
    assert len(stack.table()) == 60
    assert calls["n"] > 3


def test_keys_as_long_as_s3_allows_load_on_an_emulator_with_s3s_limits(stack: Any) -> None:
    """A 1,024-byte key, ASCII or CJK, goes through both loaders although S3 refuses keys over 1,024 bytes and
    user metadata over 2 KB (the emulator's compatibility layer enforces both, as AWS does)."""
    moto_compat.apply()
    keys = [
        "in/" + "a" * 1006 + "/users-long.csv",
        "in/" + "用户数据" * 84 + "/users-yy.csv",
        "users-" + "用户数据" * 84 + "abcdef.csv",
    ]
    assert {len(key.encode()) for key in keys} == {1024}
    for n, key in enumerate(keys):
        stack.put(key, users_csv(3, start=10 * n, bad_every=3))
    stack.run_all()

    database = stack.manifests("database")
    datalake = stack.manifests("datalake")
    assert set(database) == set(datalake) == set(keys)  # the manifests hold the full key
    for key in keys:
        assert database[key].status == "partial"
        assert (database[key].records_loaded, database[key].records_rejected) == (2, 1)
        lake_key = datalake[key].lake_key
        assert lake_key in stack.lake_keys()
        metadata = stack.s3.head_object(Bucket=stack.lake_bucket, Key=lake_key)["Metadata"]
        assert metadata["source-key-sha256"] == hashlib.sha256(key.encode()).hexdigest()
        assert stack.rejects(database[key].rejects_key or "")[0]["source_key"] == key
    assert {row["source_key"]["S"] for row in stack.table().values()} == set(keys)


# --- contracts and enrichment, through the handler ---------------------------------------------------

EXTRA_COLUMN_CSV = (
    b"\xef\xbb\xbf USER_ID ,Email,Age,signup_source\r\nu1,Ann@Gmail.com,30,ads\r\nu2,b@uni.edu,,\r\n"
)


@pytest.mark.parametrize("policy", ["reject", "ignore", "keep"])
def test_an_extra_column_under_each_policy(stack: Any, monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    users = dataclasses.replace(USERS, contract=Contract(policy))  # type: ignore[arg-type]
    monkeypatch.setattr(stack.handlers["database"], "route", lambda key: users)
    stack.put("users-extra.csv", EXTRA_COLUMN_CSV)
    stack.run_all()
    manifest = stack.manifests("database")["users-extra.csv"]
    table = stack.table()
    if policy == "reject":
        assert (manifest.status, table) == ("quarantined", {})
        assert manifest.error is not None
        assert "unknown column(s) 'signup_source'" in manifest.error
        assert manifest.contract_decisions[0].startswith("rejected columns: signup_source")
        return
    assert (manifest.status, manifest.records_loaded) == ("loaded", 2)
    decision = "ignored columns: signup_source" if policy == "ignore" else "kept columns: signup_source"
    assert manifest.contract_decisions[0] == (
        "matched columns by a variant of their name: 'USER_ID' as user_id"
    )
    assert manifest.contract_decisions[1].startswith(decision)
    assert manifest.enricher_version == "users-enricher/1+email_providers/v1"
    # Kept or not, an unknown column never becomes a typed attribute of the item.
    assert all("signup_source" not in item for item in table.values())
    assert {k: v for k, v in table["u1"].items() if k not in LINEAGE} == {
        "user_id": {"S": "u1"},
        "email": {"S": "ann@gmail.com"},
        "age": {"N": "30"},
        "email_domain": {"S": "gmail.com"},
        "age_band": {"S": "25-34"},
        "email_provider": {"S": "free-mail"},
        "enricher_version": {"S": "users-enricher/1+email_providers/v1"},
    }
    assert table["u2"]["email_provider"] == {"S": "education"}
    assert "age_band" not in table["u2"]


def test_a_missing_reference_table_fails_the_file_with_a_manifest_that_says_why(stack: Any) -> None:
    key = "reference/email_providers/v1/email_providers.csv"
    for version in stack.s3.list_object_versions(Bucket=stack.lake_bucket, Prefix=key)["Versions"]:
        stack.s3.delete_object(Bucket=stack.lake_bucket, Key=key, VersionId=version["VersionId"])
    stack.put("users.csv", users_csv(3))
    assert stack.run("datalake") == []
    assert len(stack.run("database")) == 1  # retried, then dead-lettered: redrive once the table is back
    manifest = stack.manifests("database")["users.csv"]
    assert manifest.status == "failed"
    assert manifest.error is not None
    assert (
        f"reference table email_providers v1 (s3://{stack.lake_bucket}/{key}) cannot be read"
        in manifest.error
    )
    assert stack.table() == {}
