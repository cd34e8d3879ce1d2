"""The curated zone: the valid records of each unit of work as one Parquet object in the data lake bucket.

Layout (the Glue catalogue and ``pipeline query`` read exactly this)::

    curated/dataset=<dataset>/ingest_date=<YYYY-MM-DD>/<name>.parquet

``ingest_date`` is the S3 event's date, as for the raw lake copy (:func:`pipeline.datalake.lake_key`), so a
replay lands in the same partition. ``<name>`` is a digest of (source key, source version, unit of work,
first record): a unit is a whole file, or one part of a big file (:mod:`pipeline.parts`), and a part that
resumed after running out of time (a *continuation*) writes its remaining records under its own start. So a
replay or a duplicate delivery writes the same object again (same name, same bytes: nothing in it depends
on the wall clock or on batch boundaries), never a second one. Zero valid records write no object.

Columns: the dataset's declared ``columns`` (:mod:`pipeline.datasets`, the one place they are declared, in
order), then the lineage every dataset gets: ``source_key``, ``source_version``, ``source_order`` (the
same order the table items carry), ``source_line`` (int64, the record's line in the original file) and
``event_time`` (timestamp(ms, UTC), the S3 event time) and ``uploaded_by`` (who landed the file, null when
not known: :func:`pipeline.sources.parse_uploaded_by`), then what the dataset's enrichment adds, as text
(users: ``email_domain``, ``age_band``, ``email_provider``, ``enricher_version``). Rows are the validated,
enriched items, in line order.

**The later S3 event wins by a merge view, at read time.** The curated zone keeps every valid record of
every version; a reader keeps, per key (``user_id``, ``event_id``), the row with the greatest
``source_order``, ties (one key twice in one file) to the greatest ``source_line``, which is what the table
keeps too::

    SELECT * EXCLUDE (rn) FROM (
        SELECT *, row_number() OVER (PARTITION BY user_id
                                     ORDER BY source_order DESC, source_line DESC) AS rn
        FROM read_parquet('s3://<lake>/curated/dataset=users/*/*.parquet', hive_partitioning = true)
    ) WHERE rn = 1

There is no compaction job: superseded rows stay until the partition is rewritten or expires.

Atomic and bounded: rows are buffered as Arrow batches and written as row groups of :data:`ROW_GROUP_ROWS`
into a spooled temporary file (memory up to :data:`SPOOL_IN_MEMORY`, then ``/tmp``), then uploaded with one
PutObject (a multipart upload above 8 MiB, completed in one call). A worker killed mid-part leaves no object
or the previous complete one; an abandoned multipart upload is invisible and expired by the bucket's
lifecycle rule.

Why plain Parquet, not Apache Iceberg: Iceberg gives real upserts (MERGE INTO, Athena's ``MERGE`` needs an
Iceberg table), snapshots and compaction, but every write is a commit that swaps the table's one metadata
pointer. Hundreds of part loaders finishing at once would all commit to that pointer: optimistic concurrency
makes all but one retry (re-read metadata, rewrite the manifest list, try again), so commits serialise and
the retries grow with the concurrency, inside invocations with a time budget. Deterministic plain objects
need no commit at all: each function writes its own object, and idempotency is the object name. The cost is
the merge view at read time and a growing number of small files. Switch to Iceberg (one committer, e.g. a
single-concurrency function fed by a queue of written files, or a scheduled ``MERGE`` from this zone) when
readers need the table to hold only the latest row (row-level updates or deletes, GDPR erasure), when the
merge view over many small files gets too slow or costly, or when time travel over loads is wanted.

Compression: zstd (Arrow's default level). Measured by ``benchmarks/curated.py`` on 1,000,000 users: 21% of
the raw CSV's bytes against snappy's 39%, for about a fifth fewer records per CPU second (both well above
the 200,000/s target); storage and every later scan pay for the bytes, so zstd. See benchmarks/README.md.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.datasets import Column, Dataset
from pipeline.objects import ObjectRef, digest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pipeline.validation import Item

CURATED_PREFIX = "curated/"
COMPRESSION = "zstd"
ROW_GROUP_ROWS = 1 << 17
"""Rows per row group: every group but the last has exactly this many, whatever the batch sizes were."""
SPOOL_IN_MEMORY = 8 * 1024**2
CONTENT_TYPE = "application/vnd.apache.parquet"

ARROW_TYPES: dict[str, Any] = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "timestamp_ms_utc": pa.timestamp("ms", tz="UTC"),
}
"""The Arrow type names a dataset's ``columns`` may use. Values come from the items' text: an ``S``
attribute for ``string`` and ``timestamp_ms_utc`` (ISO 8601, see :func:`pipeline.validation.timestamp_text`),
an ``N`` attribute for the numbers; Arrow parses the text, per column, in C++."""

LINEAGE_COLUMNS: tuple[Column, ...] = (
    ("source_key", "string"),
    ("source_version", "string"),
    ("source_order", "string"),
    ("source_line", "int64"),
    ("event_time", "timestamp_ms_utc"),
    ("uploaded_by", "string"),
)
"""Appended to every dataset's columns, in this order."""

_NUMERIC = frozenset({"int32", "int64", "float64"})


