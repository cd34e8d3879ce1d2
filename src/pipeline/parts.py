"""Big files in parts: plan them (database loader), load each part (part loader), add up the parts.

- :func:`plan_file` splits an uncompressed CSV / JSON Lines file bigger than ``part_bytes`` on record
  boundaries (:mod:`pipeline.splits`) and sends one message per part to the parts queue, which the part
  loader consumes: planning is cheap (one scan counting quotes and newlines), the parts carry the load and
  run in parallel, and no function sends to its own queue (Lambda's recursive loop detection never applies).
- :func:`load_part` loads one part: a ranged GET of exactly its bytes, validated and written like a whole
  file, its rejects in an object of its own, then its result in ``work/<key>@<version>/parts/<index>.json``.
  A part that already has a result is not loaded again (a duplicate delivery writes nothing).
- :func:`finish` writes the file's one manifest once every part has a result: the counts are the sum of the
  parts', each part counted once however often it ran.

Gzip files and JSON arrays cannot be split by byte range: a big one is first staged as a plain copy
(:mod:`pipeline.staging`), and its parts are ranges of that copy. Small ones load whole.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from pipeline.budget import Budget, OutOfTime
from pipeline.contracts import ContractReport
from pipeline.database import TableWriter
from pipeline.datasets import Dataset
from pipeline.enrichment import Enricher
from pipeline.loader import Interrupted, Progress, load_stream
from pipeline.manifests import (
    MAX_ERRORS_IN_MANIFEST,
    Manifest,
    RecordError,
    describe,
    part_rejects_key,
    rejects_key,
    work_prefix,
    write_manifest,
)
from pipeline.objects import ObjectRef
from pipeline.quarantine import quarantine_file
from pipeline.readers import detect_format
from pipeline.sources import is_missing, version_args
from pipeline.splits import SPLITTABLE, Part, PartStream, plan_parts
from pipeline.staging import GZIP_STAGE_FRACTION, StagedCopy, needs_staging

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

SQS_BATCH_LIMIT = 10
# Content the readers refuse or decompress: such a file is never cut by byte range.
BINARY_MAGIC = (
    b"\x1f\x8b",
    b"PK\x03\x04",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
    b"\xff\xfe",
    b"\xfe\xff",
)
MESSAGE_KIND = "file-part"
RESULT_READERS = 16  # concurrent GETs of the parts' results when the last part adds them up


@dataclass(frozen=True, slots=True)
class PartResult:
    """What one part did; written once the part is done."""

    index: int
    records_read: int
    records_loaded: int
    records_rejected: int
    records_superseded: int
    rejects_key: str | None
    first_errors: list[dict[str, Any]]
    error: str | None = None
    quarantined_file_key: str | None = None
    # the contract's decisions as names per kind (ContractReport.to_dict): added up, each shown once
    contract: dict[str, list[str]] = field(default_factory=dict)
    enricher_version: str | None = None


Layout = Literal["whole", "split", "stage"]


def layout(s3: S3Client, ref: ObjectRef, dataset: Dataset, part_bytes: int) -> Layout:
    """How the database loader takes a file on: load it ``whole``, ``split`` it into parts by byte range, or
    ``stage`` a plain copy first (a big gzip file or JSON array) and split that.

    The first bytes are looked at too: a gzip file whose name says ``.csv`` is staged like a ``.csv.gz``
    (the readers detect gzip from the content), other binary content loads whole (and is refused at once).
    """
    if (ref.size or 0) * GZIP_STAGE_FRACTION <= part_bytes:
        return "whole"  # small whatever it is: not worth a request for its first bytes
    head = ranged_reader(s3, ref)(0, 16)
    if needs_staging(ref, dataset, head, part_bytes):
        return "stage"
    fmt, gzipped = detect_format(ref.key, dataset.format)
    if gzipped or fmt not in SPLITTABLE or (ref.size or 0) <= part_bytes:
        return "whole"
    return "whole" if any(head.startswith(magic) for magic in BINARY_MAGIC) else "split"


def source_location(ref: ObjectRef, staged: StagedCopy | None) -> dict[str, Any]:
    """GetObject arguments for the bytes parts are cut from: the exact landed version, or its staged copy."""
    if staged is not None:
        return {"Bucket": staged.bucket, "Key": staged.key}
    return {"Bucket": ref.bucket, "Key": ref.key, **version_args(ref)}


def ranged_reader(s3: S3Client, ref: ObjectRef, staged: StagedCopy | None = None) -> Any:
    """``read_range(start, end)`` of the file's exact version, or of its staged copy."""
    location = source_location(ref, staged)

    def read_range(start: int, end: int) -> bytes:
        response = s3.get_object(**location, Range=f"bytes={start}-{end - 1}")
        data: bytes = response["Body"].read()
        return data

    return read_range


