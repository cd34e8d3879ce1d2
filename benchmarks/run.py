"""Record-path benchmarks: throughput of parse + validate + serialise, and memory while streaming 1 GiB.

Prints each figure beside its target with PASS or MISS. Not a test: nothing asserts on it, and it exits 0
either way (``--strict`` exits 1 on a MISS). Runs on one core (pinned) and takes about two minutes;
``--quick`` streams 128 MiB instead of 1 GiB for a fast look.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import orjson

import workloads
from pipeline.objects import ObjectRef
from pipeline.readers import Format
from pipeline.schemas import UserRecord
from pipeline.validation import iter_validated_batches

HERE = Path(__file__).resolve().parent
RECORDS = 100_000
RUNS = 5
TARGET_JSONL_PER_SECOND = 150_000
TARGET_GROWTH_MIB = 100
REF = ObjectRef("landing", "incoming/users.jsonl", datetime(2024, 5, 1, tzinfo=UTC), version_id="v1")


def pin_to_one_core() -> str:
    """The targets are per core: keep this process (and its child) on a single CPU."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def records_per_second(run: Callable[[], int], runs: int = RUNS) -> float:
    """Median over ``runs`` timed runs, after one warm-up run."""
    count = run()
    rates = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def loader_path(data: bytes, fmt: Format, *, gzipped: bool = False) -> Callable[[], int]:
    """What the database loader does per file, minus the network: every batch, every item."""

    def run() -> int:
        count = 0
        for batch in iter_validated_batches(
            io.BytesIO(data), schema=UserRecord, ref=REF, fmt=fmt, gzipped=gzipped
        ):
            count += batch.records_read
        return count

    return run


def naive_path(data: bytes) -> Callable[[], int]:
    """For comparison: per-line model_validate_json + model_dump + boto3's TypeSerializer."""
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()

    def run() -> int:
        count = 0
        for line in data.splitlines():
            record = UserRecord.model_validate_json(line).model_dump(exclude_none=True)
            {name: serializer.serialize(value) for name, value in record.items()}
            count += 1
        return count

    return run


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def throughput() -> list[bool]:
    records = workloads.users(RECORDS)
    jsonl, csv = workloads.as_jsonl(records), workloads.as_csv(records)
    array = workloads.as_json_array(records)
    bad_jsonl = workloads.as_jsonl(workloads.users(RECORDS, bad_every=10))

    print(f"\nThroughput: parse + validate + serialise {RECORDS:,} generated users (median of {RUNS} runs)")
    jsonl_rate = records_per_second(loader_path(jsonl, "jsonl"))
    print(
        f"  {'JSON Lines':<34} {jsonl_rate:>10,.0f} records/s   target >= {TARGET_JSONL_PER_SECOND:,}"
        f"   {verdict(jsonl_rate >= TARGET_JSONL_PER_SECOND)}"
    )
    for label, run in (
        ("CSV", loader_path(csv, "csv")),
        ("JSON array", loader_path(array, "json")),
        ("JSON Lines, gzipped", loader_path(gzip.compress(jsonl), "jsonl", gzipped=True)),
        ("CSV, gzipped", loader_path(gzip.compress(csv), "csv", gzipped=True)),
        ("JSON Lines, 10% bad records", loader_path(bad_jsonl, "jsonl")),
    ):
        print(f"  {label:<34} {records_per_second(run):>10,.0f} records/s   (reported)")

    lines = jsonl.splitlines()
    orjson_rate = records_per_second(lambda: len([orjson.loads(line) for line in lines]), runs=3)
    naive_rate = records_per_second(naive_path(jsonl), runs=3)
    print("  for reference, on the same JSON Lines:")
    print(f"  {'  orjson.loads alone':<34} {orjson_rate:>10,.0f} records/s")
    print(f"  {'  naive validate + dump + boto3':<34} {naive_rate:>10,.0f} records/s")
    return [jsonl_rate >= TARGET_JSONL_PER_SECOND]


def memory(size_mib: int) -> list[bool]:
    print(f"\nMemory: a {size_mib:,} MiB users CSV, generated as it is read, through iter_validated_batches")
    child = subprocess.run(
        [sys.executable, str(HERE / "stream_memory.py"), "--size-mib", str(size_mib)],
        check=True,
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    result = json.loads(child.stdout)
    growth = result["growth_mib"]
    note = " (peak includes start-up: upper bound)" if result["peak_includes_startup"] else ""
    print(
        f"  {'peak RSS growth':<34} {growth:>10.1f} MiB         target <= {TARGET_GROWTH_MIB} MiB"
        f"   {verdict(growth <= TARGET_GROWTH_MIB)}{note}"
    )
    rate = result["records_read"] / result["seconds"]
    print(
        f"  {result['bytes'] / 2**30:.2f} GiB, {result['records_read']:,} records "
        f"({result['records_loaded']:,} loaded, {result['records_rejected']:,} rejected) "
        f"in {result['seconds']:.0f} s: {rate:,.0f} records/s; "
        f"RSS {result['baseline_rss_mib']:.0f} -> peak {result['peak_rss_mib']:.0f} MiB"
    )
    return [growth <= TARGET_GROWTH_MIB]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="stream 128 MiB instead of 1 GiB")
    parser.add_argument("--size-mib", type=int, help="size of the streamed CSV (default 1024)")
    parser.add_argument("--skip-memory", action="store_true", help="throughput only")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a figure misses its target")
    args = parser.parse_args()

    pinned = pin_to_one_core()
    print(
        f"Record-path benchmarks: Python {platform.python_version()}, pydantic {version('pydantic')}, "
        f"orjson {version('orjson')}, ijson {version('ijson')}; {pinned}"
    )
    results = throughput()
    if not args.skip_memory:
        results += memory(args.size_mib or (128 if args.quick else 1024))
    print(f"\n{sum(results)} of {len(results)} targets met")
    return 1 if args.strict and not all(results) else 0


if __name__ == "__main__":
    sys.exit(main())
