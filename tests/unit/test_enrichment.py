"""Enrichment: each derived field, lookups in versioned reference data, determinism, and clear failures."""

from __future__ import annotations

import dataclasses
import io
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from pipeline.config import ConfigError, DatabaseSettings
from pipeline.database import TableWriter
from pipeline.datasets import DATASETS, USERS, USERS_ENRICHMENT, Dataset
from pipeline.enrichment import (
    Derived,
    Enricher,
    Enrichers,
    Enrichment,
    ReferenceDataError,
    ReferenceStore,
    age_band,
    build_enricher,
    email_domain,
    reference_key,
)
from pipeline.loader import load_stream
from pipeline.objects import ObjectRef
from pipeline.parts import finish, load_part
from pipeline.schemas import UserRecord
from pipeline.splits import plan_parts
from pipeline.validation import iter_validated_batches

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
LAKE, LANDING, QUARANTINE, TABLE = "lake", "landing", "quarantine", "users"
REF = ObjectRef(bucket=LANDING, key="in/users.csv", event_time=datetime(2026, 3, 1, tzinfo=UTC))
V1 = (REFERENCE / "email_providers/v1/email_providers.csv").read_bytes()


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (LAKE, LANDING, QUARANTINE):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=LAKE, Key=reference_key("email_providers", "v1"), Body=V1)
        yield client


def enricher(s3: Any, versions: dict[str, str] | None = None) -> Enricher:
    return build_enricher(USERS_ENRICHMENT, ReferenceStore(s3, LAKE), versions or {})


def items(data: bytes) -> list[dict[str, Any]]:
    batches = iter_validated_batches(io.BytesIO(data), schema=UserRecord, ref=REF, fmt="csv")
    return [item for batch in batches for item in batch.items]


# --- derived fields ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("ann@example.com", "example.com"),
        ("Ann@Sub.Example.COM", "sub.example.com"),
        ("a@b@c.io", "c.io"),  # the domain is after the last @
        ("x@BÜCHER.de", "bücher.de"),
        (unicodedata.normalize("NFD", "x@bücher.de"), "bücher.de"),  # one spelling (NFC) per domain
        ("no-at-sign", None),
        ("trailing@", None),
        ("", None),
    ],
)
def test_email_domain(email: str, domain: str | None) -> None:
    assert email_domain(email) == domain


@pytest.mark.parametrize(
    ("age", "band"),
    [
        ("0", "0-17"),
        ("17", "0-17"),
        ("18", "18-24"),
        ("24", "18-24"),
        ("25", "25-34"),
        ("34", "25-34"),
        ("35", "35-44"),
        ("54", "45-54"),
        ("55", "55-64"),
        ("64", "55-64"),
        ("65", "65+"),
        ("150", "65+"),
        ("-1", None),
        ("abc", None),
        ("", None),
    ],
)
def test_age_band_at_the_boundaries(age: str, band: str | None) -> None:
    assert age_band(age) == band


def test_users_records_are_enriched_and_carry_the_enricher_version(s3: Any) -> None:
    found = items(
        (
            "user_id,email,age\n"
            "u1,Ann@GMAIL.com,24\n"
            "u2,bob@cs.ox.ac.uk,65\n"
            "u3,carol@example.com,\n"
            "u4,dora@bücher.de,18\n"
        ).encode()
    )
    enricher(s3).apply(found)
    added = [
        {k: v["S"] for k, v in item.items() if k in {"email_domain", "age_band", "email_provider"}}
        for item in found
    ]
    assert added == [
        {"email_domain": "gmail.com", "age_band": "18-24", "email_provider": "free-mail"},
        {"email_domain": "cs.ox.ac.uk", "age_band": "65+", "email_provider": "education"},  # via ac.uk
        {"email_domain": "example.com", "email_provider": "corporate"},  # no age: no band
        {"email_domain": "bücher.de", "age_band": "18-24", "email_provider": "corporate"},
    ]
    assert {item["enricher_version"]["S"] for item in found} == {"users-enricher/1+email_providers/v1"}