def enrichment_columns(dataset: Dataset) -> tuple[Column, ...]:
    """What the dataset's enrichment adds to each item (its steps' outputs and ``enricher_version``): text."""
    outputs = dataset.enrichment.outputs if dataset.enrichment is not None else ()
    return tuple((name, "string") for name in outputs)


@functools.cache
def arrow_schema(dataset: Dataset) -> Any:
    """The curated Arrow schema of ``dataset``: its declared columns, the lineage columns, then the columns
    its enrichment adds (declared by the enrichment itself, see :mod:`pipeline.enrichment`)."""
    columns = (*dataset.columns, *LINEAGE_COLUMNS, *enrichment_columns(dataset))
    unknown = sorted({kind for _, kind in columns} - set(ARROW_TYPES))
    if unknown:
        raise ValueError(f"dataset {dataset.name!r}: unknown curated column type(s) {', '.join(unknown)}")
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in columns])


def ingest_date(ref: ObjectRef) -> str:
    # The lake copy's partition (pipeline.datalake.lake_key): the event's date, not the wall clock.
    return ref.event_time.strftime("%Y-%m-%d")


def partition_prefix(dataset: Dataset, ref: ObjectRef) -> str:
    return f"{CURATED_PREFIX}dataset={dataset.name}/ingest_date={ingest_date(ref)}/"


def curated_key(dataset: Dataset, ref: ObjectRef, *, unit: str = "whole", start: int = 0) -> str:
    """The object one unit of work writes: the same for a replay, distinct for every (version, unit, start).

    ``unit`` is ``whole`` or ``part-<index>``; ``start`` the number of the unit's records before it (0, or
    where a resumed part took up). A digest, so that any source key (up to 1,024 bytes) fits.
    """
    identity = "\n".join((ref.key, ref.version_label, unit, str(start)))
    return f"{partition_prefix(dataset, ref)}{digest(identity)}.parquet"


class CuratedWriter:
    """Collects one unit's valid items and writes them as one Parquet object when the unit is done."""

    def __init__(self, dataset: Dataset, ref: ObjectRef, *, unit: str = "whole", start: int = 0) -> None:
        self.key = curated_key(dataset, ref, unit=unit, start=start)
        self.schema = arrow_schema(dataset)
        self.rows = 0
        self._declared = len(dataset.columns)
        fields = (*dataset.columns, ("line", "int64"), *enrichment_columns(dataset))
        # The items as Arrow reads them, {name: {tag: text}}: converted in C++ in one pass (twice the rate of
        # a Python loop per column), a missing attribute null; then each column's text cast to its type.
        self._item_type = pa.struct(
            [(name, pa.struct([("N" if kind in _NUMERIC else "S", pa.string())])) for name, kind in fields]
        )
        self._types = [ARROW_TYPES[kind] for _, kind in fields]
        # Constant per unit of work: one scalar each, repeated per batch.
        self._constants = [
            pa.scalar(ref.key, pa.string()),
            pa.scalar(ref.version_label, pa.string()),
            pa.scalar(ref.order_token, pa.string()),
        ]
        self._event_time = pa.scalar(ref.event_time, ARROW_TYPES["timestamp_ms_utc"])
        self._uploaded_by = pa.scalar(ref.uploaded_by, pa.string())  # a null scalar when not known
        self._pending: list[Any] = []  # Arrow tables not yet in a row group
        self._pending_rows = 0
        # Closed by upload() or discard(), one of which the loader always calls.
        self._spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self._writer: Any = None

    def add(self, items: Sequence[Item]) -> None:
        """Add a batch of valid items (in line order); a full row group goes to the spool at once."""
        if not items:
            return
        n = len(items)
        # flatten(), not field(): it carries a missing attribute's null down to the text.
        texts = pa.array(items, type=self._item_type).flatten()
        arrays = [
            text.flatten()[0].cast(arrow_type) for text, arrow_type in zip(texts, self._types, strict=True)
        ]
        declared, line, enriched = (
            arrays[: self._declared],
            arrays[self._declared],
            arrays[self._declared + 1 :],
        )
        arrays = [
            *declared,
            *(pa.repeat(constant, n) for constant in self._constants),
            line,
            pa.repeat(self._event_time, n),
            pa.repeat(self._uploaded_by, n),
            *enriched,
        ]
        self._pending.append(pa.Table.from_arrays(arrays, schema=self.schema))
        self._pending_rows += n
        self.rows += n
        while self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self._pending)
        head, rest = table.slice(0, rows), table.slice(rows)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._spool, self.schema, compression=COMPRESSION)
        # One contiguous chunk per column: the bytes depend on the rows, not on how they were batched.
        self._writer.write_table(head.combine_chunks(), row_group_size=rows)
        self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def upload(self, s3: S3Client, bucket: str) -> str | None:
        """Write the object (nothing when there are no rows); returns its key."""
        try:
            if not self.rows:
                return None
            if self._pending_rows:
                self._flush(self._pending_rows)
            self._writer.close()
            self._spool.seek(0)
            s3.upload_fileobj(self._spool, bucket, self.key, ExtraArgs={"ContentType": CONTENT_TYPE})
            return self.key
        finally:
            self._spool.close()

    def discard(self) -> None:
        """Drop what was collected (the work is handed back and will be done again)."""
        self._spool.close()
