"""Load one landed file version: stream, validate, write the table (when the dataset has one) and the curated
zone (:mod:`pipeline.curated`), set rejects aside.

For a dataset without a table, ``records_loaded`` counts the valid records written to the curated zone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.budget import Budget, OutOfTime
from pipeline.contracts import ContractReport
from pipeline.curated import CuratedWriter
from pipeline.database import TableWriter, WriteResult
from pipeline.datasets import Dataset
from pipeline.enrichment import Enricher
from pipeline.manifests import Manifest, RecordError, Status, describe
from pipeline.objects import ObjectRef
from pipeline.quarantine import RejectsWriter, quarantine_file
from pipeline.readers import Format, UnreadableFileError, detect_format
from pipeline.sources import open_source
from pipeline.validation import Item, iter_validated_batches

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True, slots=True)
class Progress:
    """What a load had done when it stopped: every record counted here is written or set aside for good."""

    records_read: int = 0
    records_loaded: int = 0
    records_superseded: int = 0
    records_rejected: int = 0
    first_errors: list[RecordError] = field(default_factory=list)

    def __add__(self, other: Progress) -> Progress:
        return Progress(
            records_read=self.records_read + other.records_read,
            records_loaded=self.records_loaded + other.records_loaded,
            records_superseded=self.records_superseded + other.records_superseded,
            records_rejected=self.records_rejected + other.records_rejected,
            first_errors=[*self.first_errors, *other.first_errors],
        )


class Interrupted(OutOfTime):
    """Out of time between two batches, with what was done before: the caller may resume after it."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(f"out of time after {progress.records_read} records")
        self.progress = progress


# Before anything is measured, a record is assumed to take this long to validate and write: pessimistic, so
# that a first batch fits a short invocation on a slow emulator; a real one is a fraction of it.
INITIAL_MS_PER_RECORD = 4.0
MIN_BATCH = 25  # one BatchWriteItem


class Pace:
    """Batch sizes that fit the time left: each batch is to take at most a quarter of it, at the rate the
    last batch went (validation and writes). A slow target gets small batches, and a load always progresses
    between checkpoints instead of running into its timeout."""

    def __init__(self, budget: Budget, most: int) -> None:
        self.budget = budget
        self.most = most
        self.ms_per_record = INITIAL_MS_PER_RECORD
        self.size = most

    def next_size(self) -> int:
        available = self.budget.remaining_ms() - self.budget.margin_ms
        self.size = max(MIN_BATCH, min(self.most, int(available / (4 * self.ms_per_record))))
        return self.size

    def reserve_ms(self) -> int:
        """Time to keep for the batch in hand: twice what it should take (write latency varies)."""
        return int(2 * self.size * self.ms_per_record)

    def record(self, records: int, elapsed_ms: float) -> None:
        if records:
            self.ms_per_record = max(elapsed_ms / records, 0.001)


@dataclass(slots=True)
class _Outputs:
    """Where a unit's valid items go: its table (if the dataset has one) and the curated zone (if asked)."""

    table: TableWriter | None
    curated: CuratedWriter | None
    curated_bucket: str | None

    def write(self, items: list[Item]) -> WriteResult:
        # The table first: a write that runs out of time leaves the batch unread, so it must not be curated.
        result = self.table.write(items) if self.table is not None else WriteResult(written=len(items))
        if self.curated is not None:
            self.curated.add(items)
        return result

    def upload(self, s3: S3Client) -> None:
        if self.curated is not None and self.curated_bucket is not None:
            self.curated.upload(s3, self.curated_bucket)

    def discard(self) -> None:
        if self.curated is not None:
            self.curated.discard()


def load_file(
    s3: S3Client,
    writer: TableWriter | None,
    ref: ObjectRef,
    dataset: Dataset,
    *,
    quarantine_bucket: str,
    curated_bucket: str | None = None,
    batch_size: int = 1000,
    budget: Budget | None = None,
    enricher: Enricher | None = None,
) -> Manifest:
    """Validate every record of one file and load the good ones; the manifest says what happened."""
    return load_stream(
        s3,
        writer,
        ref,
        dataset,
        open_source(s3, ref),
        quarantine_bucket=quarantine_bucket,
        curated_bucket=curated_bucket,
        batch_size=batch_size,
        budget=budget,
        enricher=enricher,
    )


