"""Schema contracts: each unknown-column policy, header and key variants, and the manifests that say so."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import BaseModel, ConfigDict

from pipeline.contracts import MAX_NAMES, Contract, ContractReport, UnknownColumns
from pipeline.database import TableWriter
from pipeline.datasets import USERS
from pipeline.loader import load_stream
from pipeline.objects import ObjectRef
from pipeline.parts import finish, load_part
from pipeline.readers import Format, UnreadableFileError
from pipeline.schemas import UserRecord
from pipeline.splits import plan_parts
from pipeline.validation import Rejection, iter_validated_batches

REF = ObjectRef(bucket="landing", key="in/users.csv", event_time=datetime(2026, 3, 1, tzinfo=UTC))
LANDING, QUARANTINE, TABLE = "landing", "quarantine", "users"
# What real exports write: a BOM (a second one survives the reader's), upper case, spaces, a no-break space.
VARIANT_HEADER = "\ufeff\ufeffUSER_ID, First_Name ,\u00a0EMAIL ,Age,signup_source, Referrer "


def validate(
    data: bytes, fmt: Format, policy: UnknownColumns
) -> tuple[list[dict[str, Any]], list[dict[str, str]], list[Rejection], ContractReport]:
    report = ContractReport()
    found = list(
        iter_validated_batches(
            io.BytesIO(data),
            schema=UserRecord,
            ref=REF,
            fmt=fmt,
            contract=Contract(policy),
            report=report,
        )
    )
    items = [item for batch in found for item in batch.items]
    extras = [extra for batch in found for extra in batch.extras]
    rejections = [rejection for batch in found for rejection in batch.rejections]
    return items, extras, rejections, report


def variant_csv() -> bytes:
    return (
        f"{VARIANT_HEADER}\r\nu1,Ann,ann@example.com,42,ads,\r\nu2,Bob,bob@example.com,,newsletter,alice\r\n"
    ).encode()


def schema_fields(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = set(UserRecord.model_fields)
    return [{name: value for name, value in item.items() if name in names} for item in items]


EXPECTED_ITEMS = [
    {
        "user_id": {"S": "u1"},
        "first_name": {"S": "Ann"},
        "email": {"S": "ann@example.com"},
        "age": {"N": "42"},
    },
    {"user_id": {"S": "u2"}, "first_name": {"S": "Bob"}, "email": {"S": "bob@example.com"}},
]
# The reader trims whitespace around CSV names already; the BOM it leaves and the no-break space are ours.
MATCHED = (
    "matched columns by a variant of their name: 'EMAIL' as email, 'First_Name' as first_name, "
    "'\\ufeffUSER_ID' as user_id"
)


# --- CSV: header variants under each policy --------------------------------------------------------------


def test_csv_header_variants_match_under_every_policy() -> None:
    data = b"\xef\xbb\xbf USER_ID ,\tEmail,AGE \r\nu1,A@B.CO,7\r\n"
    for policy in ("reject", "ignore", "keep"):
        items, extras, rejections, report = validate(data, "csv", policy)  # type: ignore[arg-type]
        assert rejections == []
        assert schema_fields(items) == [{"user_id": {"S": "u1"}, "email": {"S": "a@b.co"}, "age": {"N": "7"}}]
        assert extras == ([{}] if policy == "keep" else [])
        assert report.decisions() == [
            "matched columns by a variant of their name: 'AGE' as age, 'USER_ID' as user_id"
        ]


def test_csv_unknown_column_under_reject_refuses_the_file_as_before() -> None:
    with pytest.raises(UnreadableFileError, match=r"unknown column\(s\) 'signup_source', 'Referrer'"):
        validate(variant_csv(), "csv", "reject")
    report = ContractReport()
    with pytest.raises(UnreadableFileError):
        list(
            iter_validated_batches(
                io.BytesIO(variant_csv()), schema=UserRecord, ref=REF, fmt="csv", report=report
            )
        )  # no contract given: reject is the default
    assert report.decisions()[-1] == (
        "rejected columns: Referrer, signup_source "
        "(unknown to the schema; the contract rejects unknown columns)"
    )


def test_csv_unknown_columns_under_ignore_are_dropped_and_reported() -> None:
    items, extras, rejections, report = validate(variant_csv(), "csv", "ignore")
    assert rejections == []
    assert [
        {k: v for k, v in item.items() if k in UserRecord.model_fields} for item in items
    ] == EXPECTED_ITEMS
    assert not any("signup_source" in item or "Referrer" in item for item in items)
    assert extras == []
    assert report.decisions() == [MATCHED, "ignored columns: Referrer, signup_source"]


def test_csv_unknown_columns_under_keep_are_extras_not_item_attributes() -> None:
    items, extras, rejections, report = validate(variant_csv(), "csv", "keep")
    assert rejections == []
    assert schema_fields(items) == EXPECTED_ITEMS
    assert not any("signup_source" in item or "Referrer" in item for item in items)
    # Trimmed names as written; an empty cell is no value, as for the schema's columns.
    assert extras == [{"signup_source": "ads"}, {"signup_source": "newsletter", "Referrer": "alice"}]
    assert report.decisions() == [
        MATCHED,
        "kept columns: Referrer, signup_source (in the records' extras, not in the table)",
    ]


def test_a_rejected_csv_record_under_keep_keeps_extras_parallel_to_items() -> None:
    data = b"user_id,email,plan\nu1,bad-email,gold\nu2,b@x.io,silver\n"
    items, extras, rejections, _ = validate(data, "csv", "keep")
    assert [item["user_id"]["S"] for item in items] == ["u2"]
    assert extras == [{"plan": "silver"}]
    assert [rejection.line for rejection in rejections] == [2]


def test_csv_columns_matching_one_field_twice_after_normalising_refuse_the_file() -> None:
    with pytest.raises(UnreadableFileError, match=r"gives the field\(s\) email in two columns"):
        validate(b"user_id,email,EMAIL \nu1,a@b.co,a@b.co\n", "csv", "ignore")


def test_a_required_field_present_only_as_a_variant_is_reported_empty_not_missing() -> None:
    _, _, rejections, _ = validate(b"USER_ID,EMAIL\nu1,\n", "csv", "reject")
    assert rejections[0].reasons == ["email: required field is empty"]


# --- JSON Lines and arrays: keys ---------------------------------------------------------------------------


def jsonl(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


RECORDS = (
    {" User_Id ": "j1", "EMAIL": "J1@X.IO", "signup_source": "ads", "score": {"b": 2, "a": [1.5, None]}},
    {"user_id": "j2", "email": "j2@x.io"},
    {"user_id": "j3", "email": "j3@x.io", "signup_source": None},
)


def test_json_keys_under_reject_are_matched_and_unknown_ones_rejected_per_record() -> None:
    items, _, rejections, report = validate(jsonl(*RECORDS), "jsonl", "reject")
    assert [item["user_id"]["S"] for item in items] == ["j2"]
    assert {r.line: r.reasons for r in rejections} == {
        1: ["signup_source: unknown field", "score: unknown field"],
        3: ["signup_source: unknown field"],
    }
    assert "rejected columns: score, signup_source (unknown" in report.decisions()[-1]


def test_json_keys_under_ignore_load_without_the_unknown_keys() -> None:
    items, extras, rejections, report = validate(jsonl(*RECORDS), "jsonl", "ignore")
    assert rejections == []
    assert schema_fields(items)[0] == {"user_id": {"S": "j1"}, "email": {"S": "j1@x.io"}}
    assert extras == []
    assert report.decisions() == [
        "matched columns by a variant of their name: ' User_Id ' as user_id, 'EMAIL' as email",
        "ignored columns: score, signup_source",
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_keys_under_keep_are_extras_as_text(fmt: Format) -> None:
    data = jsonl(*RECORDS) if fmt == "jsonl" else json.dumps(list(RECORDS)).encode()
    items, extras, rejections, _ = validate(data, fmt, "keep")
    assert rejections == []
    assert [item["user_id"]["S"] for item in items] == ["j1", "j2", "j3"]
    assert not any("signup_source" in item or "score" in item for item in items)
    # A value that is not a string is its JSON text, keys sorted (a replay gives the same bytes); null: none.
    assert extras == [{"signup_source": "ads", "score": '{"a":[1.5,null],"b":2}'}, {}, {}]


def test_a_json_key_given_twice_once_normalised_is_a_rejection_naming_both() -> None:
    _, _, rejections, _ = validate(
        jsonl({"user_id": "j1", "email": "a@b.co", "Email ": "c@d.co"}), "jsonl", "ignore"
    )
    assert rejections[0].reasons == ["email: given more than once, as 'email' and 'Email '"]


# --- the contract and its report --------------------------------------------------------------------------


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown_columns must be one of reject, ignore, keep"):
        Contract("drop")  # type: ignore[arg-type]


def test_users_reject_unknown_columns_by_default() -> None:
    assert USERS.contract == Contract("reject")


def test_a_schema_whose_names_differ_only_in_case_is_refused() -> None:
    class Clash(BaseModel):
        model_config = ConfigDict(extra="forbid")
        code: str
        CODE: str

    with pytest.raises(ValueError, match="differ only in case or spaces"):
        list(iter_validated_batches(io.BytesIO(b"code\nx\n"), schema=Clash, ref=REF, fmt="csv"))


def test_a_report_names_at_most_max_names_per_decision_and_survives_json() -> None:
    report = ContractReport()
    for n in range(MAX_NAMES + 5):
        report.note("ignored", f"c{n:02d}")
    again = ContractReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.decisions() == report.decisions()
    [line] = report.decisions()
    assert line.endswith(", and more")
    assert line.count(", c") == MAX_NAMES - 1


# --- manifests: a whole file and a file in parts -----------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (LANDING, QUARANTINE):
            s3.create_bucket(Bucket=bucket)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3, ddb


def big_csv(rows: int = 600) -> bytes:
    lines = [" User_ID ,EMAIL,age,signup_source"]
    lines += [f"u{n},u{n}@example.com,{20 + n % 60},src{n % 3}" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("policy", "status", "decision"),
    [
        ("reject", "quarantined", "rejected columns: signup_source (unknown"),
        ("ignore", "loaded", "ignored columns: signup_source"),
        ("keep", "loaded", "kept columns: signup_source (in the records' extras"),
    ],
)
def test_the_manifest_lists_the_decisions(
    aws: tuple[Any, Any], policy: UnknownColumns, status: str, decision: str
) -> None:
    s3, ddb = aws
    s3.put_object(Bucket=LANDING, Key=REF.key, Body=big_csv(20))  # a refused file is copied aside
    dataset = dataclasses.replace(USERS, contract=Contract(policy))
    manifest = load_stream(
        s3,
        TableWriter(ddb, TABLE, "user_id"),
        REF,
        dataset,
        io.BytesIO(big_csv(20)),
        quarantine_bucket=QUARANTINE,
    )
    assert manifest.status == status
    matched = "matched columns by a variant of their name: 'EMAIL' as email, 'User_ID' as user_id"
    if policy == "reject":
        # Refused at the header, before anything is matched: the one decision, and the error names it.
        [only] = manifest.contract_decisions
        assert only.startswith(decision)
        assert manifest.error is not None
        assert "'signup_source'" in manifest.error
        assert manifest.records_loaded == 0
    else:
        assert manifest.contract_decisions[0] == matched
        assert manifest.contract_decisions[1].startswith(decision)
        assert len(manifest.contract_decisions) == 2
        assert manifest.records_loaded == 20


def test_a_plain_file_has_no_decisions(aws: tuple[Any, Any]) -> None:
    s3, ddb = aws
    data = b"user_id,email\nu1,a@b.co\n"
    manifest = load_stream(
        s3, TableWriter(ddb, TABLE, "user_id"), REF, USERS, io.BytesIO(data), quarantine_bucket=QUARANTINE
    )
    assert (manifest.status, manifest.contract_decisions) == ("loaded", [])


def test_a_file_in_parts_shows_each_decision_once(aws: tuple[Any, Any]) -> None:
    s3, ddb = aws
    body = big_csv()
    s3.put_object(Bucket=LANDING, Key=REF.key, Body=body)
    ref = dataclasses.replace(REF, size=len(body))
    dataset = dataclasses.replace(USERS, contract=Contract("ignore"))
    parts = plan_parts(lambda start, end: body[start:end], len(body), "csv", len(body) // 4)
    assert len(parts) >= 3
    assert all(part.header == " User_ID ,EMAIL,age,signup_source" for part in parts[1:])
    writer = TableWriter(ddb, TABLE, "user_id")
    for part in parts:
        assert load_part(s3, writer, ref, dataset, part, quarantine_bucket=QUARANTINE, batch_size=100)
    manifest = finish(s3, ref, dataset, parts[-1], quarantine_bucket=QUARANTINE)
    assert (manifest.status, manifest.records_loaded, manifest.parts_done) == ("loaded", 600, len(parts))
    assert manifest.contract_decisions == [
        "matched columns by a variant of their name: 'EMAIL' as email, 'User_ID' as user_id",
        "ignored columns: signup_source",
    ]
    item = ddb.get_item(TableName=TABLE, Key={"user_id": {"S": "u599"}})["Item"]
    assert "signup_source" not in item


def test_json_lines_parts_merge_the_keys_each_met(aws: tuple[Any, Any]) -> None:
    s3, ddb = aws
    records = [{"user_id": f"j{n}", "email": f"j{n}@x.io", f"extra{n // 100}": "x"} for n in range(400)]
    body = jsonl(*records)
    key = "in/users.jsonl"
    s3.put_object(Bucket=LANDING, Key=key, Body=body)
    ref = ObjectRef(bucket=LANDING, key=key, event_time=REF.event_time, size=len(body))
    dataset = dataclasses.replace(USERS, contract=Contract("keep"))
    parts = plan_parts(lambda start, end: body[start:end], len(body), "jsonl", len(body) // 4)
    assert len(parts) >= 3
    writer = TableWriter(ddb, TABLE, "user_id")
    for part in parts:
        load_part(s3, writer, ref, dataset, part, quarantine_bucket=QUARANTINE, batch_size=100)
    manifest = finish(s3, ref, dataset, parts[-1], quarantine_bucket=QUARANTINE)
    assert manifest.contract_decisions == [
        "kept columns: extra0, extra1, extra2, extra3 (in the records' extras, not in the table)"
    ]