def ref_to_dict(ref: ObjectRef) -> dict[str, Any]:
    raw = asdict(ref)
    raw["event_time"] = ref.event_time.isoformat()
    return raw


def ref_from_dict(raw: dict[str, Any]) -> ObjectRef:
    # The source version's facts (uploaded_by, lineage_notes) travel with the reference, so a part never
    # reads the landed object's metadata again; a message queued before they existed has neither.
    fields = {**raw, "event_time": datetime.fromisoformat(raw["event_time"])}
    fields["lineage_notes"] = tuple(raw.get("lineage_notes", ()))
    return ObjectRef(**fields)


def plan_file(
    s3: S3Client,
    sqs: SQSClient,
    ref: ObjectRef,
    dataset: Dataset,
    *,
    parts_queue_url: str,
    part_bytes: int,
    quarantine_bucket: str,
    staged: StagedCopy | None = None,
    budget: Budget | None = None,
) -> Manifest:
    """Split the file (or its staged copy) into parts and queue them; the manifest says it is in progress.

    The scan checks the time budget before each chunk it reads: a file too big to scan in what is left
    raises :class:`~pipeline.budget.OutOfTime` (handed back, planned again from the start; a staged copy is
    reused), never runs into the timeout. The scan rate bounds what one invocation can plan (see
    benchmarks/README.md). Queueing is resumable: out of time part-way, the plan and how many parts are
    queued are saved (``work/<key>@<version>/plan.json``), and the next delivery queues only the rest,
    without scanning again; every attempt makes progress, so a big plan never spends its message's receives
    going over the same ground.
    """
    saved = _saved_plan(s3, quarantine_bucket, ref)
    if saved is not None:
        parts, queued = saved
    else:
        parts, queued = _scan(s3, ref, dataset, part_bytes=part_bytes, staged=staged, budget=budget), 0
    manifest = describe("database", "in_progress", dataset.name, ref, parts_total=len(parts), parts_done=0)
    if saved is None:
        # Before the parts are queued: the last part's final manifest must never be overwritten by this one.
        write_manifest(s3, quarantine_bucket, ref, manifest)
    staged_fields = {"staged": staged.to_dict()} if staged is not None else {}
    bodies = [
        json.dumps(
            {
                "kind": MESSAGE_KIND,
                "dataset": dataset.name,
                "ref": ref_to_dict(ref),
                "part": p.to_dict(),
                **staged_fields,
            }
        )
        for p in parts
    ]
    try:
        for start in range(queued, len(bodies), SQS_BATCH_LIMIT):
            queued = start
            if budget is not None:
                budget.check()
            chunk = bodies[start : start + SQS_BATCH_LIMIT]
            response = sqs.send_message_batch(
                QueueUrl=parts_queue_url,
                Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(chunk)],
            )
            if response.get("Failed"):
                # Raise: the planning message is retried; re-sending a part is harmless (idempotent parts).
                raise RuntimeError(f"could not queue {len(response['Failed'])} part(s) of {ref.key}")
    except OutOfTime:
        # A part queued twice (its batch sent, the answer lost) skips on its result: resuming is safe.
        _save_plan(s3, quarantine_bucket, ref, parts, queued=queued)
        raise
    return manifest


def _scan(
    s3: S3Client,
    ref: ObjectRef,
    dataset: Dataset,
    *,
    part_bytes: int,
    staged: StagedCopy | None,
    budget: Budget | None,
) -> list[Part]:
    if staged is None:
        fmt, _ = detect_format(ref.key, dataset.format)
        assert ref.size is not None
        size = ref.size
    else:
        fmt, size = staged.format, staged.size
    read_range = ranged_reader(s3, ref, staged)

    def read_within_budget(start: int, end: int) -> bytes:
        if budget is not None:
            budget.check()
        data: bytes = read_range(start, end)
        return data

    parts = plan_parts(read_within_budget, size, fmt, part_bytes, delimiter=dataset.delimiter)
    if not parts:  # a staged copy with nothing before the fault: one empty part still ends the file
        parts = [Part(index=0, count=1, start=0, end=0, first_line=1)]
    return parts


def plan_key(ref: ObjectRef) -> str:
    # Beside, not under, parts/: finish() counts the results listed there.
    return f"{work_prefix(ref)}plan.json"


