"""The spool: batches not yet acknowledged, on disk, so that a killed process loses none of them.

Layout of a spool directory::

    pending/<sequence>-<idempotency key>.json   a sealed batch, until the API answered it with a 2xx
    failed/<sequence>-<idempotency key>.json    a batch the API refused for good (4xx), with the answer
    journal/<journal id>.ndjson                 the records of the batch being filled, one per line
    .lock                                       held (flock) by the process using the spool

A sealed batch is written atomically (a temporary file, fsync, rename, fsync of the directory): after a crash
it is either there whole, holding its idempotency key, or not there at all. The journal is appended with one
``write`` per record and no fsync: what a process wrote survives its being killed (the kernel holds it), only
a power loss can take the last records of an unsealed batch. Sealing writes the pending file first and only
then removes the journal; on restart a journal whose batch is pending already is dropped, any other becomes a
batch.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "pipeline-tracker-batch/1"


class SpoolLockedError(RuntimeError):
    """Another live process uses this spool directory (two would resend each other's journals)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Records of one dataset sent in one request, under one idempotency key for every attempt."""

    dataset: str
    idempotency_key: str
    body: bytes  # NDJSON: one JSON object per line, each line ending with a newline
    records: int
    journal_id: str | None = None

    def lines(self) -> list[bytes]:
        return self.body.splitlines()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` whole, or (after a crash before the rename) is untouched."""
    temporary = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    _fsync_dir(path.parent)  # the rename itself is durable only once the directory is


class Journal:
    """The open batch's records, appended as they are tracked."""

    def __init__(self, path: Path, dataset: str) -> None:
        self.path = path
        self.journal_id = path.stem
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._write(json.dumps({"dataset": dataset}).encode() + b"\n")

    def _write(self, data: bytes) -> None:
        # One write per line: with O_APPEND the kernel puts it whole at the end.
        os.write(self._fd, data)

    def append(self, line: bytes) -> None:
        self._write(line + b"\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending_dir = directory / "pending"
        self.failed_dir = directory / "failed"
        self.journal_dir = directory / "journal"
        for path in (self.pending_dir, self.failed_dir, self.journal_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Released by the kernel when the process dies, SIGKILL included.
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLockedError(f"{directory} is in use by another process") from None
        # Files by idempotency key: a key can be pending twice (`pipeline send` run again cuts the batch an
        # interrupted run spooled under the same key, with the same bytes); one 2xx settles both.
        self._paths: dict[str, list[Path]] = {}
        for stale in self.pending_dir.glob(".tmp-*"):  # a write cut short: its batch was never sealed
            stale.unlink(missing_ok=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    # -- sealed batches ----------------------------------------------------------------------------------

    def save(self, batch: Batch) -> None:
        name = f"{time.time_ns():020d}-{batch.idempotency_key}.json"
        document: dict[str, Any] = {
            "format": FORMAT,
            "dataset": batch.dataset,
            "idempotency_key": batch.idempotency_key,
            "records": batch.records,
            "journal_id": batch.journal_id,
            "body": batch.body.decode(),
        }
        path = self.pending_dir / name
        write_atomically(path, json.dumps(document).encode())
        self._paths.setdefault(batch.idempotency_key, []).append(path)

    def remove(self, batch: Batch) -> None:
        """The API took the batch (2xx): it leaves the spool."""
        paths = self._paths.pop(batch.idempotency_key, [])
        for path in paths:
            path.unlink(missing_ok=True)
        if paths:
            _fsync_dir(self.pending_dir)

    def fail(self, batch: Batch, status: int, answer: Any) -> Path | None:
        """The API refused the batch for good: kept aside with its answer, never resent by itself."""
        paths = self._paths.pop(batch.idempotency_key, [])
        if not paths:
            return None
        document = json.loads(paths[0].read_bytes())
        document["status"] = status
        document["answer"] = answer
        target = self.failed_dir / paths[0].name
        write_atomically(target, json.dumps(document).encode())
        for path in paths:
            path.unlink(missing_ok=True)
        return target

    def pending(self) -> list[Batch]:
        """The sealed batches left by an earlier process, oldest first."""
        batches: list[Batch] = []
        for path in sorted(self.pending_dir.glob("*.json")):
            try:
                document = json.loads(path.read_bytes())
            except ValueError:  # not written by us (ours are renamed into place whole): set aside, not lost
                path.replace(self.failed_dir / path.name)
                continue
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                continue
            batch = Batch(
                dataset=document["dataset"],
                idempotency_key=document["idempotency_key"],
                body=document["body"].encode(),
                records=int(document["records"]),
                journal_id=document.get("journal_id"),
            )
            self._paths.setdefault(batch.idempotency_key, []).append(path)
            batches.append(batch)
        return batches

    # -- journals ----------------------------------------------------------------------------------------

    def open_journal(self, dataset: str) -> Journal:
        return Journal(self.journal_dir / f"{uuid.uuid4().hex}.ndjson", dataset)

    def orphaned_journals(self, sealed: set[str]) -> list[tuple[str, str, list[bytes]]]:
        """(journal id, dataset, record lines) of each journal whose batch was never sealed; the journals of
        batches in ``sealed`` (their journal ids) are dropped."""
        found: list[tuple[str, str, list[bytes]]] = []
        for path in sorted(self.journal_dir.glob("*.ndjson")):
            if path.stem in sealed:
                path.unlink(missing_ok=True)
                continue
            raw = path.read_bytes()
            # A last line without its newline was being written when the process died: track() never
            # returned for it.
            complete = raw[: raw.rfind(b"\n") + 1]
            if not complete:  # died before its header: no record in it
                path.unlink(missing_ok=True)
                continue
            header, *lines = complete.splitlines()
            found.append((path.stem, json.loads(header)["dataset"], [line for line in lines if line]))
        return found

    def journal_path(self, journal_id: str) -> Path:
        return self.journal_dir / f"{journal_id}.ndjson"
