"""Files of any size on the embedded target: first load, re-upload, replay, and a slow file among fast ones.

Starts the embedded stack as `make local-up` does (5 s function timeout, 256 KiB parts), then, end to end
from drop to final manifest:

1. the emulator's raw BatchWriteItem rate, measured in the same run (the ceiling any loader can reach here);
2. the source article's loader (a boto3 resource and one ``put_item`` per row) on a sample, for reference;
3. a users CSV of ``--rows`` rows, first load: rate beside the raw rate (target >= 60% of it);
4. the same content re-uploaded (a new version, every key exists): target >= 50% of the first load;
5. the same version delivered again (``pipeline replay``): target >= 20x the replay rate the issue measured
   (180 records/s), which means it writes (almost) nothing;
6. ten files dropped at once, one of them the big file again: the nine small ones must finish within one
   visibility timeout of the database loader's queue;
7. the peak resident memory of every worker process, sampled, minus its size when warm and idle (handler
   imported, before the first file; target <= 100 MiB).

Requests per record are counted from the emulator's DynamoDB write calls. Prints figures beside targets; it
is a benchmark, not a test: nothing asserts and it exits 0.

    .venv/bin/python benchmarks/big_file.py --rows 1000000      # the issue's size: about half an hour here
    .venv/bin/python benchmarks/big_file.py --rows 100000       # a quicker look
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from pipeline.datasets import USERS
from pipeline.enrichment import Enrichers, ReferenceStore
from pipeline.objects import ObjectRef
from pipeline.validation import iter_validated_batches
from pipeline_toolkit import recovery
from pipeline_toolkit.embedded import embedded_stack, local_variables

ISSUE_REPLAY_RATE = 180.0  # records/s: the replay of one version before this work (issue 9)
WORKERS_PER_QUEUE = 2  # two cores


def users_csv(path: Path, rows: int, tag: str, ids: str = "bench") -> int:
    with path.open("w", encoding="utf-8") as out:
        out.write("user_id,first_name,last_name,email,gender,age\n")
        for n in range(rows):
            out.write(f"{ids}-{n},{tag}{n},Last{n},user{n}@example.com,female,{20 + n % 60}\n")
    return path.stat().st_size


def loader_items(path: Path, s3: Any, bucket: str, lake: str) -> list[dict[str, Any]]:
    """The items the loader writes for the users CSV at ``path``: same attributes, lineage and enrichment
    (with the deployed reference data) included."""
    ref = ObjectRef(bucket=bucket, key="raw/users.csv", event_time=datetime.now(UTC), version_id="raw")
    assert USERS.schema is not None
    enricher = Enrichers(ReferenceStore(s3, lake), {}).get(USERS)
    with path.open("rb") as stream:
        batches = iter_validated_batches(stream, schema=USERS.schema, ref=ref, fmt="csv")
        items = [item for batch in batches for item in batch.items]
    if enricher is not None:
        enricher.apply(items)
    return items


def wait_final(s3: Any, bucket: str, key: str, version: str, timeout: float) -> dict[str, Any] | None:
    manifest = f"manifests/database/{key}@{version}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = json.loads(s3.get_object(Bucket=bucket, Key=manifest)["Body"].read())
        except s3.exceptions.NoSuchKey:
            body = None
        if body and body["status"] != "in_progress":
            return dict(body)
        time.sleep(0.5)
    return None


class Rss:
    """Samples the resident memory of the runtime's worker processes (``workers``: (pid, label) pairs).

    Growth is counted from :meth:`mark`, called with every worker warm and idle (its handler imported, as
    after Lambda's init phase), so it is what processing files adds; a worker started later (a fresh
    environment after a timeout) counts from its first sample, its init included."""

    def __init__(self, workers: Any) -> None:
        self.workers = workers
        self.base: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.labels: dict[int, str] = {}
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def rss(pid: int) -> int | None:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            for pid, label in self.workers():
                value = self.rss(pid)
                if value is None:
                    continue
                self.labels[pid] = label
                self.base.setdefault(pid, value)
                self.peak[pid] = max(self.peak.get(pid, 0), value)

    def mark(self) -> None:
        """Count growth from now, for the workers running now."""
        for pid, label in self.workers():
            value = self.rss(pid)
            if value is not None:
                self.labels[pid] = label
                self.base[pid] = self.peak[pid] = value

    def growth(self) -> tuple[float, float, str]:
        """The largest growth (MiB), that worker's peak resident size (MiB), and whose they were."""
        if not self.peak:
            return 0.0, 0.0, "no worker"
        pid = max(self.peak, key=lambda p: self.peak[p] - self.base[p])
        return (self.peak[pid] - self.base[pid]) / 2**20, self.peak[pid] / 2**20, self.labels[pid]


