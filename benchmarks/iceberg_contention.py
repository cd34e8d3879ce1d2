"""Plain Parquet objects against an Apache Iceberg table when many functions write at once (issue 12).

The curated zone is written by many concurrent functions (one unit of work each: a small file, or a part of a
big one). This measures what each way costs them, on the same local disk so that only the write protocol
differs:

- **plain Parquet** (what the pipeline does): each unit writes one object with a deterministic name; there is
  nothing to commit, so writers never wait for each other;
- **Iceberg** (pyiceberg, a SQL catalogue on SQLite, as the embedded target would have; Glue on AWS): each
  unit appends its rows to one table, which commits a new snapshot by swapping the table's metadata pointer
  optimistically; a writer that lost the race refreshes the table and tries again.

``--writers`` processes each write ``--units`` units of ``--rows`` users. Prints units/s, the commit
conflicts (retries) and the latency per unit (p50/p99) for both, and the data files and metadata files
Iceberg left behind. A benchmark, not a test: it exits 0 either way.

pyiceberg is needed only here (not by the pipeline):

    .venv/bin/pip install -r requirements/iceberg-bench.txt
    .venv/bin/python benchmarks/iceberg_contention.py                    # 8 writers x 8 units x 2,000 rows
    .venv/bin/python benchmarks/iceberg_contention.py --writers 16 --units 4
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("email", pa.string()),
        ("age", pa.int64()),
        ("source_key", pa.string()),
        ("source_order", pa.string()),
    ]
)


def unit_rows(writer: int, unit: int, rows: int) -> pa.Table:
    ids = [f"u-{writer}-{unit}-{row}" for row in range(rows)]
    return pa.table(
        {
            "user_id": ids,
            "email": [f"{user}@example.com" for user in ids],
            "age": [row % 90 for row in range(rows)],
            "source_key": [f"users-{writer}-{unit}.csv"] * rows,
            "source_order": [f"2026-12-03T00:00:00Z|users-{writer}-{unit}.csv|v1"] * rows,
        },
        schema=SCHEMA,
    )


def plain_writer(args: tuple[str, int, int, int]) -> dict[str, Any]:
    root, writer, units, rows = args
    latencies = []
    began = time.time()
    for unit in range(units):
        table = unit_rows(writer, unit, rows)
        started = time.perf_counter()
        path = Path(root) / "curated" / "dataset=users" / f"users-{writer}-{unit}.v1.part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        latencies.append(time.perf_counter() - started)
    return {"latencies": latencies, "retries": 0, "gave_up": 0, "span": (began, time.time())}


def _catalog(root: str) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog  # imported here: optional, only this benchmark needs it

    return SqlCatalog("bench", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}/warehouse")


def iceberg_writer(args: tuple[str, int, int, int]) -> dict[str, Any]:
    from pyiceberg.exceptions import CommitFailedException

    root, writer, units, rows = args
    catalog = _catalog(root)
    conflicts = _ConflictCounter()
    logging.getLogger("pyiceberg").addHandler(conflicts)
    latencies, retries, gave_up = [], 0, 0
    began = time.time()
    for unit in range(units):
        frame = unit_rows(writer, unit, rows)
        started = time.perf_counter()
        for _attempt in range(50):
            table = catalog.load_table("lake.users")  # the latest metadata: a retry starts from it
            try:
                table.append(frame)
                break
            except CommitFailedException:
                retries += 1
        else:
            gave_up += 1
        latencies.append(time.perf_counter() - started)
    # pyiceberg retries a conflicting commit itself (it logs each): those count as retries too.
    retries += conflicts.count
    return {"latencies": latencies, "retries": retries, "gave_up": gave_up, "span": (began, time.time())}


class _ConflictCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "concurrent update" in record.getMessage():
            self.count += 1


def run(kind: str, root: str, writers: int, units: int, rows: int) -> dict[str, Any]:
    work = [(root, writer, units, rows) for writer in range(writers)]
    target = plain_writer if kind == "plain" else iceberg_writer
    with multiprocessing.get_context("spawn").Pool(writers) as pool:
        results = pool.map(target, work)
    # From the first unit started to the last finished (process start-up left out).
    elapsed = max(r["span"][1] for r in results) - min(r["span"][0] for r in results)
    latencies = sorted(value for result in results for value in result["latencies"])
    return {
        "elapsed": elapsed,
        "units": len(latencies),
        "retries": sum(result["retries"] for result in results),
        "gave_up": sum(result["gave_up"] for result in results),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--rows", type=int, default=2_000)
    args = parser.parse_args()

    figures = {}
    with tempfile.TemporaryDirectory(prefix="plain-") as root:
        figures["plain Parquet objects"] = run("plain", root, args.writers, args.units, args.rows)
    with tempfile.TemporaryDirectory(prefix="iceberg-") as root:
        catalog = _catalog(root)
        catalog.create_namespace("lake")
        catalog.create_table("lake.users", schema=SCHEMA)
        figures["Iceberg appends (SQL catalogue)"] = run("iceberg", root, args.writers, args.units, args.rows)
        table = catalog.load_table("lake.users")
        stored = table.scan().to_arrow().num_rows
        snapshots = len(table.metadata.snapshots)
        metadata_files = len(list((Path(root) / "warehouse").rglob("*.metadata.json")))

    print(
        f"{args.writers} writers x {args.units} units x {args.rows:,} rows "
        f"({args.writers * args.units * args.rows:,} rows), one local disk\n"
    )
    print(f"{'write protocol':36} {'units/s':>8} {'p50':>8} {'p99':>8} {'retries':>8} {'gave up':>8}")
    for name, figure in figures.items():
        rate = figure["units"] / figure["elapsed"]
        print(
            f"{name:36} {rate:8.1f} {figure['p50']:7.3f}s {figure['p99']:7.3f}s "
            f"{figure['retries']:8} {figure['gave_up']:8}"
        )
    expected = args.writers * args.units * args.rows
    print(
        f"\nIceberg table after the run: {stored:,} rows (expected {expected:,}), {snapshots} snapshots, "
        f"{metadata_files} metadata files"
    )


if __name__ == "__main__":
    main()
