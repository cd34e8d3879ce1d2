"""What happened to each dropped file: its manifests, dead letters, the table and the queues.

Read only from the deployed stack (landing bucket versions, the manifests in the quarantine bucket, the
dead-letter queues, the table), so it tells the same story for the embedded emulator, LocalStack or AWS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.datasets import route
from pipeline.events import EventError, object_refs
from pipeline.manifests import WORK_PREFIX, Manifest, iter_manifests
from pipeline_toolkit.project import load_functions

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from pipeline_toolkit.clients import Clients
    from pipeline_toolkit.outputs import StackOutputs

FileVersion = tuple[str, str]  # (key, version label: the version id, or "null" when unversioned)
MAX_DLQ_PEEKS = 50
PEEK_SECONDS = 10  # how long peeked dead letters stay hidden if releasing them fails


@dataclass
class FileStatus:
    """One landed file version and what each stage made of it."""

    key: str
    version: str
    dataset: str
    loads_database: bool
    datalake: Manifest | None = None
    database: Manifest | None = None
    # function key -> its manifest stage, for each function whose DLQ holds this file
    dead_lettered: dict[str, str] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        """Every stage that should see the file has written its manifest, or given up (dead letter)."""
        given_up = set(self.dead_lettered.values())
        lake_done = self.datalake is not None or "datalake" in given_up
        database_done = (
            not self.loads_database
            # "failed" (reference data missing) is retried, then dead-lettered: not settled until then
            or (self.database is not None and self.database.status not in {"in_progress", "failed"})
            or "database" in given_up
        )
        return lake_done and database_done

    @property
    def outcome(self) -> str:
        if self.dead_lettered:
            return "dead-lettered (" + ", ".join(sorted(self.dead_lettered)) + ")"
        if not self.settled:
            database = self.database
            if database is not None and database.status == "failed":
                return "failed, retrying"  # its reference data: the manifest's error says which
            parts = f" ({database.parts_done}/{database.parts_total} parts)" if database else ""
            return "in progress" + (parts if database and database.parts_total > 1 else "")
        statuses = [m.status for m in (self.datalake, self.database) if m is not None]
        if "quarantined" in statuses:
            return "quarantined"
        if "partial" in statuses:
            return "partial"
        return "loaded"

    @property
    def lake_key(self) -> str | None:
        return self.datalake.lake_key if self.datalake else None


@dataclass
class StackStatus:
    files: list[FileStatus]
    table_name: str
    table_items: int | None
    queue_depths: dict[str, int]  # function key -> messages waiting or in flight
    dlq_depths: dict[str, int]  # function key -> messages in its dead-letter queue

    def file(self, key: str, version: str | None = None) -> FileStatus | None:
        """The status of ``key`` (its given version, or the latest one listed)."""
        matches = [f for f in self.files if f.key == key and (version is None or f.version == version)]
        return matches[-1] if matches else None


def landed_versions(clients: Clients, bucket: str) -> list[FileVersion]:
    """Every object version in the landing bucket, oldest first per key."""
    versions: list[tuple[str, str, str]] = []
    for page in clients.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            versions.append(
                (version["Key"], str(version["LastModified"]), version.get("VersionId") or "null")
            )
    versions.sort()
    return [(key, version_id) for key, _, version_id in versions]


def dead_letters(sqs: SQSClient, dlq_url: str) -> set[FileVersion]:
    """The file versions announced by the messages in a dead-letter queue (peeked, then released)."""
    found: set[FileVersion] = set()
    held: list[str] = []
    try:
        for _ in range(MAX_DLQ_PEEKS):
            messages = sqs.receive_message(
                QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=PEEK_SECONDS, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                held.append(message["ReceiptHandle"])
                try:
                    refs = object_refs(message.get("Body", ""))
                except (EventError, ValueError):
                    continue  # a poison message that announces no file
                found.update((ref.key, ref.version_label) for ref in refs)
    finally:
        for start in range(0, len(held), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for index, handle in enumerate(held[start : start + 10])
                ],
            )
    return found


def queue_depth(sqs: SQSClient, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def table_item_count(clients: Clients, table: str) -> int:
    """Items in the table, counted with a paginated ``Select=COUNT`` scan (exact, unlike ItemCount)."""
    total = 0
    for page in clients.dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT"):
        total += page["Count"]
    return total


def parts_done(clients: Clients, bucket: str, manifest: Manifest) -> int:
    """How many parts of a file in progress have finished (their results, listed)."""
    prefix = f"{WORK_PREFIX}{manifest.source_key}@{manifest.source_version}/parts/"
    done = 0
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        done += len(page.get("Contents", []))
    return done


def collect(clients: Clients, outputs: StackOutputs, keys: Iterable[str] | None = None) -> StackStatus:
    """The status of every landed file (or only of ``keys``), with the table and the queues."""
    wanted = set(keys) if keys is not None else None
    files: dict[FileVersion, FileStatus] = {}
    for key, version in landed_versions(clients, outputs.landing_bucket):
        if wanted is not None and key not in wanted:
            continue
        dataset = route(key)
        files[(key, version)] = FileStatus(key, version, dataset.name, dataset.loads_database)
    for manifest in iter_manifests(clients.s3, outputs.quarantine_bucket):
        status = files.get((manifest.source_key, manifest.source_version))
        if status is None:
            continue
        if manifest.stage == "datalake":
            status.datalake = manifest
        else:
            if manifest.status == "in_progress":
                manifest.parts_done = parts_done(clients, outputs.quarantine_bucket, manifest)
            status.database = manifest
    dlq_depths: dict[str, int] = {}
    queue_depths: dict[str, int] = {}
    stages = {key: spec.manifest_stage for key, spec in load_functions().items()}
    for function_key, queue in sorted(outputs.queues.items()):
        dlq_depths[function_key] = queue_depth(clients.sqs, queue.dlq_url)
        queue_depths[function_key] = queue_depth(clients.sqs, queue.url)
        if dlq_depths[function_key]:
            for file_version in dead_letters(clients.sqs, queue.dlq_url):
                if file_version in files:
                    files[file_version].dead_lettered[function_key] = stages.get(function_key, "")
    return StackStatus(
        files=list(files.values()),
        table_name=outputs.table_name,
        table_items=table_item_count(clients, outputs.table_name),
        queue_depths=queue_depths,
        dlq_depths=dlq_depths,
    )


def wait_until_settled(
    clients: Clients,
    outputs: StackOutputs,
    files: Iterable[FileVersion],
    *,
    timeout: float = 180.0,
    interval: float = 0.1,
    on_settled: Callable[[FileStatus, float], None] | None = None,
) -> tuple[StackStatus, dict[FileVersion, float]]:
    """Poll until every given file version is settled (or ``timeout`` passes).

    Returns the last status and, per settled file, the :func:`time.monotonic` time it was first seen settled
    (``on_settled`` gets the same, as each file settles).
    """
    pending = set(files)
    keys = {key for key, _ in pending}
    settled_at: dict[FileVersion, float] = {}
    deadline = time.monotonic() + timeout
    while True:
        status = collect(clients, outputs, keys)
        now = time.monotonic()
        for file in status.files:
            file_version = (file.key, file.version)
            if file_version in pending and file.settled:
                pending.discard(file_version)
                settled_at[file_version] = now
                if on_settled is not None:
                    on_settled(file, now)
        if not pending or now >= deadline:
            return status, settled_at
        time.sleep(interval)
