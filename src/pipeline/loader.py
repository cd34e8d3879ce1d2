"""Load one landed file version into its dataset's table: stream, validate, write, set rejects aside."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pipeline.budget import Budget
from pipeline.database import TableWriter, WriteResult
from pipeline.datasets import Dataset
from pipeline.manifests import Manifest, Status, describe
from pipeline.objects import ObjectRef
from pipeline.quarantine import RejectsWriter, quarantine_file
from pipeline.readers import Format, UnreadableFileError, detect_format
from pipeline.sources import open_source
from pipeline.validation import iter_validated_batches

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def load_file(
    s3: S3Client,
    writer: TableWriter,
    ref: ObjectRef,
    dataset: Dataset,
    *,
    quarantine_bucket: str,
    batch_size: int = 1000,
    budget: Budget | None = None,
) -> Manifest:
    """Validate every record of one file and load the good ones; the manifest says what happened."""
    return load_stream(
        s3,
        writer,
        ref,
        dataset,
        open_source(s3, ref),
        quarantine_bucket=quarantine_bucket,
        batch_size=batch_size,
        budget=budget,
    )


def load_stream(
    s3: S3Client,
    writer: TableWriter,
    ref: ObjectRef,
    dataset: Dataset,
    body: Any,
    *,
    quarantine_bucket: str,
    batch_size: int = 1000,
    budget: Budget | None = None,
    line_offset: int = 0,
    rejects_at: str | None = None,
    fmt: Format | None = None,
) -> Manifest:
    """Load the records of ``body`` (a whole file, or one part of it numbered from ``line_offset``).

    ``fmt`` is the format of ``body`` when it is not the file's own (a staged copy: plain text).
    """
    if dataset.schema is None:
        raise ValueError(f"dataset {dataset.name!r} has no schema: nothing to load into a table")
    fmt, gzipped = detect_format(ref.key, dataset.format) if fmt is None else (fmt, False)
    rejects = RejectsWriter(ref, rejects_at)
    written = WriteResult()
    read = 0
    last_batch_ms = 0
    error: str | None = None
    quarantined: str | None = None
    try:
        for batch in iter_validated_batches(
            body,
            schema=dataset.schema,
            ref=ref,
            fmt=fmt,
            gzipped=gzipped,
            delimiter=dataset.delimiter,
            batch_size=batch_size,
            line_offset=line_offset,
        ):
            if budget is not None:
                # Stop between batches, never mid-write (the writes so far are idempotent), and only start a
                # batch when there is time for one as long as the last.
                budget.check(reserve_ms=last_batch_ms)
            started = time.monotonic()
            read += batch.records_read
            if batch.items:
                written.add(writer.write(batch.items))
            for rejection in batch.rejections:
                rejects.add(rejection)
            last_batch_ms = int((time.monotonic() - started) * 1000)
    except UnreadableFileError as exc:
        # The file as a whole cannot be read: keep a copy for replay; records before the fault stay loaded.
        error = str(exc)
        quarantined = quarantine_file(s3, ref, quarantine_bucket)
    except BaseException:
        rejects.discard()
        raise
    finally:
        body.close()
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
    )
