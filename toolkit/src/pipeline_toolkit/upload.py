"""``pipeline drop``: upload files to the landing bucket, with a progress bar for big or many files.

Uploads go through boto3's transfer manager (multipart above its threshold, parts in parallel), so a big file
is streamed from disk, never read whole into memory.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MULTIPART_THRESHOLD = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Dropped:
    """A file now in the landing bucket."""

    path: Path
    key: str
    version_id: str
    size: int
    dropped_at: float  # time.monotonic() when the upload completed


def key_for(path: Path, prefix: str = "") -> str:
    """The landing key of a local file: the prefix (a folder, ``/`` added if missing) and the file name."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix + path.name


def drop_files(
    s3: S3Client,
    bucket: str,
    paths: Sequence[Path],
    *,
    prefix: str = "",
    keys: Sequence[str] | None = None,
    console: Console | None = None,
    show_progress: bool = True,
) -> list[Dropped]:
    """Upload each file (to ``keys`` if given, else prefix + file name); returns the versions created."""
    if keys is not None and len(keys) != len(paths):
        raise ValueError("give one key per file")
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError("not a file: " + ", ".join(missing))
    targets = list(keys) if keys is not None else [key_for(path, prefix) for path in paths]
    config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=4)
    dropped: list[Dropped] = []
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
        transient=False,
    )
    with progress:
        overall = progress.add_task(f"{len(paths)} file(s)", total=sum(path.stat().st_size for path in paths))
        for path, key in zip(paths, targets, strict=True):
            size = path.stat().st_size
            task = progress.add_task(key, total=size)

            def advance(sent: int, task: TaskID = task) -> None:
                progress.advance(task, sent)
                progress.advance(overall, sent)

            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            s3.upload_file(
                str(path),
                bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Callback=advance,
                Config=config,
            )
            dropped_at = time.monotonic()
            version_id = s3.head_object(Bucket=bucket, Key=key).get("VersionId") or "null"
            dropped.append(
                Dropped(path=path, key=key, version_id=version_id, size=size, dropped_at=dropped_at)
            )
    return dropped
