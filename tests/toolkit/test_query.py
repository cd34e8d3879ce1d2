"""``pipeline query`` and ``pipeline get-user``: output formats, and the commands against the emulator, with
Parquet files laid out as the curated-zone contract says and a table with the stack's email index."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from pipeline_toolkit import emulator as emulator_module
from pipeline_toolkit import lookup, query
from pipeline_toolkit.cli import main
from pipeline_toolkit.clients import Clients
from pipeline_toolkit.outputs import Session, StackOutputs

# --- formatting (no emulator) ---------------------------------------------------------------------------

RESULT = query.Result(
    columns=["name", "n", "at", "tags", "missing"],
    rows=[
        ('a, "quoted"', 1, datetime(2024, 5, 1, 12, 30, tzinfo=UTC), ["x", "y"], None),
        ("[bold]not markup[/bold]", Decimal("2.50"), None, [], None),
    ],
)


def test_json_is_an_array_of_objects_with_iso_times_and_real_nulls() -> None:
    assert json.loads(query.to_json(RESULT)) == [
        {
            "name": 'a, "quoted"',
            "n": 1,
            "at": "2024-05-01T12:30:00+00:00",
            "tags": ["x", "y"],
            "missing": None,
        },
        {"name": "[bold]not markup[/bold]", "n": 2.5, "at": None, "tags": [], "missing": None},
    ]


def test_csv_has_a_header_quotes_where_needed_and_empty_fields_for_null() -> None:
    text = query.to_csv(RESULT)

    assert text.splitlines()[0] == "name,n,at,tags,missing"
    assert list(csv.reader(io.StringIO(text)))[1:] == [
        ['a, "quoted"', "1", "2024-05-01T12:30:00+00:00", '["x", "y"]', ""],
        ["[bold]not markup[/bold]", "2.5", "", "[]", ""],
    ]


def test_the_table_prints_values_as_they_are_and_null_as_null() -> None:
    console = Console(width=200, record=True, color_system=None)
    console.print(query.to_table(RESULT))
    text = console.export_text()

    assert "[bold]not markup[/bold]" in text  # a value is never read as rich markup
    assert '["x", "y"]' in text
    assert "null" in text
    assert "2 row(s)" in text


def test_only_the_tables_a_query_names_are_read() -> None:
    assert query.referenced_tables("SELECT * FROM Users JOIN events USING (user_id)") == ["users", "events"]
    assert query.referenced_tables("SELECT reason FROM rejects CROSS JOIN UNNEST(reasons)") == ["rejects"]
    assert query.referenced_tables("SELECT user_id_count FROM usersx") == []


def test_named_queries_are_the_catalog_modules_files_with_their_leading_comment_as_description() -> None:
    named = query.named_queries()

    assert set(named) == {"users_per_email_domain", "loads_per_day", "rejects_per_reason"}
    for name, text in named.items():
        path = query.named_queries_dir() / f"{name}.sql"
        assert text == path.read_text(encoding="utf-8")
        assert query.describe(text)
    assert query.describe("-- one\n-- two\nSELECT 1") == "one two"


# --- against the emulator -------------------------------------------------------------------------------


@dataclass
class Lake:
    outputs: StackOutputs
    state_dir: Path
    clients: Clients


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _ms(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _users(rows: list[dict[str, Any]], *, enriched: bool) -> pa.Table:
    """Users as the curated writer writes them; ``enriched`` adds the enrichment columns and ``uploaded_by``
    (some files lack them, as files written before those changes will)."""
    fields = [
        field
        for field in query.SCHEMAS["users"]
        if enriched or field.name not in (*_ENRICHMENT, "uploaded_by")
    ]
    schema = pa.schema(fields)
    return pa.Table.from_pylist(
        [{name: row.get(name) for name in schema.names} for row in rows], schema=schema
    )


_ENRICHMENT = ("email_domain", "age_band", "email_provider", "enricher_version")


def _lineage(key: str, version: str, time: str, line: int) -> dict[str, Any]:
    return {
        "source_key": key,
        "source_version": version,
        "source_order": f"{time}|{key}|{version}",
        "source_line": line,
        "event_time": _ms(time),
    }


def _user(user_id: str, email: str, age: int, lineage: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "first_name": "F",
        "last_name": "L",
        "email": email,
        "gender": "x",
        "age": age,
        **lineage,
        **more,
    }


@pytest.fixture
def lake(clients: Clients, local_emulator: emulator_module.Emulator, tmp_path: Path) -> Lake:
    """Curated Parquet files and rejects as the loaders lay them out, and a session naming the buckets."""
    run = uuid.uuid4().hex[:8]
    datalake, quarantine = f"q-{run}-datalake", f"q-{run}-quarantine"
    for bucket in (datalake, quarantine):
        clients.s3.create_bucket(Bucket=bucket)
    t1, t2 = "2024-05-01T08:00:00", "2024-05-02T09:00:00"

    # Day 1: u1 (first version) and u2; written before the enrichment columns existed.
    first = _users(
        [
            _user("u1", "ann@old.example", 30, _lineage("users-1.csv", "v1", t1, 2)),
            _user("u2", "bob@example.com", 41, _lineage("users-1.csv", "v1", t1, 3)),
        ],
        enriched=False,
    )
    # Day 2: u1 again, from a later S3 event: this version wins.
    second = _users(
        [
            _user(
                "u1",
                "ann@new.example",
                31,
                _lineage("users-2.csv", "v7", t2, 2),
                email_domain="new.example",
                age_band="30-39",
                enricher_version="1",
                uploaded_by="8a4e2f5c-sub",
            )
        ],
        enriched=True,
    )
    events = pa.Table.from_pylist(
        [
            {
                "event_id": "e1",
                "user_id": "u1",
                "event_type": "login",
                "occurred_at": _ms("2024-05-02T08:59:00"),
                "properties": '{"ip": "10.0.0.1"}',
                **_lineage("events-1.jsonl", "v3", t2, 1),
            }
        ],
        schema=query.SCHEMAS["events"],
    )
    objects = {
        "curated/dataset=users/ingest_date=2024-05-01/users-1.parquet": _parquet(first),
        "curated/dataset=users/ingest_date=2024-05-02/users-2.parquet": _parquet(second),
        "curated/dataset=events/ingest_date=2024-05-02/events-1.parquet": _parquet(events),
    }
    for key, body in objects.items():
        clients.s3.put_object(Bucket=datalake, Key=key, Body=body)

    def reject(key: str, version: str, line: int, reasons: list[str], record: Any) -> bytes:
        entry = {
            "source_bucket": "landing",
            "source_key": key,
            "source_version": version,
            "source_event_time": t1 + "Z",
            "source_order": f"{t1}Z|{key}|{version}",
            "line": line,
            "reasons": reasons,
            "record": record,
        }
        return json.dumps(entry).encode() + b"\n"

    # A whole file's rejects, and one part's of a file loaded in parts; the records have no one type.
    clients.s3.put_object(
        Bucket=quarantine,
        Key="rejects/users-1.csv@v1.jsonl",
        Body=reject("users-1.csv", "v1", 4, ["email: value is not a valid email address"], {"Email": "x"})
        + reject(
            "users-1.csv",
            "v1",
            5,
            ["email: value is not a valid email address", "age: required field is missing"],
            ["u9", "bad"],
        ),
    )
    clients.s3.put_object(
        Bucket=quarantine,
        Key="rejects/big/users-3.csv@v2/part-00000.jsonl",
        Body=reject("big/users-3.csv", "v2", 10, ["age: required field is missing"], "u10,,x"),
    )
    outputs = StackOutputs(
        landing_bucket=f"q-{run}-landing",
        datalake_bucket=datalake,
        quarantine_bucket=quarantine,
        table_name=f"q-{run}-users",
        region=clients.region,
    )
    state_dir = tmp_path / "state"
    Session(local_emulator.endpoint_url, local_emulator.region, outputs, os.getpid()).save(state_dir)
    return Lake(outputs, state_dir, clients)


def _json_query(lake: Lake, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    code = main(["--state-dir", str(lake.state_dir), "query", "--format", "json", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_users_per_email_domain_counts_each_users_current_version_only(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json_query(lake, capsys, "--named", "users_per_email_domain")

    # u1's older address (old.example) is superseded by the later S3 event's (new.example).
    assert rows == [{"email_domain": "example.com", "users": 1}, {"email_domain": "new.example", "users": 1}]


def test_loads_per_day_counts_files_and_rows_per_ingest_date_and_dataset(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json_query(lake, capsys, "--named", "loads_per_day")

    assert rows == [
        {"ingest_date": "2024-05-01", "dataset": "users", "files": 1, "records": 2},
        {"ingest_date": "2024-05-02", "dataset": "events", "files": 1, "records": 1},
        {"ingest_date": "2024-05-02", "dataset": "users", "files": 1, "records": 1},
    ]


def test_rejects_per_reason_reads_whole_files_and_parts(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json_query(lake, capsys, "--named", "rejects_per_reason")

    assert rows == [
        {"reason": "age: required field is missing", "rejected_records": 2, "files": 2},
        {"reason": "email: value is not a valid email address", "rejected_records": 2, "files": 1},
    ]


def test_the_partition_is_a_column_and_a_column_a_file_lacks_reads_as_null(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json_query(
        lake,
        capsys,
        "SELECT user_id, ingest_date, email_domain, age, event_time FROM users ORDER BY ingest_date, user_id",
    )

    assert rows == [
        {"user_id": "u1", "ingest_date": "2024-05-01", "email_domain": None, "age": 30,
         "event_time": "2024-05-01T08:00:00+00:00"},
        {"user_id": "u2", "ingest_date": "2024-05-01", "email_domain": None, "age": 41,
         "event_time": "2024-05-01T08:00:00+00:00"},
        {"user_id": "u1", "ingest_date": "2024-05-02", "email_domain": "new.example", "age": 31,
         "event_time": "2024-05-02T09:00:00+00:00"},
    ]  # fmt: skip


def test_csv_and_table_formats(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--state-dir", str(lake.state_dir), "query", "SELECT event_id, properties FROM events"]
    capsys.readouterr()

    assert main([*base, "--format", "csv"]) == 0
    assert capsys.readouterr().out == 'event_id,properties\ne1,"{""ip"": ""10.0.0.1""}"\n'
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "e1" in out
    assert "1 row(s)" in out


def test_a_query_over_an_empty_zone_returns_no_rows(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    lake.clients.s3.delete_object(
        Bucket=lake.outputs.datalake_bucket,
        Key="curated/dataset=events/ingest_date=2024-05-02/events-1.parquet",
    )

    assert _json_query(lake, capsys, "SELECT count(*) AS n FROM events") == [{"n": 0}]


def test_sql_duckdb_refuses_fails_with_its_message(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--state-dir", str(lake.state_dir), "query", "SELECT nope FROM users"])

    assert code == 1
    assert "nope" in capsys.readouterr().out


def test_list_names_the_named_queries_and_sql_or_named_is_required(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--state-dir", str(lake.state_dir), "query", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("users_per_email_domain", "loads_per_day", "rejects_per_reason"))

    assert main(["--state-dir", str(lake.state_dir), "query"]) == 2
    assert main(["--state-dir", str(lake.state_dir), "query", "SELECT 1", "--named", "loads_per_day"]) == 2
    assert main(["--state-dir", str(lake.state_dir), "query", "--named", "nope"]) == 2


# --- get-user -------------------------------------------------------------------------------------------


@pytest.fixture
def users_table(clients: Clients, local_emulator: emulator_module.Emulator, tmp_path: Path) -> Lake:
    """A table keyed and indexed as terraform/modules/table makes it (email-index, KEYS_ONLY)."""
    table = f"q-{uuid.uuid4().hex[:8]}-users"
    clients.dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "user_id", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": lookup.EMAIL_INDEX,
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for user_id, email, age in (("u1", "ann@example.com", 30), ("u3", "shared@example.com", 52),
                                ("u2", "shared@example.com", 25)):  # fmt: skip
        clients.dynamodb.put_item(
            TableName=table,
            Item={
                "user_id": {"S": user_id},
                "email": {"S": email},
                "age": {"N": str(age)},
                "source_order": {"S": f"2024-05-01T00:00:00Z|users.csv|{user_id}"},
            },
        )
    outputs = StackOutputs(
        landing_bucket="l",
        datalake_bucket="d",
        quarantine_bucket="q",
        table_name=table,
        region=clients.region,
    )
    state_dir = tmp_path / "state"
    Session(local_emulator.endpoint_url, local_emulator.region, outputs, os.getpid()).save(state_dir)
    return Lake(outputs, state_dir, clients)


def _get_user(users_table: Lake, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--state-dir", str(users_table.state_dir), "get-user", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_get_user_by_id_prints_the_item(users_table: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _get_user(users_table, capsys, "--id", "u1")

    assert code == 0
    assert json.loads(out) == {
        "user_id": "u1",
        "email": "ann@example.com",
        "age": 30,
        "source_order": "2024-05-01T00:00:00Z|users.csv|u1",
    }


def test_get_user_by_email_prints_every_user_with_it_ordered_by_id(
    users_table: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _get_user(users_table, capsys, "--email", "  Shared@Example.COM ")

    assert code == 0
    assert [(user["user_id"], user["age"]) for user in json.loads(out)] == [("u2", 25), ("u3", 52)]


def test_get_user_by_email_reads_whole_items_from_a_keys_only_index(
    users_table: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _get_user(users_table, capsys, "--email", "ann@example.com")

    assert code == 0
    assert json.loads(out) == [
        {
            "user_id": "u1",
            "email": "ann@example.com",
            "age": 30,
            "source_order": "2024-05-01T00:00:00Z|users.csv|u1",
        }
    ]


@pytest.mark.parametrize("args", [("--id", "nobody"), ("--email", "nobody@example.com")])
def test_get_user_not_found_says_so_and_exits_non_zero(
    users_table: Lake, capsys: pytest.CaptureFixture[str], args: tuple[str, str]
) -> None:
    code, out, err = _get_user(users_table, capsys, *args)

    assert code == 1
    assert out == ""
    assert "no user with" in err
    assert users_table.outputs.table_name in err


def test_get_user_wants_exactly_one_of_id_and_email(users_table: Lake) -> None:
    with pytest.raises(SystemExit):
        main(["--state-dir", str(users_table.state_dir), "get-user"])
    with pytest.raises(SystemExit):
        main(["--state-dir", str(users_table.state_dir), "get-user", "--id", "u1", "--email", "a@b.c"])


def test_uploaded_by_is_selectable_and_null_in_files_written_before_it(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json_query(
        lake, capsys, "SELECT user_id, ingest_date, uploaded_by FROM users ORDER BY ingest_date, user_id"
    )

    assert rows == [
        {"user_id": "u1", "ingest_date": "2024-05-01", "uploaded_by": None},
        {"user_id": "u2", "ingest_date": "2024-05-01", "uploaded_by": None},
        {"user_id": "u1", "ingest_date": "2024-05-02", "uploaded_by": "8a4e2f5c-sub"},
    ]
    # The rejects table has the column too; these rejects name no uploader.
    rejects = _json_query(lake, capsys, "SELECT DISTINCT uploaded_by FROM rejects")
    assert rejects == [{"uploaded_by": None}]
