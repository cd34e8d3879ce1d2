"""Copy a landed object version into the partitioned data lake, server-side.

Destination: ``dataset=<name>/ingest_date=<YYYY-MM-DD>/<file name>``, the date taken from the S3 event
time (not the wall clock) so that a replay lands in the same partition. The copy never passes bytes
through the function: CopyObject up to 5 GiB, multipart UploadPartCopy above (boto3's managed transfer).

Idempotent: the destination carries the source version's lineage in its metadata; a replay of the version
already there is a no-op, and an older version never overwrites a newer one (later S3 event time wins).

Bounded whatever the key: S3 refuses keys over 1,024 bytes and user metadata over 2 KB, and a source key may
itself be 1,024 bytes (about 340 CJK characters, three times that once percent-encoded). So the order the
copies compare (``source-order``) holds a digest of the key, not the key; ``source-key`` is written only when
it fits (the datalake manifest always has the full lineage); and a file name too long for its partition is
shortened, with a digest of the whole name so that distinct names stay distinct.

Race-free up to 5 GiB: the copy is conditional on what was read (``If-None-Match: *`` when the key was empty,
``If-Match: <its ETag>`` otherwise). When another delivery wrote the key in between, S3 answers 412 and the
decision is made again against what it wrote, so two versions copied at once always leave the later one.
Above 5 GiB the multipart copy is not conditional (S3 takes the condition only on its completion, which the
managed transfer does not expose): there the window between the read and the copy remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from pipeline.datasets import Dataset
from pipeline.manifests import Manifest, describe
from pipeline.objects import MAX_KEY_BYTES, ObjectRef, digest, fit_utf8
from pipeline.sources import quoted

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# CopyObject's own ceiling; above it only multipart UploadPartCopy works.
COPY_OBJECT_LIMIT = 5 * 1024**3
MAX_PARTS = 10_000
MIN_PART_SIZE = 256 * 1024**2

CopyStatus = Literal["copied", "unchanged", "superseded"]


@dataclass(frozen=True, slots=True)
class CopyResult:
    lake_key: str
    status: CopyStatus


# S3 refuses user metadata whose names and values add up to more than 2 KB (UTF-8): 400 MetadataTooLarge.
USER_METADATA_LIMIT = 2048


def _extensions(name: str) -> str:
    """What readers of the lake go by: the last suffix, and the one before it when the last is ``.gz``."""
    suffixes = PurePosixPath(name).suffixes
    kept = suffixes[-2:] if suffixes[-1:] == [".gz"] else suffixes[-1:]
    return "".join(kept) if all(len(s) <= 16 for s in kept) else ""


def lake_key(dataset: Dataset, ref: ObjectRef) -> str:
    prefix = f"dataset={dataset.name}/ingest_date={ref.event_time.strftime('%Y-%m-%d')}/"
    name = ref.file_name
    room = MAX_KEY_BYTES - len(prefix.encode())
    if len(name.encode()) <= room:
        return prefix + name
    extensions = _extensions(name)
    tail = f"~{digest(name)}{extensions}"
    return prefix + fit_utf8(name.removesuffix(extensions), room - len(tail.encode())) + tail


def _ascii(value: str) -> str:
    # User metadata travels as HTTP headers, which must be ASCII: percent-encode keys with unicode.
    return quote(value, safe="/:|@=+ ")


def lake_order(ref: ObjectRef) -> str:
    """The order of lake copies: the event time, then a digest of key and version, which only breaks ties
    (stable and arbitrary, as the key was) and keeps the value short whatever the key.

    A copy written when this held the key itself still compares by event time first; only its own replay
    (same time) no longer compares equal, and is copied again or left alone, the same bytes either way."""
    identity = f"{ref.key}\n{ref.version_label}"
    return f"{ref.event_time_iso}|{digest(identity, 64)}"


def metadata_size(metadata: dict[str, str]) -> int:
    """User metadata as S3 counts it against its 2 KB: the UTF-8 bytes of every name and value."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())