def _saved_plan(s3: S3Client, bucket: str, ref: ObjectRef) -> tuple[list[Part], int] | None:
    """The parts and how many of them are queued, saved by an attempt that ran out of time; None if none."""
    try:
        raw = json.loads(s3.get_object(Bucket=bucket, Key=plan_key(ref))["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING:
            return None
        raise
    return [Part.from_dict(part) for part in raw["parts"]], int(raw["queued"])


def _save_plan(s3: S3Client, bucket: str, ref: ObjectRef, parts: list[Part], *, queued: int) -> None:
    document = {"parts": [part.to_dict() for part in parts], "queued": queued}
    s3.put_object(
        Bucket=bucket, Key=plan_key(ref), Body=json.dumps(document).encode(), ContentType="application/json"
    )


# What S3 answers for a key that is not there (403 without s3:ListBucket on the bucket).
MISSING = frozenset({"404", "NoSuchKey", "NotFound", "403", "AccessDenied"})


def result_key(ref: ObjectRef, index: int) -> str:
    return f"{work_prefix(ref)}parts/{index:05d}.json"


def checkpoint_key(ref: ObjectRef, index: int) -> str:
    # Beside, not under, parts/: finish() counts the results listed there.
    return f"{work_prefix(ref)}progress/{index:05d}.json"


def _checkpoint(
    s3: S3Client, bucket: str, ref: ObjectRef, index: int
) -> tuple[Progress, int, ContractReport]:
    """How far earlier attempts at a part got (their records are written), how many there were, and what
    the contract decided in them (a JSON Lines part may meet an unknown key only before the checkpoint)."""
    try:
        raw = json.loads(s3.get_object(Bucket=bucket, Key=checkpoint_key(ref, index))["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING:
            return Progress(), 0, ContractReport()
        raise
    errors = [RecordError(**error) for error in raw.pop("first_errors")]
    attempts = int(raw.pop("attempts"))
    report = ContractReport.from_dict(raw.pop("contract", None))
    return Progress(**raw, first_errors=errors), attempts, report


def _save_checkpoint(
    s3: S3Client,
    bucket: str,
    ref: ObjectRef,
    index: int,
    progress: Progress,
    *,
    attempts: int,
    report: ContractReport,
) -> None:
    document = {
        "records_read": progress.records_read,
        "records_loaded": progress.records_loaded,
        "records_superseded": progress.records_superseded,
        "records_rejected": progress.records_rejected,
        "first_errors": [error.model_dump() for error in progress.first_errors[:MAX_ERRORS_IN_MANIFEST]],
        "attempts": attempts,
        "contract": report.to_dict(),
    }
    s3.put_object(
        Bucket=bucket,
        Key=checkpoint_key(ref, index),
        Body=json.dumps(document).encode(),
        ContentType="application/json",
    )


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            return False
        raise
    return True


def load_part(
    s3: S3Client,
    writer: TableWriter | None,
    ref: ObjectRef,
    dataset: Dataset,
    part: Part,
    *,
    quarantine_bucket: str,
    batch_size: int,
    curated_bucket: str | None = None,
    budget: Budget | None = None,
    staged: StagedCopy | None = None,
    enricher: Enricher | None = None,
) -> bool:
    """Load one part (of the file, or of its staged copy) unless it is done already; True when this call
    loaded it. The last part of a staged copy that ended at a fault in the source carries that fault.

    With ``curated_bucket``, its valid records go to the curated zone too: one object per attempt's start
    (the first attempt's at 0, a resumed one's after the records its checkpoint counts), each complete
    before the checkpoint or result that follows it."""
    key = result_key(ref, part.index)
    if _exists(s3, quarantine_bucket, key):
        return False
    location = source_location(ref, staged)
    if part.end > part.start:
        body: Any = s3.get_object(**location, Range=f"bytes={part.start}-{part.end - 1}")["Body"]
    else:
        body = _Empty()
    stream = PartStream(part, body)
    done, attempt, report = _checkpoint(s3, quarantine_bucket, ref, part.index)
    try:
        outcome = load_stream(
            s3,
            writer,
            ref,
            dataset,
            stream,
            line_offset=stream.line_offset,
            rejects_at=part_rejects_key(ref, part.index, attempt),
            quarantine_bucket=quarantine_bucket,
            curated_bucket=curated_bucket,
            curated_unit=f"part-{part.index}",
            batch_size=batch_size,
            budget=budget,
            fmt=staged.format if staged is not None else None,
            skip_records=done.records_read,
            report=report,
            enricher=enricher,
        )
    except Interrupted as stopped:
        # The next delivery resumes after the records done so far instead of starting the part again.
        _save_checkpoint(
            s3,
            quarantine_bucket,
            ref,
            part.index,
            done + stopped.progress,
            attempts=attempt + 1,
            report=report,
        )
        raise
    total = done + Progress(
        records_read=outcome.records_read,
        records_loaded=outcome.records_loaded,
        records_superseded=outcome.records_superseded,
        records_rejected=outcome.records_rejected,
        first_errors=outcome.first_errors,
    )
    error, quarantined = outcome.error, outcome.quarantined_file_key
    if staged is not None and staged.error and part.index == part.count - 1:
        # The source's own fault comes first: the copy ends at it, perhaps inside a record (a quoted CSV
        # field), which the last part then reports as its own error.
        error = staged.error
        quarantined = quarantined or quarantine_file(s3, ref, quarantine_bucket)
    result = PartResult(
        index=part.index,
        records_read=total.records_read,
        records_loaded=total.records_loaded,
        records_rejected=total.records_rejected,
        records_superseded=total.records_superseded,
        rejects_key=outcome.rejects_key,
        first_errors=[record.model_dump() for record in total.first_errors[:MAX_ERRORS_IN_MANIFEST]],
        error=error,
        quarantined_file_key=quarantined,
        contract=report.to_dict(),
        enricher_version=outcome.enricher_version,
    )
    s3.put_object(
        Bucket=quarantine_bucket,
        Key=key,
        Body=json.dumps(asdict(result)).encode(),
        ContentType="application/json",
    )
    return True


class _Empty:
    """The body of an empty part (a ranged GET cannot ask for zero bytes)."""

    def read(self, _size: int = -1, /) -> bytes:
        return b""

    def close(self) -> None:
        return


def finish(
    s3: S3Client,
    ref: ObjectRef,
    dataset: Dataset,
    part: Part,
    *,
    quarantine_bucket: str,
    budget: Budget | None = None,
) -> Manifest:
    """The file's manifest: ``in_progress`` (with the parts done) until every part has a result, then final.

    Until then only the results are listed (one request per 1,000 parts); once all are there they are read,
    concurrently, so the last part adds up hundreds of results in well under a second. Out of time while
    reading, it raises :class:`~pipeline.budget.OutOfTime`: the part's result is written already, so the
    redelivery skips the part and adds up again.
    """
    prefix = f"{work_prefix(ref)}parts/"
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=quarantine_bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    if len(keys) < part.count:
        return describe(
            "database", "in_progress", dataset.name, ref, parts_total=part.count, parts_done=len(keys)
        )

    def read(key: str) -> PartResult:
        if budget is not None:
            budget.check()
        raw = json.loads(s3.get_object(Bucket=quarantine_bucket, Key=key)["Body"].read())
        return PartResult(**raw)

    with ThreadPoolExecutor(RESULT_READERS) as pool:
        results = sorted(pool.map(read, keys), key=lambda result: result.index)
    errors = [RecordError(**error) for result in results for error in result.first_errors]
    errors.sort(key=lambda error: error.line)
    failed = [result.error for result in results if result.error]
    copies = [result.quarantined_file_key for result in results if result.quarantined_file_key]
    rejected = sum(result.records_rejected for result in results)
    status = "quarantined" if failed else ("partial" if rejected else "loaded")
    # Every CSV part reads the same header, so each decides the same: merged, each decision shows once.
    report = ContractReport()
    for result in results:
        report.merge(ContractReport.from_dict(result.contract))
    # Parts loaded by different processes could differ if the configured version changed in between.
    enrichers = sorted({result.enricher_version for result in results if result.enricher_version})
    return describe(
        "database",
        status,  # type: ignore[arg-type]
        dataset.name,
        ref,
        records_read=sum(result.records_read for result in results),
        records_loaded=sum(result.records_loaded for result in results),
        records_rejected=rejected,
        records_superseded=sum(result.records_superseded for result in results),
        rejects_key=(rejects_key(ref).removesuffix(".jsonl") + "/") if rejected else None,
        error=failed[0] if failed else None,
        quarantined_file_key=copies[0] if copies else None,
        first_errors=errors[:10],
        parts_total=part.count,
        parts_done=len(results),
        contract_decisions=report.decisions(),
        enricher_version=", ".join(enrichers) or None,
    )
