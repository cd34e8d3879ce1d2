"""Per-file manifests and quarantine locations, written by the loaders and read by the CLI and tests.

Layout of the quarantine bucket (one place to look when something went wrong):

- ``manifests/<stage>/<source key>@<version>.json``: one manifest per processed file version and stage
  (``datalake`` or ``database``): what was read, loaded and rejected, and the first errors.
- ``rejects/<source key>@<version>.jsonl``: rejected records, one JSON object per line, with line numbers,
  reasons and the original record.
- ``files/<source key>@<version>``: a copy of a file that could not be read at all, kept for replay.

S3 refuses keys over 1,024 bytes and a source key may be that long: where ``<source key>@<version>`` would
not fit, the key is cut at a character boundary and followed by ``~<digest of key and version>@<version>``.
The manifest inside always has the full key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from pipeline.objects import ObjectRef, digest, fit_utf8
from pipeline.sources import is_missing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Stage = Literal["datalake", "database"]
# failed: not loaded for a reason outside the file (its reference data); not final, the message is retried
Status = Literal["loaded", "partial", "quarantined", "in_progress", "failed"]
FINAL_STATUSES: frozenset[str] = frozenset({"loaded", "partial", "quarantined"})
MANIFESTS_PREFIX = "manifests/"
REJECTS_PREFIX = "rejects/"
FILES_PREFIX = "files/"
WORK_PREFIX = "work/"
MAX_ERRORS_IN_MANIFEST = 10
# The most a "<key>@<version>" part of a derived key may take: the longest prefix ("manifests/database/", 19
# bytes) and tail ("/parts/00000.json", 17 bytes) leave it this much of S3's 1,024 bytes, with some to spare.
MAX_SUFFIX_BYTES = 960
# Version ids are opaque strings of up to 1,024 bytes (32 in practice); past this one is replaced by a digest.
MAX_VERSION_BYTES = 128


class RecordError(BaseModel):
    """Why one record was rejected."""

    line: int
    reasons: list[str]


class Manifest(BaseModel):
    """What happened to one file version in one stage."""

    stage: Stage
    status: Status
    dataset: str
    source_bucket: str
    source_key: str
    source_version: str
    source_etag: str | None = None
    event_time: str
    lake_key: str | None = None
    # datalake stage: copied, unchanged (replay of the version already there) or superseded (a newer one is)
    lake_status: str | None = None
    records_read: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    # valid records not written because the table already holds a newer version of them
    records_superseded: int = 0
    # the rejects object, or for a file loaded in parts the prefix of its parts' rejects objects
    rejects_key: str | None = None
    quarantined_file_key: str | None = None
    error: str | None = None
    first_errors: list[RecordError] = Field(default_factory=list)
    # a big file is loaded in parts (pipeline.splits): how many, and how many have finished
    parts_total: int = 1
    parts_done: int = 0
    # what the dataset's contract decided (pipeline.contracts), e.g. "ignored columns: signup_source"
    contract_decisions: list[str] = Field(default_factory=list)
    # the enricher (and reference data versions) the records were enriched with (pipeline.enrichment)
    enricher_version: str | None = None
    # who landed the file (its valid ``uploaded-by`` metadata, pipeline.sources), None when not known
    uploaded_by: str | None = None
    # lineage metadata that was given but set aside, e.g. "uploaded-by metadata ignored: ..."
    lineage_notes: list[str] = Field(default_factory=list)


def describe(stage: Stage, status: Status, dataset: str, ref: ObjectRef, **outcome: Any) -> Manifest:
    """A manifest for ``ref``'s file version, its source fields filled in from the reference."""
    return Manifest(
        stage=stage,
        status=status,
        dataset=dataset,
        source_bucket=ref.bucket,
        source_key=ref.key,
        source_version=ref.version_label,
        source_etag=ref.etag,
        event_time=ref.event_time_iso,
        uploaded_by=ref.uploaded_by,
        lineage_notes=list(ref.lineage_notes),
        **outcome,
    )


def _suffix(ref: ObjectRef) -> str:
    full = f"{ref.key}@{ref.version_label}"
    if len(full.encode()) <= MAX_SUFFIX_BYTES:
        return full
    version = ref.version_label
    if len(version.encode()) > MAX_VERSION_BYTES:
        version = digest(version)
    tail = f"~{digest(full)}@{version}"
    return fit_utf8(ref.key, MAX_SUFFIX_BYTES - len(tail.encode())) + tail


def manifest_key(stage: Stage, ref: ObjectRef) -> str:
    return f"{MANIFESTS_PREFIX}{stage}/{_suffix(ref)}.json"


def rejects_key(ref: ObjectRef) -> str:
    return f"{REJECTS_PREFIX}{_suffix(ref)}.jsonl"


def quarantined_file_key(ref: ObjectRef) -> str:
    return f"{FILES_PREFIX}{_suffix(ref)}"


def work_prefix(ref: ObjectRef) -> str:
    """Where the parts of a file version record their results (in the quarantine bucket)."""
    return f"{WORK_PREFIX}{_suffix(ref)}/"


def part_rejects_key(ref: ObjectRef, index: int, attempt: int = 0) -> str:
    """The rejects of one part; a part resumed after running out of time writes one object per attempt."""
    retry = f"-{attempt}" if attempt else ""
    return f"{REJECTS_PREFIX}{_suffix(ref)}/part-{index:05d}{retry}.jsonl"


def final_manifest(s3: S3Client, bucket: str, stage: Stage, ref: ObjectRef) -> Manifest | None:
    """The manifest of a file version that is done (loaded, partial, quarantined), or None."""
    try:
        manifest = read_manifest(s3, bucket, manifest_key(stage, ref))
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    return manifest if manifest.status in FINAL_STATUSES else None


def write_manifest(s3: S3Client, bucket: str, ref: ObjectRef, manifest: Manifest) -> str:
    """Write (or overwrite, on replay) the manifest of one file version; returns its key."""
    key = manifest_key(manifest.stage, ref)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=manifest.model_dump_json(indent=2).encode(),
        ContentType="application/json",
    )
    return key


def read_manifest(s3: S3Client, bucket: str, key: str) -> Manifest:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return Manifest.model_validate_json(body)


def iter_manifests(s3: S3Client, bucket: str, stage: Stage | None = None) -> Iterator[Manifest]:
    """Every manifest in the quarantine bucket (optionally one stage's), in key order."""
    prefix = MANIFESTS_PREFIX + (f"{stage}/" if stage else "")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield read_manifest(s3, bucket, item["Key"])
