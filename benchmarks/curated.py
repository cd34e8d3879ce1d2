"""The curated zone's Parquet writer on one core: records/s for 1,000,000 users, and bytes against the CSV.

Validation runs in batches as the loader runs it, but only the writer's work (items -> Arrow -> Parquet row
groups -> the spool) is timed for the records/s figure; the whole path (parse + validate + Parquet) is
printed beside it. Each compression is run once; the upload is not part of it (no network here).

    .venv/bin/python benchmarks/curated.py [--rows N]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from datetime import UTC, datetime
from typing import Any

from pipeline import curated
from pipeline.curated import CuratedWriter
from pipeline.datasets import USERS
from pipeline.objects import ObjectRef
from pipeline.validation import iter_validated_batches
from workloads import as_csv, users

TARGET_RECORDS_PER_S = 200_000
BATCH = 10_000
REF = ObjectRef(
    bucket="landing",
    key="uploads/users.csv",
    event_time=datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
    version_id="3HL4kqtJvjVBH40Nrjfkd",
)


class SizeOnly:
    """Stands in for the S3 client: takes the spooled object and keeps its size."""

    size = 0

    def upload_fileobj(self, body: Any, bucket: str, key: str, **_: Any) -> None:
        self.size = len(body.read())


def run(raw: bytes, compression: str) -> tuple[float, float, float, int, int]:
    """(writer wall seconds, writer CPU seconds, whole path wall seconds, rows, Parquet bytes).

    CPU time beside wall time: on a shared machine the wall clock counts other processes' turns too."""
    curated.COMPRESSION = compression
    assert USERS.schema is not None
    writer = CuratedWriter(USERS, REF)
    writing = cpu = 0.0
    started = time.perf_counter()
    for batch in iter_validated_batches(
        io.BytesIO(raw), schema=USERS.schema, ref=REF, fmt="csv", batch_size=BATCH
    ):
        t, c = time.perf_counter(), time.process_time()
        writer.add(batch.items)
        writing, cpu = writing + time.perf_counter() - t, cpu + time.process_time() - c
    sink = SizeOnly()
    t, c = time.perf_counter(), time.process_time()
    writer.upload(sink, "bench-lake")  # type: ignore[arg-type]  # the last row group and the footer
    writing, cpu = writing + time.perf_counter() - t, cpu + time.process_time() - c
    return writing, cpu, time.perf_counter() - started, writer.rows, sink.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as a Lambda with 1769 MB has
    raw = as_csv(users(args.rows))
    print(f"{args.rows:,} users, raw CSV {len(raw) / 1e6:.1f} MB; row groups of {curated.ROW_GROUP_ROWS:,}")
    chosen = curated.COMPRESSION
    for compression in (chosen, "snappy" if chosen == "zstd" else "zstd"):
        writing, cpu, whole, rows, size = run(raw, compression)
        # The target is for one core of our own: judged per CPU second (the wall figure shares the core).
        rate = rows / cpu
        verdict = "ok" if rate >= TARGET_RECORDS_PER_S else "BELOW TARGET"
        print(
            f"  {compression:<6} to Parquet: {rate:>9,.0f} records per CPU second (target >= "
            f"{TARGET_RECORDS_PER_S:,}: {verdict}), {rows / writing:,.0f}/s wall;  "
            f"parse + validate + Parquet: {rows / whole:,.0f} records/s;  "
            f"curated {size / 1e6:.1f} MB = {size / len(raw):.0%} of the raw CSV"
            + ("  (the pipeline's choice)" if compression == chosen else "")
        )


if __name__ == "__main__":
    main()