def lineage_metadata(ref: ObjectRef) -> dict[str, str]:
    """The lineage as S3 user metadata: dashed names, ASCII values, at most 2 KB whatever the key.

    ``uploaded-by`` is kept when the landed version had a valid one: the copy replaces the metadata.

    ``source-key`` is left out when it does not fit (a long key, or a unicode key three times as long once
    percent-encoded); ``source-key-sha256`` always identifies it, and the manifest has it in full."""
    metadata = {
        "source-bucket": ref.bucket,
        "source-version": _ascii(ref.version_label),
        "source-event-time": ref.event_time_iso,
        "source-etag": ref.etag or "",
        "source-order": lake_order(ref),
        "source-key-sha256": digest(ref.key, 64),
    }
    if ref.uploaded_by is not None:
        # Validated ASCII of at most 128 characters (pipeline.sources): always fits beside the rest.
        metadata["uploaded-by"] = ref.uploaded_by
    key = {"source-key": _ascii(ref.key)}
    if metadata_size({**metadata, **key}) <= USER_METADATA_LIMIT:
        metadata.update(key)
    return metadata


def transfer_config(
    size: int | None, threshold: int = COPY_OBJECT_LIMIT, min_part: int = MIN_PART_SIZE
) -> TransferConfig:
    """Single CopyObject up to the threshold; above, parts large enough to stay under 10,000 parts."""
    part = min_part
    if size is not None:
        part = max(part, -(-size // MAX_PARTS))
    return TransferConfig(multipart_threshold=threshold, multipart_chunksize=part, use_threads=True)


MAX_RACES = 5


def _existing(s3: S3Client, bucket: str, key: str) -> tuple[str | None, str | None]:
    """(source order, ETag) of what the lake key holds, or (None, None) when it holds nothing."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return None, None
        raise
    return head.get("Metadata", {}).get("source-order", ""), head.get("ETag")


def _precondition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {
        "412",
        "PreconditionFailed",
        "409",
        "ConditionalRequestConflict",
    }


def copy_to_lake(
    s3: S3Client, ref: ObjectRef, dataset: Dataset, lake_bucket: str, config: TransferConfig | None = None
) -> CopyResult:
    """Copy one source version to its lake key unless that key already holds it or a newer one."""
    destination = lake_key(dataset, ref)
    metadata = lineage_metadata(ref)
    source: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    extra: dict[str, Any] = {"Metadata": metadata, "MetadataDirective": "REPLACE"}
    if ref.version_id:
        source["VersionId"] = ref.version_id
    elif ref.etag:
        # Unversioned source: make sure we copy the bytes the event announced, not a later overwrite.
        extra["CopySourceIfMatch"] = quoted(ref.etag)
    transfer = config or transfer_config(ref.size)
    for _ in range(MAX_RACES):
        order, etag = _existing(s3, lake_bucket, destination)
        if order is not None:
            if order == metadata["source-order"]:
                return CopyResult(destination, "unchanged")
            if order > metadata["source-order"]:
                return CopyResult(destination, "superseded")
        if ref.size is not None and ref.size > transfer.multipart_threshold:
            s3.copy(source, lake_bucket, destination, ExtraArgs=extra, Config=transfer)  # type: ignore[arg-type]
            return CopyResult(destination, "copied")
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            s3.copy_object(CopySource=source, Bucket=lake_bucket, Key=destination, **extra, **condition)  # type: ignore[arg-type]
        except ClientError as exc:
            if _precondition_failed(exc):
                continue  # another delivery wrote the key since we read it: decide again against that
            raise
        return CopyResult(destination, "copied")
    raise RuntimeError(f"{destination}: still racing other deliveries after {MAX_RACES} attempts")


def process(s3: S3Client, ref: ObjectRef, dataset: Dataset, lake_bucket: str) -> Manifest:
    """Copy one object version to the lake and describe what happened."""
    result = copy_to_lake(s3, ref, dataset, lake_bucket)
    outcome = {"lake_key": result.lake_key, "lake_status": result.status}
    return describe("datalake", "loaded", dataset.name, ref, **outcome)
