"""`pipeline query` over 1,000,000 curated users on the embedded target (target: under 2 s), beside the same
query over the raw CSV.

Starts the embedded emulator (moto's server on 127.0.0.1), writes 1,000,000 generated users to its data lake
as the curated zone holds them (Parquet, ``curated/dataset=users/ingest_date=<day>/``, ``--files`` files over
``--days`` days, with lineage columns) and the same users as one raw CSV in the landing bucket, then times,
end to end (listing, reading from the emulator over HTTP, DuckDB), the median of ``--runs`` runs of:

- a domain count over the curated Parquet, through :func:`pipeline_toolkit.query.run_sql` (what
  ``pipeline query`` runs);
- the same SQL over the raw CSV, streamed from the emulator by pyarrow's CSV reader into DuckDB;
- the named query ``users_per_email_domain`` (the later-event-wins window over every row) over the Parquet.

Prints each figure beside its target; a benchmark, not a test: it exits 0 either way.

    .venv/bin/python benchmarks/query_lake.py              # 1,000,000 users
    .venv/bin/python benchmarks/query_lake.py --users 100000 --runs 3
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import workloads
from pipeline_toolkit import emulator as emulator_module
from pipeline_toolkit import query
from pipeline_toolkit.clients import Clients

TARGET_SECONDS = 2.0
DOMAIN_SQL = (
    "SELECT lower(regexp_extract(email, '@([^@]+)$', 1)) AS email_domain, count(DISTINCT user_id) AS users, "
    "avg(age) AS mean_age FROM users GROUP BY 1 ORDER BY users DESC"
)


def curated(records: list[dict[str, object]], day: str, key: str) -> pa.Table:
    time_text = f"{day}T12:00:00"
    event_time = datetime.fromisoformat(time_text).replace(tzinfo=UTC)
    columns: dict[str, Any] = {
        name: [record[name] for record in records]
        for name in ("user_id", "first_name", "last_name", "email", "gender", "age")
    }
    columns["email"] = [str(email).lower() for email in columns["email"]]
    count = len(records)
    columns.update(
        source_key=[key] * count,
        source_version=["v1"] * count,
        source_order=[f"{time_text}Z|{key}|v1"] * count,
        source_line=list(range(2, count + 2)),
        event_time=pa.array([event_time] * count, pa.timestamp("ms", tz="UTC")),
    )
    schema = pa.schema([f for f in query.SCHEMAS["users"] if f.name in columns])
    return pa.table(columns, schema=schema)


def timed(runs: int, action: Callable[[], int]) -> tuple[float, int]:
    seconds, rows = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        rows = action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    emulator = emulator_module.start()
    try:
        clients = Clients(emulator.environment())
        lake, landing = "bench-datalake", "bench-landing"
        for bucket in (lake, landing):
            clients.s3.create_bucket(Bucket=bucket)

        started = time.perf_counter()
        records = workloads.users(args.users)
        per_file = -(-len(records) // args.files)
        parquet_bytes = 0
        for index in range(args.files):
            day = f"2024-05-{1 + index % args.days:02d}"
            key = f"users-{index:03d}.csv"
            sink = io.BytesIO()
            pq.write_table(curated(records[index * per_file : (index + 1) * per_file], day, key), sink)
            parquet_bytes += sink.tell()
            clients.s3.put_object(
                Bucket=lake,
                Key=f"curated/dataset=users/ingest_date={day}/users-{index:03d}.parquet",
                Body=sink.getvalue(),
            )
        raw = workloads.as_csv(records)
        clients.s3.put_object(Bucket=landing, Key="users.csv", Body=raw)
        del records
        print(
            f"wrote {args.users:,} users: {args.files} Parquet files ({parquet_bytes / 2**20:.1f} MiB), "
            f"one CSV ({len(raw) / 2**20:.1f} MiB) in {time.perf_counter() - started:.1f} s"
        )

        filesystem = query.s3_filesystem(clients.environment, clients.region)

        def over_parquet(sql: str) -> Callable[[], int]:
            def run() -> int:
                result = query.run_sql(
                    sql, filesystem=filesystem, datalake_bucket=lake, quarantine_bucket=lake
                )
                return len(result.rows)

            return run

        def over_csv() -> int:
            with filesystem.open_input_stream(f"{landing}/users.csv") as stream:
                reader = pacsv.open_csv(stream)
                connection = duckdb.connect()
                connection.register("users", reader)
                rows = len(connection.execute(DOMAIN_SQL).fetchall())
                connection.close()
                return rows

        named = query.named_queries()["users_per_email_domain"]
        figures = [
            (
                "domain count, curated Parquet (pipeline query)",
                *timed(args.runs, over_parquet(DOMAIN_SQL)),
                True,
            ),
            ("the same SQL over the raw CSV", *timed(args.runs, over_csv), False),
            (
                "named users_per_email_domain (merge rule), Parquet",
                *timed(args.runs, over_parquet(named)),
                True,
            ),
        ]
        print(f"\n{'query':<55} {'median':>8} {'rows':>6}  target")
        for label, seconds, rows, has_target in figures:
            verdict = (
                f"< {TARGET_SECONDS:.0f} s {'PASS' if seconds < TARGET_SECONDS else 'MISS'}"
                if has_target
                else "-"
            )
            print(f"{label:<55} {seconds:>7.2f}s {rows:>6}  {verdict}")
        print(f"(median of {args.runs} runs each, {args.users:,} users)")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
