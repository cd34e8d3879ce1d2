"""The curated zone through the handlers: users and events files, whole and in parts, read with pyarrow."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from tests.integration.conftest import PART_BYTES, Stack

HEADER = "user_id,first_name,last_name,email,gender,age\n"


def users_csv(ids: range, first_name: str = "Ada") -> bytes:
    rows = [f"u{i:05},{first_name},Last{i},u{i}@example.com,female,{20 + i % 50}\n" for i in ids]
    return (HEADER + "".join(rows)).encode()


def events_jsonl(n: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "event_id": f"e-{i}",
                "user_id": f"u{i:05}",
                "type": "click" if i % 2 else "page_view",
                "timestamp": f"2024-05-01T10:00:{i % 60:02d}.5+02:00",
                "properties": {"path": f"/p/{i}", "ñ": i},
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def latest(table: pa.Table, key: str) -> dict[str, dict[str, Any]]:
    """The merge view readers apply: per key, the row with the greatest (source_order, source_line)."""
    rows: dict[str, dict[str, Any]] = {}
    for row in table.to_pylist():
        held = rows.get(row[key])
        if held is None or (row["source_order"], row["source_line"]) > (
            held["source_order"],
            held["source_line"],
        ):
            rows[row[key]] = row
    return rows


def test_a_users_file_is_curated_with_its_lineage(stack: Any) -> None:
    version = stack.put("in/users.csv", users_csv(range(40)))
    stack.run_all()

    [key] = stack.curated_keys("users")
    assert key.startswith("curated/dataset=users/ingest_date=")
    assert key.endswith(".parquet")
    table = stack.curated("users")
    assert table.num_rows == 40
    assert table.column_names[:12] == [
        "user_id",
        "first_name",
        "last_name",
        "email",
        "gender",
        "age",
        "source_key",
        "source_version",
        "source_order",
        "source_line",
        "event_time",
        "uploaded_by",
    ]
    row = latest(table, "user_id")["u00003"]
    item = stack.table()["u00003"]
    assert row["email"] == item["email"]["S"] == "u3@example.com"
    assert row["age"] == 23
    assert (row["source_key"], row["source_version"], row["source_line"]) == ("in/users.csv", version, 5)
    assert row["source_order"] == item["source_order"]["S"]  # the table's "later event wins" order
    # The enrichment's attributes, as the table has them.
    assert row["uploaded_by"] is None  # dropped without uploaded-by metadata
    assert "uploaded_by" not in item
    assert table.column_names[12:16] == ["email_domain", "age_band", "email_provider", "enricher_version"]
    assert row["email_domain"] == item["email_domain"]["S"] == "example.com"
    assert row["enricher_version"] == item["enricher_version"]["S"]
    # The partition is the S3 event's date, as for the raw copy.
    [raw] = [k for k in stack.lake_keys() if k.startswith("dataset=users/")]
    assert raw.split("/")[1] == key.split("/")[2] == f"ingest_date={row['event_time']:%Y-%m-%d}"


def test_only_valid_records_are_curated_and_a_file_without_any_writes_nothing(stack: Any) -> None:
    stack.put("users-mixed.csv", HEADER.encode() + b"u1,A,B,a@example.com,f,30\nu2,A,B,not-an-email,f,30\n")
    stack.put("users-bad.csv", HEADER.encode() + b"u3,A,B,nope,f,30\n")
    stack.put("users-empty.csv", b"")
    stack.run_all()
    table = stack.curated("users")
    assert table.column("user_id").to_pylist() == ["u1"]
    assert stack.manifests("database")["users-bad.csv"].records_rejected == 1


def test_an_events_file_is_validated_and_curated_without_a_table(stack: Any) -> None:
    body = events_jsonl(5) + b'{"event_id": "bad", "type": "click", "timestamp": "2024-05-01T10:00:00"}\n'
    stack.put("clicks/events-1.jsonl", body)
    stack.run_all()

    manifest = stack.manifests("database")["clicks/events-1.jsonl"]
    assert (manifest.dataset, manifest.status, manifest.records_loaded, manifest.records_rejected) == (
        "events",
        "partial",
        5,
        1,
    )
    assert "occurred_at" in manifest.first_errors[0].reasons[0]  # a naive timestamp is refused
    assert stack.table() == {}  # no table for events
    table = stack.curated("events")
    assert table.column_names[:5] == ["event_id", "user_id", "event_type", "occurred_at", "properties"]
    assert str(table.schema.field("occurred_at").type) == "timestamp[ms, tz=UTC]"
    rows = latest(table, "event_id")
    assert rows["e-1"]["event_type"] == "click"
    assert f"{rows['e-1']['occurred_at']:%H:%M:%S.%f}" == "08:00:01.500000"  # +02:00 in UTC
    assert json.loads(rows["e-1"]["properties"]) == {"path": "/p/1", "ñ": 1}
    assert rows["e-4"]["source_line"] == 5


def test_a_replay_leaves_the_same_objects_with_the_same_bytes(stack: Any) -> None:
    stack.put("users.csv", users_csv(range(30)))
    messages = stack.receive("database")
    assert stack.invoke("database", messages) == {"batchItemFailures": []}
    before = {
        key: stack.s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
        for key in stack.curated_keys()
    }
    # A replay the manifest would skip is forced through: delete the manifest, deliver the same event again.
    for key, manifest in stack.manifests("database").items():
        stack.s3.delete_object(
            Bucket=stack.quarantine_bucket, Key=f"manifests/database/{key}@{manifest.source_version}.json"
        )
    assert stack.invoke("database", messages) == {"batchItemFailures": []}
    after = {
        key: stack.s3.get_object(Bucket=stack.lake_bucket, Key=key)["Body"].read()
        for key in stack.curated_keys()
    }
    assert after == before
    versions = stack.s3.list_object_versions(Bucket=stack.lake_bucket, Prefix="curated/")["Versions"]
    assert len(versions) == 2  # the same object written again, not a second one


def test_a_newer_version_of_the_same_key_wins_in_the_merge_view(stack: Any) -> None:
    first = stack.put("users.csv", users_csv(range(5)))
    stack.run_all()
    second = stack.put("users.csv", users_csv(range(3), first_name="Renamed"))
    stack.run_all()

    table = stack.curated("users")
    assert len(stack.curated_keys("users")) == 2  # one object per version
    assert table.num_rows == 8
    rows = latest(table, "user_id")
    assert {user: row["first_name"] for user, row in rows.items()} == {
        "u00000": "Renamed",
        "u00001": "Renamed",
        "u00002": "Renamed",
        "u00003": "Ada",
        "u00004": "Ada",
    }
    assert {row["source_version"] for row in rows.values()} == {first, second}
    # The same rows the table holds.
    assert {user: item["first_name"]["S"] for user, item in stack.table().items()} == {
        user: row["first_name"] for user, row in rows.items()
    }


def test_a_big_file_is_curated_one_object_per_part_and_a_duplicate_part_adds_none(parts_stack: Stack) -> None:
    body = users_csv(range(600))
    assert len(body) > 4 * PART_BYTES
    parts_stack.put("big/users.csv", body)
    parts_stack.run_all()
    messages = parts_stack.receive("parts")
    assert len(messages) >= 4
    assert parts_stack.invoke("parts", messages) == {"batchItemFailures": []}
    keys = parts_stack.curated_keys("users")
    assert len(keys) == len(messages)
    table = parts_stack.curated("users")
    assert table.num_rows == 600
    assert sorted(table.column("source_line").to_pylist()) == list(range(2, 602))
    assert parts_stack.manifests("database")["big/users.csv"].status == "loaded"
    # A part delivered again is skipped on its result: the same objects, nothing rewritten.
    assert parts_stack.invoke("parts", messages[:1]) == {"batchItemFailures": []}
    assert parts_stack.curated_keys("users") == keys
    versions = parts_stack.s3.list_object_versions(Bucket=parts_stack.lake_bucket, Prefix="curated/")
    assert len(versions["Versions"]) == len(keys)


def test_a_big_events_file_loads_in_parts_without_a_table(parts_stack: Stack) -> None:
    parts_stack.put("events-big.jsonl", events_jsonl(200))
    parts_stack.run_all()
    assert parts_stack.run("parts") == []
    assert len(parts_stack.curated_keys("events")) > 1
    assert parts_stack.curated("events").num_rows == 200
    manifest = parts_stack.manifests("database")["events-big.jsonl"]
    assert (manifest.status, manifest.records_loaded) == ("loaded", 200)
