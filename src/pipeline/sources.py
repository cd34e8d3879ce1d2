"""Reading exactly the object version an S3 event announced.

Real S3 puts ``versionId`` in events from versioned buckets, but some emulators leave it out. Without it,
"the latest version" could be newer bytes than the event announced, so the version is pinned first, by
matching the event's ETag, and lineage names the real version either way.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
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


UPLOADED_BY = "uploaded-by"
"""The user metadata naming who landed the object (the ingest API sets the caller's Cognito ``sub``)."""
MAX_UPLOADED_BY = 128
# Bounded ASCII: metadata of a file dropped straight into the landing bucket is whatever its writer chose, and
# the value goes into S3 metadata, DynamoDB items and Parquet; this alphabet cannot inject anything there.
_UPLOADED_BY = re.compile(rf"[A-Za-z0-9._:@-]{{1,{MAX_UPLOADED_BY}}}")


def parse_uploaded_by(metadata: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(the uploader, or None; a note when a value was given and dropped) from a version's user metadata.

    No ``uploaded-by`` is not worth a note (most dropped files have none). A value that is not 1-128
    characters of ``[A-Za-z0-9._:@-]`` is treated as absent and noted, without repeating it.
    """
    # S3 lowercases metadata names, but other writers (emulators, copies) might not.
    given = next((value for name, value in metadata.items() if name.lower() == UPLOADED_BY), None)
    if given is None:
        return None, None
    if _UPLOADED_BY.fullmatch(given):
        return given, None
    if not given:
        reason = "empty"
    elif len(given) > MAX_UPLOADED_BY:
        reason = f"{len(given)} characters, more than {MAX_UPLOADED_BY}"
    else:
        reason = "characters other than letters, digits and -_.:@"
    return None, f"{UPLOADED_BY} metadata ignored: {reason}"


def with_uploader(ref: ObjectRef, metadata: Mapping[str, str]) -> ObjectRef:
    """``ref`` with the uploader its version's metadata names (see :func:`parse_uploaded_by`)."""
    uploaded_by, note = parse_uploaded_by(metadata)
    notes = (note,) if note else ()
    return dataclasses.replace(ref, uploaded_by=uploaded_by, lineage_notes=notes)


def read_uploader(s3: S3Client, ref: ObjectRef) -> ObjectRef:
    """``ref`` with its version's uploader: one HeadObject of exactly that version, once per file version
    (parts get it in their message, never per record)."""
    head = s3.head_object(Bucket=ref.bucket, Key=ref.key, **version_args(ref))
    return with_uploader(ref, head.get("Metadata", {}))
