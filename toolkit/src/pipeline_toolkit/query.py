"""``pipeline query``: SQL over the data lake on an emulator, with DuckDB, as Athena runs it on AWS.

The tables are the Glue catalogue's (``terraform/modules/catalog``), with the same columns:

- ``users`` and ``events``: the curated zone, ``curated/dataset=<name>/ingest_date=<YYYY-MM-DD>/*.parquet`` in
  the data lake bucket, with ``ingest_date`` (the Hive partition) as a column. Every file is read with the
  catalogue's schema, so a column a file lacks reads as null (files written before a column was appended),
  as in Athena; a column the catalogue does not list is not seen, as in Athena.
- ``rejects``: the rejected records, ``rejects/**.jsonl`` in the quarantine bucket (JSON Lines).

Objects are read through pyarrow's S3 filesystem aimed at ``AWS_ENDPOINT_URL`` (the embedded emulator,
LocalStack), since DuckDB's own S3 support is an extension it would download. Without an endpoint the same
reads go to S3 itself, which works but scans from this machine: on AWS, Athena (the stack's workgroup and
named queries) is the way.

The named queries are the ``.sql`` files of the catalog module, run here byte for byte as Athena runs them:
they keep to SQL that Trino (Athena engine 3) and DuckDB read alike, which ``tests/toolkit/test_query.py``
holds them to, so no translation is needed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.json as pajson
from pyarrow import fs as pafs
from rich.table import Table
from rich.text import Text

from pipeline import curated
from pipeline.datasets import EVENTS, USERS
from pipeline_toolkit.project import stack_dir

Format = Literal["table", "csv", "json"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json")

#: Where the curated zone starts in the data lake bucket (the catalog module's ``curated_prefix``).
CURATED_PREFIX = "curated/"
#: Where the rejects are in the quarantine bucket (``pipeline.manifests.REJECTS_PREFIX``).
REJECTS_PREFIX = "rejects/"

#: The Glue tables' columns, in the catalogue's order (a test compares them with the Terraform module). The
#: curated tables' are the Parquet writer's own schemas: one declaration, in the registry.
SCHEMAS: Mapping[str, pa.Schema] = {
    **{dataset.name: curated.arrow_schema(dataset) for dataset in (USERS, EVENTS)},
    "rejects": pa.schema(
        [
            ("source_bucket", pa.string()),
            ("source_key", pa.string()),
            ("source_version", pa.string()),
            ("source_event_time", pa.string()),
            ("source_order", pa.string()),
            ("uploaded_by", pa.string()),  # only in the rejects of files that name their uploader
            ("line", pa.int64()),
            ("reasons", pa.list_(pa.string())),
        ]
    ),
}
#: The partition column of the curated tables (a string, as in the catalogue).
PARTITION = pa.field("ingest_date", pa.string())
CURATED_TABLES = ("users", "events")


class QueryError(RuntimeError):
    """The query could not be run; the message says why."""


@dataclass(frozen=True, slots=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


# --- reading the lake -----------------------------------------------------------------------------------


def s3_filesystem(environment: Mapping[str, str], region: str) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for the target ``environment`` describes (its endpoint and credentials)."""
    options: dict[str, Any] = {"region": region}
    endpoint = environment.get("AWS_ENDPOINT_URL") or ""
    if endpoint:
        parts = urlsplit(endpoint)
        options["endpoint_override"] = parts.netloc or parts.path
        options["scheme"] = parts.scheme or "https"
    key = environment.get("AWS_ACCESS_KEY_ID") or ""
    secret = environment.get("AWS_SECRET_ACCESS_KEY") or ""
    if key and secret:  # else pyarrow's own default chain (profile, instance role...)
        options["access_key"] = key
        options["secret_key"] = secret
        options["session_token"] = environment.get("AWS_SESSION_TOKEN") or None
    return pafs.S3FileSystem(**options)


def _files(filesystem: pafs.FileSystem, base: str, suffix: str) -> list[str]:
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    return sorted(
        info.path
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File and info.path.endswith(suffix)
    )


