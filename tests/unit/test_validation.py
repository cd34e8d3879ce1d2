"""Validation in batches: DynamoDB items with lineage, per-record rejections, file-level errors."""

from __future__ import annotations

import gzip
import io
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from pipeline.objects import ObjectRef
from pipeline.readers import Format, UnreadableFileError
from pipeline.schemas import UserRecord
from pipeline.validation import Rejection, ValidatedBatch, iter_validated_batches

REF = ObjectRef(
    bucket="landing",
    key="incoming/users 2024.csv",
    event_time=datetime(2024, 5, 1, 12, 30, 5, 250000, tzinfo=UTC),
    version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
)
LINEAGE = {
    "source_bucket": {"S": "landing"},
    "source_key": {"S": "incoming/users 2024.csv"},
    "source_version": {"S": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
    "source_event_time": {"S": "2024-05-01T12:30:05.250000Z"},
    "source_order": {
        "S": "2024-05-01T12:30:05.250000Z|incoming/users 2024.csv|3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    },
}


def batches(data: bytes, fmt: Format, **kwargs: Any) -> list[ValidatedBatch]:
    return list(iter_validated_batches(io.BytesIO(data), schema=UserRecord, ref=REF, fmt=fmt, **kwargs))


def load(
    data: bytes, fmt: Format, **kwargs: Any
) -> tuple[list[dict[str, dict[str, str]]], list[Rejection], int]:
    found = batches(data, fmt, **kwargs)
    items = [item for batch in found for item in batch.items]
    rejections = [rejection for batch in found for rejection in batch.rejections]
    return items, rejections, sum(batch.records_read for batch in found)


def reasons_by_line(rejections: list[Rejection]) -> dict[int, list[str]]:
    return {rejection.line: rejection.reasons for rejection in rejections}


# --- items ----------------------------------------------------------------------------------------------


def test_article_csv_becomes_normalised_items_with_lineage() -> None:
    data = (
        "\ufeffUserId,FirstName,LastName,Email,Gender,Age\r\n"
        "u1, Ann ,Lee, Ann.Lee@Example.COM ,F,42\r\n"
        "u2,Bob,,bob@example.com,,\r\n"
    ).encode()
    items, rejections, read = load(data, "csv")
    assert rejections == []
    assert read == 2
    assert items == [
        {
            "user_id": {"S": "u1"},
            "first_name": {"S": "Ann"},
            "last_name": {"S": "Lee"},
            "email": {"S": "ann.lee@example.com"},
            "gender": {"S": "F"},
            "age": {"N": "42"},
            **LINEAGE,
            "line": {"N": "2"},
        },
        # Empty optional values are left out: no empty strings reach DynamoDB.
        {
            "user_id": {"S": "u2"},
            "first_name": {"S": "Bob"},
            "email": {"S": "bob@example.com"},
            **LINEAGE,
            "line": {"N": "3"},
        },
    ]


def test_unversioned_object_has_the_null_version() -> None:
    ref = ObjectRef(bucket="b", key="users.jsonl", event_time=datetime(2024, 1, 2, tzinfo=UTC))
    data = b'{"user_id": "u1", "email": "a@b.cc"}\n'
    [batch] = iter_validated_batches(io.BytesIO(data), schema=UserRecord, ref=ref, fmt="jsonl")
    assert batch.items[0]["source_version"] == {"S": "null"}
    assert batch.items[0]["source_order"] == {"S": "2024-01-02T00:00:00.000000Z|users.jsonl|null"}


USERS: list[dict[str, Any]] = [
    {"user_id": "u1", "first_name": "Ann", "email": "ann@example.com", "age": 42},
    {"UserId": "u2", "Email": "BOB@example.com", "Gender": "M"},
    {"user_id": 3, "email": "c@example.com", "age": "7"},
]
EXPECTED = [
    {
        "user_id": {"S": "u1"},
        "first_name": {"S": "Ann"},
        "email": {"S": "ann@example.com"},
        "age": {"N": "42"},
    },
    {"user_id": {"S": "u2"}, "email": {"S": "bob@example.com"}, "gender": {"S": "M"}},
    {"user_id": {"S": "3"}, "email": {"S": "c@example.com"}, "age": {"N": "7"}},
]


def _encode(fmt: Format, records: list[dict[str, Any]]) -> bytes:
    if fmt == "jsonl":
        return b"".join(orjson.dumps(record) + b"\n" for record in records)
    return orjson.dumps(records, option=orjson.OPT_INDENT_2)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_json_formats_give_items_numbered_by_line_or_position(fmt: Format, gzipped: bool) -> None:
    data = _encode(fmt, USERS)
    items, rejections, read = load(gzip.compress(data) if gzipped else data, fmt, gzipped=gzipped)
    assert (rejections, read) == ([], 3)
    assert [{k: v for k, v in item.items() if k not in LINEAGE and k != "line"} for item in items] == EXPECTED
    assert [item["line"] for item in items] == [{"N": "1"}, {"N": "2"}, {"N": "3"}]


def test_gzipped_csv_gives_the_same_items() -> None:
    data = b"user_id;email;age\nu1;a@b.cc;1\nu2;c@d.ee;2\n"
    assert load(gzip.compress(data), "csv", gzipped=True, delimiter=";") == load(data, "csv", delimiter=";")


def test_duplicate_user_ids_in_one_file_are_both_kept() -> None:
    data = b"user_id,email\nu1,a@b.cc\nu1,other@b.cc\n"
    items, _, _ = load(data, "csv")
    assert [(item["user_id"]["S"], item["email"]["S"], item["line"]["N"]) for item in items] == [
        ("u1", "a@b.cc", "2"),
        ("u1", "other@b.cc", "3"),
    ]


def test_replaying_a_file_gives_byte_identical_items() -> None:
    data = _mixed_file(300)
    first = batches(data, "csv", batch_size=64)
    second = batches(data, "csv", batch_size=64)
    assert orjson.dumps([batch.items for batch in first]) == orjson.dumps([batch.items for batch in second])
    assert all(
        item[name] == value for batch in first for item in batch.items for name, value in LINEAGE.items()
    )


# --- a file with 10% bad rows ------------------------------------------------------------------------

BAD_ROWS = [
    ("u{n},Ann,Lee,not-an-email,F,30", ["email: value is not a valid email address"]),
    ("u{n},Ann,Lee,a{n}@b.cc,F,42.5", ["age: must be an integer between 0 and 150"]),
    (",Ann,Lee,a{n}@b.cc,F,30", ["user_id: required field is empty"]),
    ("u{n},Ann,Lee,a{n}@b.cc,F,abc", ["age: must be an integer between 0 and 150"]),
    ("u{n},Ann,Lee,a{n}@b.cc,F", ["row has 5 fields but the header has 6"]),
    (
        "  ,Ann,Lee,,F,200",
        [
            # "  " is a value (so not "empty"), blank once trimmed
            "user_id: must be a non-empty string of at most 256 characters",
            "email: required field is empty",
            "age: must be an integer between 0 and 150",
        ],
    ),
]


def _mixed_file(rows: int) -> bytes:
    """A users CSV whose every tenth row (rows 10, 20, ...: lines 11, 21, ...) is bad in some way."""
    lines = ["user_id,first_name,last_name,email,gender,age"]
    for n in range(1, rows + 1):
        if n % 10 == 0:
            lines.append(BAD_ROWS[(n // 10) % len(BAD_ROWS)][0].format(n=n))
        else:
            lines.append(f"u{n},First{n},Last{n},user{n}@example.com,{'FM'[n % 2]},{n % 100}")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("batch_size", [1, 7, 100, 1000])
def test_ten_percent_bad_rows_are_rejected_exactly_and_alone(batch_size: int) -> None:
    found = batches(_mixed_file(200), "csv", batch_size=batch_size)
    items = [item for batch in found for item in batch.items]
    rejections = [rejection for batch in found for rejection in batch.rejections]
    assert all(
        batch.records_read == len(batch.items) + len(batch.rejections) <= batch_size for batch in found
    )
    assert sum(batch.records_read for batch in found) == 200
    assert len(items) == 180
    assert len(rejections) == 20
    assert [int(item["line"]["N"]) for item in items] == [n + 1 for n in range(1, 201) if n % 10]
    assert reasons_by_line(rejections) == {
        n + 1: BAD_ROWS[(n // 10) % len(BAD_ROWS)][1] for n in range(10, 201, 10)
    }
    rejected = {rejection.line: rejection.record for rejection in rejections}
    assert rejected[11] == {
        "user_id": "u10",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "a10@b.cc",
        "gender": "F",
        "age": "42.5",
    }
    assert rejected[41] == ["u40", "Ann", "Lee", "a40@b.cc", "F"]


def test_one_malformed_json_line_is_a_rejection_with_its_line_number() -> None:
    data = (
        b'{"user_id": "u1", "email": "a@b.cc"}\n'
        b"\n"
        b'{"user_id": "u2", "email": \n'
        b'{"user_id": "u3", "email": "c@d.ee"}\n'
    )
    items, rejections, read = load(data, "jsonl")
    assert read == 3
    assert [item["user_id"]["S"] for item in items] == ["u1", "u3"]
    assert [item["line"]["N"] for item in items] == ["1", "4"]
    [rejection] = rejections
    assert rejection.line == 3
    assert rejection.record == '{"user_id": "u2", "email": '
    assert rejection.reasons[0].startswith("invalid JSON: ")


def test_json_lines_rejections_name_every_problem() -> None:
    lines = [
        b'{"user_id": "u1", "email": "a@b.cc", "age": true}',
        b'{"user_id": "u2", "UserId": "x", "email": "a@b.cc"}',
        b"[1, 2]",
        b'"just a string"',
        b'{"user_id": "u5", "email": "a@b.cc", "country": "IE", "age": -1}',
        b'{"first_name": "Ann"}',
        b'{"user_id": null, "email": "A@B.CC"}',
        b'{"user_id": "u8", "email": "ok@b.cc"}',
    ]
    items, rejections, read = load(b"\r\n".join(lines), "jsonl")
    assert read == 8
    assert [item["user_id"]["S"] for item in items] == ["u8"]
    assert reasons_by_line(rejections) == {
        1: ["age: must be an integer between 0 and 150"],
        2: ["user_id: given more than once, as 'user_id' and 'UserId'"],
        3: ["record: must be a JSON object, not an array"],
        4: ["record: must be a JSON object, not a string"],
        5: ["age: must be an integer between 0 and 150", "country: unknown field"],
        6: ["user_id: required field is missing", "email: required field is missing"],
        7: ["user_id: must be a non-empty string of at most 256 characters"],
    }
    assert rejections[0].record == '{"user_id": "u1", "email": "a@b.cc", "age": true}'  # text, \r removed


def test_json_array_rejections_keep_the_element_as_record() -> None:
    data = b'[{"user_id": "u1", "email": "a@b.cc"}, {"user_id": "u2", "email": "bad", "age": 3.5}, 7]'
    items, rejections, _ = load(data, "json")
    assert len(items) == 1
    assert rejections == [
        Rejection(
            2,
            ["email: value is not a valid email address", "age: must be an integer between 0 and 150"],
            {"user_id": "u2", "email": "bad", "age": 3.5},
        ),
        Rejection(3, ["record: must be a JSON object, not a number"], 7),
    ]


def test_rejected_records_are_json_serialisable() -> None:
    data = b'{"user_id": "u1", "email": "x"}\n{oops\n"s"\n'
    _, rejections, _ = load(data, "jsonl")
    _, csv_rejections, _ = load(_mixed_file(100), "csv")
    for rejection in rejections + csv_rejections:
        orjson.dumps({"line": rejection.line, "reasons": rejection.reasons, "record": rejection.record})


def test_a_batch_of_only_bad_records_yields_only_rejections() -> None:
    [batch] = batches(b'{"user_id": ""}\n{}\n', "jsonl")
    assert (batch.items, len(batch.rejections), batch.records_read) == ([], 2, 2)


# --- file-level problems ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_a_zero_byte_file_yields_no_batch(fmt: Format) -> None:
    assert batches(b"", fmt) == []


def test_a_header_only_csv_yields_no_batch() -> None:
    assert batches(b"UserId,FirstName,LastName,Email,Gender,Age\r\n", "csv") == []


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "u1,Ann,Lee,ann@example.com,F,42",
            "CSV header missing or not recognised: the first line is 'u1, Ann",
        ),
        (
            "user_id,email,country",
            "CSV header has unknown column\\(s\\) 'country'; expected user_id, first_name",
        ),
        ("user_id,first_name", "CSV header lacks the required column\\(s\\) email"),
        ("user_id,UserId,email", "CSV header gives the field\\(s\\) user_id in two columns"),
    ],
)
def test_csv_header_that_cannot_give_valid_records_is_a_file_error(header: str, message: str) -> None:
    with pytest.raises(UnreadableFileError, match=message):
        batches(f"{header}\nu1,a,b\n".encode(), "csv")


def test_binary_file_named_users_csv_is_a_file_error() -> None:
    with pytest.raises(UnreadableFileError):
        batches(random.Random(3).randbytes(10_000), "csv")


def test_unparseable_json_array_is_a_file_error() -> None:
    with pytest.raises(UnreadableFileError, match="invalid JSON array after element 1"):
        batches(b'[{"user_id": "u1", "email": "a@b.cc"}, {"user_id": ', "json")


def test_truncated_gzip_fails_after_the_batches_before_the_damage() -> None:
    data = gzip.compress(_mixed_file(40_000))  # 2 MiB: the damage is past the first read chunk
    stream = iter_validated_batches(
        io.BytesIO(data[: len(data) * 3 // 4]),
        schema=UserRecord,
        ref=REF,
        fmt="csv",
        gzipped=True,
        batch_size=500,
    )
    assert len(next(stream).items) == 450
    with pytest.raises(UnreadableFileError, match="truncated gzip data"):
        list(stream)


def test_a_bad_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        batches(b"", "csv", batch_size=0)


# --- other schemas ---------------------------------------------------------------------------------------


class _Priced(BaseModel):
    sku: str
    price: float
    qty: int | None = None


def test_any_schema_of_strings_and_numbers_becomes_items() -> None:
    data = b'{"sku": "a", "price": 2.5}\n{"sku": "b", "price": 3, "qty": 0}\n'
    [batch] = iter_validated_batches(io.BytesIO(data), schema=_Priced, ref=REF, fmt="jsonl")
    assert [{k: v for k, v in item.items() if k in {"sku", "price", "qty"}} for item in batch.items] == [
        {"sku": {"S": "a"}, "price": {"N": "2.5"}},
        {"sku": {"S": "b"}, "price": {"N": "3.0"}, "qty": {"N": "0"}},
    ]


class _Nested(BaseModel):
    tags: list[str]


class _Clash(BaseModel):
    line: int


def test_schemas_that_cannot_become_items_are_refused_up_front() -> None:
    with pytest.raises(
        TypeError, match=r"_Nested\.tags: only str, int, float, Decimal, AwareDatetime and dict fields"
    ):
        list(iter_validated_batches(io.BytesIO(b""), schema=_Nested, ref=REF, fmt="jsonl"))
    with pytest.raises(ValueError, match=r"_Clash\.line clashes with a lineage attribute"):
        list(iter_validated_batches(io.BytesIO(b""), schema=_Clash, ref=REF, fmt="jsonl"))
