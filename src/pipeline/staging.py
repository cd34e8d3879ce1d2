"""Big files that cannot be cut by byte range (gzip, top-level JSON arrays) made into ones that can.

The database loader streams such a file once, within its time budget, into a plain copy in the work area of
the quarantine bucket, then plans parts on that copy exactly as for an uncompressed file
(:func:`pipeline.parts.plan_file`):

- a gzip CSV or JSON Lines file becomes ``work/<key>@<version>/staged.csv`` / ``staged.jsonl``: its
  decompressed bytes, unchanged;
- a JSON array (gzipped or not) becomes ``staged.jsonl``: one element per line, so element N of the array is
  line N of the copy, the number the array reader gives it. Rejects keep their numbers either way.

What it costs: one more read of the file, one multipart write of its decompressed bytes (8 MiB parts), the
copy's storage until the work area expires, and the time to stream the file once in one invocation. That
time bounds the size such a file may have: the staging throughput times the function timeout (see
benchmarks/README.md). An invocation that runs out of time before the copy is complete raises
:class:`~pipeline.budget.OutOfTime`, its partial upload is aborted, and the next delivery starts again; a
complete copy is recorded (``staged.json``) and reused, never made twice.

A file that stops being readable part-way (truncated gzip, broken JSON) is staged up to its last whole line
before the fault, and the fault is recorded: the file's manifest ends ``quarantined`` with it, its earlier
records loaded, as a whole-file load does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from pipeline.budget import Budget
from pipeline.datasets import Dataset
from pipeline.manifests import work_prefix
from pipeline.objects import ObjectRef
from pipeline.readers import (
    MAX_LINE_BYTES,
    Format,
    UnreadableFileError,
    detect_format,
    iter_content,
    iter_rows,
)
from pipeline.sources import is_missing, open_source

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GZIP_MAGIC = b"\x1f\x8b"
STAGING_CHUNK_BYTES = 8 << 20
# Non-seekable uploads buffer one chunk per thread: two threads keep the worker's memory well in bounds.
TRANSFER = TransferConfig(
    multipart_threshold=STAGING_CHUNK_BYTES, multipart_chunksize=STAGING_CHUNK_BYTES, max_concurrency=2
)
# A compressed file bigger than this share of part_bytes is staged: text gzips 4-10x, so a smaller one
# decompresses to about one part and loads whole.
GZIP_STAGE_FRACTION = 8
_JSON_LINES_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class StagedCopy:
    """Where a staged copy is, in what format, how big, and the fault that ended the source early."""

    bucket: str
    key: str
    format: Format
    size: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StagedCopy:
        return cls(**raw)


def needs_staging(ref: ObjectRef, dataset: Dataset, head: bytes, part_bytes: int) -> bool:
    """Whether a file must be staged before it can be split: gzip (by name or content) or a JSON array,
    big enough to be worth parts. ``head`` is the object's first bytes."""
    fmt, gzipped = detect_format(ref.key, dataset.format)
    size = ref.size or 0
    if gzipped or head.startswith(GZIP_MAGIC):
        return size * GZIP_STAGE_FRACTION > part_bytes
    return fmt == "json" and size > part_bytes


def record_key(ref: ObjectRef) -> str:
    return f"{work_prefix(ref)}staged.json"


def stage(
    s3: S3Client, ref: ObjectRef, dataset: Dataset, *, bucket: str, budget: Budget | None
) -> StagedCopy:
    """The staged copy of ``ref`` in ``bucket``: made now, or the one an earlier delivery completed."""
    existing = _recorded(s3, bucket, ref)
    if existing is not None:
        return existing
    fmt, gzipped = detect_format(ref.key, dataset.format)
    target: Format = "jsonl" if fmt == "json" else fmt
    key = f"{work_prefix(ref)}staged.{target}"
    source = TranscodedStream(open_source(s3, ref), fmt, gzipped, budget)
    content_type = "text/csv" if target == "csv" else "application/x-ndjson"
    try:
        # s3transfer needs only read(n) of a non-seekable stream; the stubs ask for a full IO.
        s3.upload_fileobj(source, bucket, key, Config=TRANSFER, ExtraArgs={"ContentType": content_type})  # type: ignore[arg-type]
    finally:
        source.close()
    copy = StagedCopy(bucket=bucket, key=key, format=target, size=source.size, error=source.error)
    # Written last: its presence says the copy is complete.
    s3.put_object(
        Bucket=bucket,
        Key=record_key(ref),
        Body=json.dumps(copy.to_dict()).encode(),
        ContentType="application/json",
    )
    return copy


def _recorded(s3: S3Client, bucket: str, ref: ObjectRef) -> StagedCopy | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=record_key(ref))["Body"].read()
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    return StagedCopy.from_dict(json.loads(body))


class TranscodedStream:
    """A ``read(n)`` stream of the staged copy's bytes, made from the source as it is read.

    It checks the time budget on every read (so an upload that cannot finish stops early) and stops at the
    last whole line before a fault in the source, keeping the fault's description in ``error``.
    """

    def __init__(self, body: Any, fmt: Format, gzipped: bool, budget: Budget | None) -> None:
        self._body = body
        self._budget = budget
        content = _json_lines(body, gzipped) if fmt == "json" else iter_content(body, gzipped)
        self._chunks = _whole_lines(self, content)
        self._buffer = bytearray()
        self.size = 0
        self.error: str | None = None

    def read(self, size: int = -1, /) -> bytes:
        if self._budget is not None:
            self._budget.check()
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        cut = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        self.size += len(data)
        return data

    def close(self) -> None:
        self._body.close()


def _whole_lines(stream: TranscodedStream, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks, holding back what follows the last newline until more comes; a fault drops it."""
    pending = b""
    try:
        for chunk in chunks:
            data = pending + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            pending = data[cut:]
            if len(pending) > MAX_LINE_BYTES:
                raise UnreadableFileError(f"a line is longer than {MAX_LINE_BYTES} bytes")
    except UnreadableFileError as exc:
        stream.error = str(exc)
        return
    if pending:
        yield pending


def _json_lines(body: Any, gzipped: bool) -> Iterator[bytes]:
    """A JSON array's elements as JSON Lines, about 1 MiB at a time; a fault comes after the elements
    before it."""
    out = bytearray()
    try:
        for _, element in iter_rows(body, "json", gzipped=gzipped):
            # ijson refuses integers beyond 64 bits, as orjson does: every element it yields can be written.
            out += orjson.dumps(element)
            out += b"\n"
            if len(out) >= _JSON_LINES_CHUNK:
                yield bytes(out)
                out.clear()
    except UnreadableFileError:
        yield bytes(out)
        raise
    if out:
        yield bytes(out)