def test_a_record_without_the_source_gets_no_derived_field() -> None:
    bare = Enricher(version="t/1", steps=(("email_domain", "email", email_domain),))
    item: dict[str, Any] = {"user_id": {"S": "u1"}}
    bare.apply([item])
    assert item == {"user_id": {"S": "u1"}, "enricher_version": {"S": "t/1"}}


# --- determinism and versions ----------------------------------------------------------------------------


def test_the_same_record_and_version_give_byte_identical_items(s3: Any) -> None:
    data = b"user_id,email,age\nu1,a@yahoo.com,30\nu2,b@uni.edu,44\n"
    first, second = items(data), items(data)
    enricher(s3).apply(first)
    enricher(s3).apply(second)  # a second process: tables read again
    sort = orjson.OPT_SORT_KEYS
    assert orjson.dumps(first, option=sort) == orjson.dumps(second, option=sort)


def test_a_new_reference_version_changes_the_output_and_the_version(s3: Any) -> None:
    s3.put_object(
        Bucket=LAKE,
        Key=reference_key("email_providers", "v2"),
        Body=V1 + b"example.com,education\n",
    )
    data = b"user_id,email\nu1,a@example.com\n"
    old, new = items(data), items(data)
    enricher(s3).apply(old)
    enricher(s3, {"email_providers": "v2"}).apply(new)
    assert (old[0]["email_provider"], old[0]["enricher_version"]) == (
        {"S": "corporate"},
        {"S": "users-enricher/1+email_providers/v1"},
    )
    assert (new[0]["email_provider"], new[0]["enricher_version"]) == (
        {"S": "education"},
        {"S": "users-enricher/1+email_providers/v2"},
    )


def test_a_reference_table_is_read_once_per_process(s3: Any) -> None:
    gets: list[str] = []
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: gets.append(params["Key"])
    )
    enrichers = Enrichers(ReferenceStore(s3, LAKE), {})
    assert enrichers.get(USERS) is enrichers.get(USERS)
    assert enrichers.get(dataclasses.replace(USERS, enrichment=None)) is None
    assert gets == [reference_key("email_providers", "v1")]


# --- failures are loud ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            None,
            r"reference table email_providers v3 "
            r"\(s3://lake/reference/email_providers/v3/email_providers.csv\) cannot be read: NoSuchKey",
        ),
        (b"", "lacks the column\\(s\\) domain, kind"),
        (b"domain,kind\n", "has no rows"),
        (b"domain,provider\ngmail.com,free-mail\n", "lacks the column\\(s\\) kind"),
        (b"domain,kind\ngmail.com,free-mail\nGMAIL.com,education\n", "'gmail.com' is given two values"),
        (b"domain,kind\ngmail.com,\n", "line 2: 'gmail.com' has no kind"),
        (b"domain,kind\n\xff\n", "is not UTF-8 text"),
    ],
)
def test_a_missing_or_bad_reference_table_is_an_error_not_an_empty_lookup(
    s3: Any, body: bytes | None, message: str
) -> None:
    if body is not None:
        s3.put_object(Bucket=LAKE, Key=reference_key("email_providers", "v3"), Body=body)
    with pytest.raises(ReferenceDataError, match=message):
        enricher(s3, {"email_providers": "v3"})


def test_a_failed_table_is_read_again_once_it_is_there(s3: Any) -> None:
    enrichers = Enrichers(ReferenceStore(s3, LAKE), {"email_providers": "v2"})
    with pytest.raises(ReferenceDataError):
        enrichers.get(USERS)
    s3.put_object(Bucket=LAKE, Key=reference_key("email_providers", "v2"), Body=V1)
    found = enrichers.get(USERS)
    assert found is not None
    assert found.version == "users-enricher/1+email_providers/v2"


def test_without_a_lake_bucket_the_error_says_so(s3: Any) -> None:
    with pytest.raises(ReferenceDataError, match="PIPELINE_DATALAKE_BUCKET is not set"):
        build_enricher(USERS_ENRICHMENT, ReferenceStore(s3, None), {})


