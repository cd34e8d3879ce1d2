"""Set aside what cannot be loaded: rejected records (with reasons) and files that cannot be read at all."""

from __future__ import annotations

from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.manifests import MAX_ERRORS_IN_MANIFEST, RecordError, quarantined_file_key, rejects_key
from pipeline.objects import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pipeline.validation import Rejection

# Rejections are spooled to memory, then to /tmp past this size: memory stays bounded on a bad huge file.
SPOOL_IN_MEMORY = 8 * 1024**2


class RejectsWriter:
    """Collects rejected records as JSON Lines and uploads them once the file is done."""

    def __init__(self, ref: ObjectRef, key: str | None = None) -> None:
        self._ref = ref
        self._key = key or rejects_key(ref)  # a part of a file writes its own object beside the others
        self._lineage = ref.lineage()
        # Closed by upload(), which the loader always calls once the file is done.
        self._spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.count = 0
        self.first_errors: list[RecordError] = []

    def add(self, rejection: Rejection) -> None:
        self.count += 1
        if len(self.first_errors) < MAX_ERRORS_IN_MANIFEST:
            self.first_errors.append(RecordError(line=rejection.line, reasons=list(rejection.reasons)))
        entry: dict[str, Any] = {
            **self._lineage,
            "line": rejection.line,
            "reasons": rejection.reasons,
            "record": rejection.record,
        }
        self._spool.write(orjson.dumps(entry, default=str) + b"\n")

    def discard(self) -> None:
        """Drop what was collected (the work is handed back and will be done again)."""
        self._spool.close()

    def upload(self, s3: S3Client, bucket: str) -> str | None:
        """Upload the rejects (if any) to the quarantine bucket; returns their key."""
        try:
            if not self.count:
                return None
            key = self._key
            self._spool.seek(0)
            s3.upload_fileobj(self._spool, bucket, key, ExtraArgs={"ContentType": "application/x-ndjson"})
            return key
        finally:
            self._spool.close()


def quarantine_file(s3: S3Client, ref: ObjectRef, bucket: str) -> str:
    """Keep a server-side copy of an unreadable file next to its manifest, for inspection and replay."""
    source: dict[str, str] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        source["VersionId"] = ref.version_id
    key = quarantined_file_key(ref)
    s3.copy(source, bucket, key)  # type: ignore[arg-type]
    return key
