"""Reading exactly the object version an S3 event announced.

Real S3 puts ``versionId`` in events from versioned buckets, but some emulators leave it out. Without it,
"the latest version" could be newer bytes than the event announced, so the version is pinned first, by
matching the event's ETag, and lineage names the real version either way.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.objects import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class SourceGoneError(RuntimeError):
    """The announced object version no longer exists (deleted or overwritten without versioning)."""


# What S3 answers for a key that is not there: 404, or 403 to a caller without s3:ListBucket on the bucket.
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "403", "AccessDenied"})


def is_missing(exc: ClientError) -> bool:
    """Whether ``exc`` says the object is not there (rather than a real failure)."""
    return exc.response.get("Error", {}).get("Code") in _MISSING_CODES


def quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def pin_version(s3: S3Client, ref: ObjectRef) -> ObjectRef:
    """The same reference with its version id filled in when the event left it out."""
    if ref.version_id or not ref.etag:
        return ref
    try:
        head = s3.head_object(Bucket=ref.bucket, Key=ref.key, IfMatch=quoted(ref.etag))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"412", "PreconditionFailed"}:
            raise
        # Overwritten since the event: look for the announced bytes among the older versions.
        versions = s3.list_object_versions(Bucket=ref.bucket, Prefix=ref.key).get("Versions", [])
        for version in versions:
            if version.get("Key") == ref.key and version.get("ETag", "").strip('"') == ref.etag.strip('"'):
                return dataclasses.replace(ref, version_id=version.get("VersionId"))
        raise SourceGoneError(f"s3://{ref.bucket}/{ref.key} with ETag {ref.etag} no longer exists") from None
    pinned = head.get("VersionId")
    return dataclasses.replace(ref, version_id=pinned) if pinned and pinned != "null" else ref


def version_args(ref: ObjectRef) -> dict[str, Any]:
    """Request arguments that select exactly ``ref``'s bytes: its version, or its ETag when unversioned."""
    if ref.version_id:
        return {"VersionId": ref.version_id}
    if ref.etag:
        return {"IfMatch": quoted(ref.etag)}
    return {}


def open_source(s3: S3Client, ref: ObjectRef) -> Any:
    """A streaming body of exactly the version the event announced."""
    return s3.get_object(Bucket=ref.bucket, Key=ref.key, **version_args(ref))["Body"]