DYNAMODB = "DynamoDB_20120810."
WRITE_OPERATIONS = ("BatchWriteItem", "PutItem", "TransactWriteItems", "UpdateItem")


def count_writes(stack: Any) -> dict[str, int]:
    """DynamoDB requests the emulator has answered so far, by operation (``BatchWriteItem``, ...)."""
    counts: dict[str, int] = stack.emulator.request_counts()
    return {target.removeprefix(DYNAMODB): n for target, n in counts.items() if target.startswith(DYNAMODB)}


class Results(list[tuple[str, str, str]]):
    """The figures, each also printed as soon as it is measured (a long run that stops keeps what it had)."""

    def append(self, row: tuple[str, str, str]) -> None:
        super().append(row)
        print(f"{row[0]}: {row[1]}  [{row[2]}]", flush=True)


def main() -> int:  # noqa: PLR0915 - one scripted run, step by step
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2_000, help="rows for the source article's loader")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-big-"))
    results = Results()
    options = {"concurrency": WORKERS_PER_QUEUE}
    with embedded_stack(work / "state", variables=local_variables(), runtime_options=options) as stack:
        env = stack.environment
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )
        ddb = session.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"])
        s3 = stack.clients.s3
        out = stack.outputs
        assert stack.runtime is not None
        runtime = stack.runtime
        memory = Rss(lambda: [(w.process.pid, w.label) for w in runtime.workers if w.process is not None])

        # 1. The emulator's raw BatchWriteItem rate, same run, for the very items the loader writes (other
        # keys): moto's cost grows with an item's attributes, so smaller items would flatter the ceiling.
        users_csv(work / "raw.csv", 20_000, "raw", ids="raw")
        loaded = loader_items(work / "raw.csv", s3, out.landing_bucket, out.datalake_bucket)
        items = [{"PutRequest": {"Item": item}} for item in loaded]
        started = time.monotonic()
        for start in range(0, len(items), 25):
            ddb.batch_write_item(RequestItems={out.table_name: items[start : start + 25]})
        raw = len(items) / (time.monotonic() - started)
        results.append(
            ("emulator BatchWriteItem of the loader's items", f"{raw:,.0f} items/s", "the ceiling")
        )

        # 2. The source article's loader.
        table = session.resource("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"]).Table(out.table_name)
        started = time.monotonic()
        for n in range(args.sample):
            table.put_item(Item={"user_id": f"article-{n}", "email": "a@example.com", "age": 30})
        article = args.sample / (time.monotonic() - started)
        results.append(
            ("source article's loader (put_item per row)", f"{article:,.0f} records/s", "reference")
        )

        path = work / "users.csv"
        size = users_csv(path, args.rows, "first")
        key = "bench/users.csv"
        timeout = max(600.0, args.rows / 200)

        def load(tag: str) -> tuple[float, dict[str, Any] | None, str, dict[str, int]]:
            if tag != "first":
                users_csv(path, args.rows, tag)
            before = count_writes(stack)
            started = time.monotonic()
            version = s3.put_object(Bucket=out.landing_bucket, Key=key, Body=path.read_bytes())["VersionId"]
            manifest = wait_final(s3, out.quarantine_bucket, key, version, timeout)
            elapsed = time.monotonic() - started
            after = count_writes(stack)
            return elapsed, manifest, version, {k: after.get(k, 0) - before.get(k, 0) for k in after}

        def requests_per_record(calls: dict[str, int]) -> str:
            writes = sum(calls.get(k, 0) for k in WRITE_OPERATIONS)
            reads = sum(v for k, v in calls.items() if k not in WRITE_OPERATIONS)
            return f"{writes / args.rows:.3f} writes + {reads / args.rows:.3f} reads per record"

        # 3. First load. Every worker is warm and idle by now (its handler imported at start).
        memory.mark()
        first_s, manifest, _, calls = load("first")
        first = args.rows / first_s if manifest else 0.0
        parts = manifest["parts_total"] if manifest else "?"
        results.append(
            (
                f"first load, {args.rows:,} rows ({size / 2**20:.0f} MiB, {parts} parts)",
                f"{first:,.0f} records/s ({first / raw:.0%} of raw)" if manifest else "DID NOT FINISH",
                f">= 60% of raw: {'PASS' if first >= 0.6 * raw else 'MISS'}; {requests_per_record(calls)}",
            )
        )

        # 4. Re-upload: every key exists, so updates.
        again_s, manifest2, version2, calls2 = load("second")
        again = args.rows / again_s if manifest2 else 0.0
        results.append(
            (
                "re-upload, all keys exist",
                f"{again:,.0f} records/s ({again / first if first else 0:.0%} of first)"
                if manifest2
                else "DID NOT FINISH",
                f">= 50% of first: {'PASS' if first and again >= 0.5 * first else 'MISS'}; "
                + requests_per_record(calls2),
            )
        )

        # 5. The same version again.
        before = count_writes(stack)
        manifest_key = f"manifests/datalake/{key}@{version2}.json"
        lake_before = s3.head_object(Bucket=out.quarantine_bucket, Key=manifest_key)["ETag"]
        started = time.monotonic()
        recovery.replay(
            s3, stack.clients.sns, landing_bucket=out.landing_bucket, quarantine_bucket=out.quarantine_bucket,
            topic_arn=out.topic_arn, key=key, version=version2,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if s3.head_object(Bucket=out.quarantine_bucket, Key=manifest_key)["ETag"] != lake_before:
                break
            time.sleep(0.2)
        depth = 1
        while depth and time.monotonic() < deadline:
            attrs = stack.clients.sqs.get_queue_attributes(
                QueueUrl=out.queues["database-loader"].url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depth = sum(int(v) for v in attrs.values())
            time.sleep(0.2)
        replay_s = time.monotonic() - started
        after = count_writes(stack)
        writes = sum(after.get(k, 0) - before.get(k, 0) for k in WRITE_OPERATIONS)
        replay = args.rows / replay_s
        results.append(
            (
                "the same version delivered again",
                f"{replay:,.0f} records/s ({replay / ISSUE_REPLAY_RATE:,.0f}x the issue's 180/s)",
                f">= 20x: {'PASS' if replay >= 20 * ISSUE_REPLAY_RATE else 'MISS'}; {writes} DynamoDB writes",
            )
        )

        # 6. One big file and nine small ones at once.
        visibility = next(
            w.mapping.queue.visibility_timeout
            for w in stack.runtime.workers
            if w.function.name.endswith("database-loader")
        )
        users_csv(path, args.rows, "third")
        dropped = time.monotonic()
        big_version = s3.put_object(Bucket=out.landing_bucket, Key=key, Body=path.read_bytes())["VersionId"]
        small = []
        for n in range(9):
            small_key = f"bench/small-{n}/users.csv"
            body = f"user_id,email\nsmall-{n},s{n}@example.com\n".encode()
            small.append(
                (small_key, s3.put_object(Bucket=out.landing_bucket, Key=small_key, Body=body)["VersionId"])
            )
        small_done = [wait_final(s3, out.quarantine_bucket, k, v, visibility * 2) for k, v in small]
        small_s = time.monotonic() - dropped
        wait_final(s3, out.quarantine_bucket, key, big_version, timeout)
        results.append(
            (
                "nine small files sharing a batch with the big one",
                f"all {sum(1 for m in small_done if m)} done in {small_s:.1f} s",
                f"within one visibility timeout ({visibility} s): "
                + ("PASS" if small_s <= visibility and all(small_done) else "MISS"),
            )
        )

        # 7. Memory, dead letters, timeouts.
        memory.stop.set()
        growth, peak, grower = memory.growth()
        results.append(
            (
                "peak worker memory growth over its warm idle size",
                f"{growth:.1f} MiB ({grower}; peak RSS {peak:.0f} MiB)",
                f"<= 100 MiB: {'PASS' if growth <= 100 else 'MISS'}",
            )
        )
        dlqs = {
            k: int(
                stack.clients.sqs.get_queue_attributes(
                    QueueUrl=q.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            for k, q in out.queues.items()
        }
        timeouts = sum(worker.timeouts for worker in stack.runtime.workers)
        results.append(("dead letters, timed-out invocations", f"{sum(dlqs.values())}, {timeouts}", "0, 0"))
    width = max(len(name) for name, _, _ in results)
    for name, value, target in results:
        print(f"{name:{width}}  {value:38}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