def curated_dataset(filesystem: pafs.FileSystem, bucket: str, name: str) -> pads.Dataset:
    """The curated zone's ``dataset=<name>`` files as one dataset, with the catalogue's columns."""
    base = f"{bucket}/{CURATED_PREFIX}dataset={name}"
    partitioning = pads.partitioning(pa.schema([PARTITION]), flavor="hive")
    return pads.dataset(
        _files(filesystem, base, ".parquet"),
        schema=SCHEMAS[name].append(PARTITION),
        format="parquet",
        filesystem=filesystem,
        partitioning=partitioning,
        partition_base_dir=base,
    )


def rejects_table(filesystem: pafs.FileSystem, bucket: str) -> pa.Table:
    """Every rejects object of the quarantine bucket, one row per rejected record."""
    schema = SCHEMAS["rejects"]
    # The record as read has no one type (an object, a list, a text): left out, as in the Glue table.
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    tables = []
    for path in _files(filesystem, f"{bucket}/{REJECTS_PREFIX.rstrip('/')}", ".jsonl"):
        with filesystem.open_input_stream(path) as stream:
            tables.append(pajson.read_json(stream, parse_options=options).select(schema.names))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def referenced_tables(sql: str) -> list[str]:
    """The catalogue's tables ``sql`` mentions (as words): only those are listed and registered."""
    words = set(re.findall(r"[a-z_][a-z0-9_]*", sql.lower()))
    return [name for name in SCHEMAS if name in words]


def run_sql(
    sql: str,
    *,
    filesystem: pafs.FileSystem,
    datalake_bucket: str,
    quarantine_bucket: str,
) -> Result:
    """Run ``sql`` with the catalogue's tables registered. :class:`QueryError` when DuckDB refuses it."""
    connection = duckdb.connect()
    try:
        # Timestamps print in UTC, as Athena shows them, whatever this machine's zone.
        connection.execute("SET TimeZone = 'UTC'")
        for name in referenced_tables(sql):
            source: pads.Dataset | pa.Table = (
                curated_dataset(filesystem, datalake_bucket, name)
                if name in CURATED_TABLES
                else rejects_table(filesystem, quarantine_bucket)
            )
            connection.register(name, source)
        try:
            cursor = connection.execute(sql)
        except duckdb.Error as error:
            raise QueryError(str(error)) from error
        columns = [column[0] for column in cursor.description or []]
        return Result(columns, cursor.fetchall())
    finally:
        connection.close()


# --- named queries --------------------------------------------------------------------------------------


def named_queries_dir(root: Path | None = None) -> Path:
    return stack_dir(root) / "modules" / "catalog" / "queries"


def named_queries(root: Path | None = None) -> dict[str, str]:
    """Name -> SQL text of each named query of the catalogue (the files Terraform reads with file())."""
    return {
        path.stem: path.read_text(encoding="utf-8") for path in sorted(named_queries_dir(root).glob("*.sql"))
    }


def describe(sql: str) -> str:
    """A named query's description: its leading comment, joined into one line."""
    lines = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines)


# --- output ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as JSON carries it: timestamps and dates in ISO 8601, decimals as numbers."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    plain = _plain(value)
    return json.dumps(plain) if isinstance(plain, list | dict) else str(plain)


def to_json(result: Result) -> str:
    """One JSON object per row, in an array (column order kept)."""
    rows = [dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def to_csv(result: Result) -> str:
    """CSV with a header; null is an empty field, a list or map its JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([_text(value) for value in row] for row in result.rows)
    return buffer.getvalue()


def to_table(result: Result, title: str | None = None) -> Table:
    table = Table(title=title, caption=f"{len(result.rows)} row(s)")
    for column in result.columns:
        table.add_column(column, overflow="fold")
    for row in result.rows:
        # Text, not markup: a value such as ["a"] must print as it is.
        table.add_row(*(Text("null", style="dim") if value is None else Text(_text(value)) for value in row))
    return table


def render(result: Result, output_format: Format) -> str | Table:
    if output_format == "json":
        return to_json(result)
    if output_format == "csv":
        return to_csv(result)
    return to_table(result)
