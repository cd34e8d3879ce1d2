"""POST /uploads: a presigned POST for one file under the caller's own prefix.

The form lets the browser (or the CLI) upload straight to the landing bucket, signed by this function's role:
``uploads/<sub>/<upload id>/<file name>``, exactly that key, at most the declared size, the content type
fixed, and the uploader recorded in the object's metadata (``x-amz-meta-uploaded-by``). S3 refuses a POST
that breaks any of these conditions, so the API never has to see the bytes.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.exceptions import ServiceError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.datasets import route
from pipeline.ingest.auth import Caller
from pipeline.ingest.settings import IngestSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOADS_PREFIX = "uploads/"
# The content type each kind of file the pipeline reads is uploaded as (a trailing .gz: gzip).
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
    ".json": "application/json",
}
GZIP = "application/gzip"
# Printable, no path separators, no leading dot: the name is one key segment and a lake file name.
_FILE_NAME = re.compile(r"^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]{0,199}$")


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: Annotated[str, Field(min_length=1, max_length=200, examples=["users-2026-12.csv"])]
    content_type: Annotated[str, Field(min_length=1, max_length=100, examples=["text/csv"])]
    size: Annotated[int, Field(ge=1, description="The file's size in bytes: the upload may not exceed it.")]

    @field_validator("file_name")
    @classmethod
    def _one_segment(cls, value: str) -> str:
        if not _FILE_NAME.match(value):
            raise ValueError("must be a plain file name: no '/', '\\', control characters or leading dot")
        return value


class UploadForm(BaseModel):
    upload_id: str
    key: str
    dataset: str = Field(description="The dataset the file will be routed to by its name.")
    url: str = Field(description="POST a multipart/form-data form here: the fields below, then `file`.")
    fields: dict[str, str]
    content_type: str
    max_bytes: int
    expires_at: datetime


def expected_content_type(file_name: str) -> str | None:
    """The one content type a file of this name is uploaded as; None: the pipeline reads no such file."""
    lower = file_name.lower()
    if lower.endswith(".gz"):
        return GZIP if expected_content_type(lower[:-3]) is not None else None
    for extension, content_type in CONTENT_TYPES.items():
        if lower.endswith(extension):
            return content_type
    return None


def new_upload_id(caller: Caller) -> str:
    return secrets.token_hex(10) + caller.owner_tag


def presign(s3: S3Client, settings: IngestSettings, caller: Caller, request: UploadRequest) -> UploadForm:
    expected = expected_content_type(request.file_name)
    if expected is None:
        raise ServiceError(
            415,
            f"{request.file_name}: only {', '.join(sorted(CONTENT_TYPES))} files (optionally .gz) are taken",
        )
    declared = request.content_type.split(";", 1)[0].strip().lower()
    if declared != expected:
        raise ServiceError(
            415, f"{request.file_name} must be uploaded as {expected}, not {request.content_type}"
        )
    if request.size > settings.upload_max_bytes:
        raise ServiceError(
            413, f"{request.size} bytes: uploads are limited to {settings.upload_max_bytes} bytes"
        )

    upload_id = new_upload_id(caller)
    key = f"{UPLOADS_PREFIX}{caller.sub}/{upload_id}/{request.file_name}"
    fields = {
        "Content-Type": expected,
        "x-amz-meta-uploaded-by": caller.sub,
        "x-amz-meta-upload-id": upload_id,
    }
    conditions: list[object] = [{name: value} for name, value in fields.items()]
    conditions.append(["content-length-range", 1, request.size])
    post = s3.generate_presigned_post(
        Bucket=settings.landing_bucket,
        Key=key,
        Fields=fields,
        Conditions=conditions,
        ExpiresIn=settings.upload_expiry_seconds,
    )
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=settings.upload_expiry_seconds)
    return UploadForm(
        upload_id=upload_id,
        key=key,
        dataset=route(key).name,
        url=post["url"],
        fields={name: str(value) for name, value in post["fields"].items()},
        content_type=expected,
        max_bytes=request.size,
        expires_at=expires_at,
    )
