"""GET /files and GET /files/{upload_id}: the caller's files and what became of them, from the manifests.

Uploads land under ``uploads/<sub>/<id>/`` and event batches under ``events/<sub>/<id>/``; the loaders write
one manifest per file version and stage at ``manifests/<stage>/<source key>@<version>.json`` in the
quarantine bucket. Listing ``manifests/<stage>/<kind>/<sub>/`` therefore finds exactly the caller's files:
the caller's sub is the listing's prefix, never a filter applied afterwards.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from aws_lambda_powertools.event_handler.exceptions import ForbiddenError, NotFoundError
from pydantic import BaseModel, Field

from pipeline.datasets import route
from pipeline.ingest.auth import OWNER_TAG_LENGTH, Caller
from pipeline.ingest.events_batches import EVENTS_PREFIX
from pipeline.ingest.uploads import UPLOADS_PREFIX
from pipeline.manifests import MANIFESTS_PREFIX, Manifest, read_manifest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STAGES = ("datalake", "database")
KINDS = {UPLOADS_PREFIX: "upload", EVENTS_PREFIX: "events"}
MAX_FILES = 200
MAX_REASONS = 5
# Upload ids (20 random hex digits) and batch ids (24 digest digits), each followed by the owner tag.
_ID = re.compile(rf"^[0-9a-f]{{20,24}}[0-9a-f]{{{OWNER_TAG_LENGTH}}}$")


class StageOutcome(BaseModel):
    status: str = Field(description="loaded, partial, quarantined, in_progress or failed")
    dataset: str
    records_read: int
    records_loaded: int
    records_rejected: int
    first_reasons: list[str] = Field(description="The first rejected records' reasons, `line N: reason`.")
    error: str | None = None
    lake_key: str | None = None


class FileOutcome(BaseModel):
    upload_id: str
    kind: Literal["upload", "events"]
    key: str
    file_name: str
    version: str
    status: str = Field(
        description="The file's outcome: the database stage's when its dataset loads a table, else the lake's"
    )
    datalake: StageOutcome | None = None
    database: StageOutcome | None = None


class FileList(BaseModel):
    files: list[FileOutcome]
    truncated: bool = Field(description="True: more files than one answer holds (the newest first).")


def _outcome(manifest: Manifest) -> StageOutcome:
    reasons = [f"line {error.line}: {reason}" for error in manifest.first_errors for reason in error.reasons][
        :MAX_REASONS
    ]
    return StageOutcome(
        status=manifest.status,
        dataset=manifest.dataset,
        records_read=manifest.records_read,
        records_loaded=manifest.records_loaded,
        records_rejected=manifest.records_rejected,
        first_reasons=reasons,
        error=manifest.error,
        lake_key=manifest.lake_key,
    )


def _prefixes(caller: Caller, upload_id: str = "") -> list[tuple[str, str]]:
    tail = f"{upload_id}/" if upload_id else ""
    return [(kind, f"{kind}{caller.sub}/{tail}") for kind in KINDS]


def _manifests(s3: S3Client, bucket: str, caller: Caller, upload_id: str = "") -> tuple[list[Manifest], bool]:
    found: list[Manifest] = []
    truncated = False
    for stage in STAGES:
        for _, source_prefix in _prefixes(caller, upload_id):
            prefix = f"{MANIFESTS_PREFIX}{stage}/{source_prefix}"
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    if len(found) >= 2 * MAX_FILES * len(STAGES):
                        truncated = True
                        break
                    found.append(read_manifest(s3, bucket, item["Key"]))
    return found, truncated


def _files(manifests: list[Manifest], caller: Caller) -> list[FileOutcome]:
    files: dict[tuple[str, str], FileOutcome] = {}
    for manifest in manifests:
        kind_prefix = next(prefix for prefix in KINDS if manifest.source_key.startswith(prefix))
        rest = manifest.source_key[len(kind_prefix) :]
        owner, _, rest = rest.partition("/")
        if owner != caller.sub:  # a defence in depth: the listing prefix already holds the sub
            continue
        upload_id, _, file_name = rest.partition("/")
        entry = files.setdefault(
            (manifest.source_key, manifest.source_version),
            FileOutcome(
                upload_id=upload_id,
                kind="upload" if kind_prefix == UPLOADS_PREFIX else "events",
                key=manifest.source_key,
                file_name=file_name,
                version=manifest.source_version,
                status="in_progress",
            ),
        )
        setattr(entry, manifest.stage, _outcome(manifest))
    for entry in files.values():
        # A file of a dataset with a table is done when the database loader is; any other in the lake.
        final = entry.database if route(entry.key).loads_database else entry.datalake
        entry.status = final.status if final else "in_progress"
    return sorted(files.values(), key=lambda entry: entry.upload_id)


def list_files(s3: S3Client, bucket: str, caller: Caller) -> FileList:
    manifests, truncated = _manifests(s3, bucket, caller)
    files = _files(manifests, caller)
    return FileList(files=files[:MAX_FILES], truncated=truncated or len(files) > MAX_FILES)


def get_file(s3: S3Client, bucket: str, caller: Caller, upload_id: str) -> list[FileOutcome]:
    """Every landed version of one upload or batch of the caller's; 403: another user's id; 404: none."""
    if not _ID.match(upload_id):
        raise NotFoundError(f"no file {upload_id!r}")
    if not upload_id.endswith(caller.owner_tag):
        raise ForbiddenError("this file is not yours")
    manifests, _ = _manifests(s3, bucket, caller, upload_id)
    files = _files(manifests, caller)
    if not files:
        raise NotFoundError(f"no outcome for {upload_id} yet: not uploaded, or not processed yet")
    return files