def load_stream(
    s3: S3Client,
    writer: TableWriter | None,
    ref: ObjectRef,
    dataset: Dataset,
    body: Any,
    *,
    quarantine_bucket: str,
    curated_bucket: str | None = None,
    curated_unit: str = "whole",
    batch_size: int = 1000,
    budget: Budget | None = None,
    line_offset: int = 0,
    rejects_at: str | None = None,
    fmt: Format | None = None,
    skip_records: int = 0,
    report: ContractReport | None = None,
    enricher: Enricher | None = None,
) -> Manifest:
    """Load the records of ``body`` (a whole file, or one part of it numbered from ``line_offset``).

    ``fmt`` is the format of ``body`` when it is not the file's own (a staged copy: plain text).
    ``skip_records`` records are passed over: a resumed load. Running out of time between two batches raises
    :class:`Interrupted` with the counts so far, once the rejects and curated rows so far are uploaded.

    ``writer`` is None for a dataset without a table. With ``curated_bucket``, the valid records also go to
    the curated zone as one object, named by ``curated_unit`` (``whole``, ``part-<index>``) and
    ``skip_records``: it is uploaded before this returns or raises :class:`Interrupted`, so a part's result
    or checkpoint (written after) implies its curated object is complete.
    ``report`` collects what the dataset's contract decided (a part passes its own, to keep it across
    attempts); the manifest lists its decisions. ``enricher`` (the dataset's, see :mod:`pipeline.enrichment`)
    adds its attributes to the valid records before they are written.
    """
    if dataset.schema is None:
        raise ValueError(f"dataset {dataset.name!r} has no schema: nothing to validate")
    if writer is None and dataset.has_table:
        raise ValueError(f"dataset {dataset.name!r} has a table: a table writer is needed")
    fmt, gzipped = detect_format(ref.key, dataset.format) if fmt is None else (fmt, False)
    report = ContractReport() if report is None else report
    rejects = RejectsWriter(ref, rejects_at)
    outputs = _Outputs(
        writer,
        CuratedWriter(dataset, ref, unit=curated_unit, start=skip_records) if curated_bucket else None,
        curated_bucket,
    )
    written = WriteResult()
    read = 0
    pace = Pace(budget, batch_size) if budget is not None else None
    error: str | None = None
    quarantined: str | None = None
    try:
        started = time.monotonic()
        for batch in iter_validated_batches(
            body,
            schema=dataset.schema,
            ref=ref,
            fmt=fmt,
            gzipped=gzipped,
            delimiter=dataset.delimiter,
            batch_size=pace.next_size if pace is not None else batch_size,
            line_offset=line_offset,
            skip_records=skip_records,
            contract=dataset.contract,
            report=report,
        ):
            if budget is not None and pace is not None:
                # Stop between batches, never mid-write (the writes so far are idempotent).
                budget.check(reserve_ms=pace.reserve_ms())
            if batch.items:
                if enricher is not None:
                    enricher.apply(batch.items)
                # May raise OutOfTime too (a retry that would not fit): the batch then counts as unread.
                written.add(outputs.write(batch.items))
            read += batch.records_read
            for rejection in batch.rejections:
                rejects.add(rejection)
            if pace is not None:
                now = time.monotonic()
                pace.record(batch.records_read, (now - started) * 1000)
                started = now
    except UnreadableFileError as exc:
        # The file as a whole cannot be read: keep a copy for replay; records before the fault stay loaded.
        error = str(exc)
        quarantined = quarantine_file(s3, ref, quarantine_bucket)
    except OutOfTime as exc:
        # Every batch before this one is written: keep its rejects and curated rows, say how far it got.
        rejects.upload(s3, quarantine_bucket)
        outputs.upload(s3)
        progress = Progress(
            records_read=read,
            records_loaded=written.written,
            records_superseded=written.superseded,
            records_rejected=rejects.count,
            first_errors=rejects.first_errors,
        )
        raise Interrupted(progress) from exc
    except BaseException:
        rejects.discard()
        outputs.discard()
        raise
    finally:
        body.close()
    # Also after a fault part-way: the records before it are in the table, so they are curated too.
    outputs.upload(s3)
    rejects_key = rejects.upload(s3, quarantine_bucket)
    status: Status = "quarantined" if error else ("partial" if rejects.count else "loaded")
    return describe(
        "database",
        status,
        dataset.name,
        ref,
        records_read=read,
        records_loaded=written.written,
        records_superseded=written.superseded,
        records_rejected=rejects.count,
        rejects_key=rejects_key,
        quarantined_file_key=quarantined,
        error=error,
        first_errors=rejects.first_errors,
        contract_decisions=report.decisions(),
        enricher_version=enricher.version if enricher is not None else None,
    )