def test_configured_versions_are_parsed_and_bad_ones_refused() -> None:
    env = {"PIPELINE_QUARANTINE_BUCKET": "p-dev-quarantine", "PIPELINE_USERS_TABLE": "p-dev-users"}
    settings = DatabaseSettings.from_env(
        DATASETS,
        {
            **env,
            "PIPELINE_DATALAKE_BUCKET": "p-dev-lake",
            "PIPELINE_REFERENCE_VERSIONS": "email_providers=v2, plans=v1",
        },
    )
    assert (settings.reference_bucket, dict(settings.reference_versions)) == (
        "p-dev-lake",
        {"email_providers": "v2", "plans": "v1"},
    )
    with pytest.raises(ConfigError, match="PIPELINE_REFERENCE_VERSIONS: 'email_providers=2' is not table=vN"):
        DatabaseSettings.from_env(
            DATASETS,
            {
                **env,
                "PIPELINE_DATALAKE_BUCKET": "p-dev-lake",
                "PIPELINE_REFERENCE_VERSIONS": "email_providers=2",
            },
        )


def test_an_enrichment_that_would_overwrite_or_read_nothing_is_refused() -> None:
    def upper(text: str) -> str:
        return text.upper()

    for step, message in (
        (Derived("email", "email", upper), "would overwrite a field"),
        (Derived("source_key", "email", upper), "would overwrite a field"),
        (Derived("shout", "country", upper), "reads unknown 'country'"),
    ):
        with pytest.raises(ValueError, match=message):
            Dataset(
                name="x",
                schema=UserRecord,
                key_field="user_id",
                table_env="X",
                enrichment=Enrichment("x", 1, (step,)),
            )


# --- in the loader: whole files and parts -----------------------------------------------------------------


@pytest.fixture
def ddb(s3: Any) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def test_the_loader_writes_enriched_items_and_names_the_version_in_the_manifest(s3: Any, ddb: Any) -> None:
    data = b"user_id,email,age\nu1,a@gmail.com,40\n"
    manifest = load_stream(
        s3,
        TableWriter(ddb, TABLE, "user_id"),
        REF,
        USERS,
        io.BytesIO(data),
        quarantine_bucket=QUARANTINE,
        enricher=enricher(s3),
    )
    assert (manifest.status, manifest.enricher_version) == ("loaded", "users-enricher/1+email_providers/v1")
    item = ddb.get_item(TableName=TABLE, Key={"user_id": {"S": "u1"}})["Item"]
    assert (item["email_provider"], item["age_band"], item["enricher_version"]) == (
        {"S": "free-mail"},
        {"S": "35-44"},
        {"S": "users-enricher/1+email_providers/v1"},
    )


def test_parts_are_enriched_and_the_file_manifest_names_the_version(s3: Any, ddb: Any) -> None:
    body = ("user_id,email,age\n" + "".join(f"u{n},u{n}@outlook.com,{n % 90}\n" for n in range(500))).encode()
    s3.put_object(Bucket=LANDING, Key=REF.key, Body=body)
    ref = dataclasses.replace(REF, size=len(body))
    parts = plan_parts(lambda start, end: body[start:end], len(body), "csv", len(body) // 3)
    assert len(parts) >= 3
    writer, bound = TableWriter(ddb, TABLE, "user_id"), enricher(s3)
    for part in parts:
        load_part(s3, writer, ref, USERS, part, quarantine_bucket=QUARANTINE, batch_size=100, enricher=bound)
    manifest = finish(s3, ref, USERS, parts[-1], quarantine_bucket=QUARANTINE)
    assert manifest.records_loaded == 500
    assert manifest.enricher_version == "users-enricher/1+email_providers/v1"
    scanned = ddb.scan(TableName=TABLE)["Items"]
    assert len(scanned) == 500
    assert {item["email_provider"]["S"] for item in scanned} == {"free-mail"}
    assert scanned[0]["enricher_version"] == {"S": "users-enricher/1+email_providers/v1"}
