"""Staging rate: how fast a gzip file or a JSON array is turned into its plain, splittable copy, in MB/s.

:mod:`pipeline.staging` streams such a file once, in one invocation, before its parts are planned; this rate
(times the database loader's timeout) bounds the size such a file may have. Measured on generated users
(``workloads``) held in memory, so S3 transfer is left out: on AWS the copy is also bound by the multipart
upload (8 MiB parts, two threads). Prints MB/s of the staged copy (decompressed bytes) beside the target;
nothing asserts, it exits 0 either way.

Run: ``.venv/bin/python benchmarks/staging.py`` (``--rows 100000`` for a quick look).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import time

from pipeline.staging import TranscodedStream

TARGET_MB_PER_SECOND = 50  # 15 min x 50 MB/s = 45 GB of decompressed text per gzip file or array on AWS
READ_BYTES = 8 << 20  # what s3transfer asks of the stream at a time (its multipart chunk)


def users_csv(rows: int) -> bytes:
    lines = ["user_id,first_name,last_name,email,gender,age"]
    lines += [f"u{n},First{n},Last{n},user{n}@example.com,female,{20 + n % 60}" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def users_array(rows: int) -> bytes:
    records = [
        {"user_id": f"u{n}", "first_name": f"First{n}", "email": f"user{n}@example.com", "age": 20 + n % 60}
        for n in range(rows)
    ]
    return json.dumps(records, indent=1).encode()


def rate(source: bytes, fmt: str, gzipped: bool, runs: int) -> tuple[float, int]:
    best = 0.0
    size = 0
    for _ in range(runs):
        stream = TranscodedStream(io.BytesIO(source), fmt, gzipped, budget=None)  # type: ignore[arg-type]
        started = time.perf_counter()
        while stream.read(READ_BYTES):
            pass
        elapsed = time.perf_counter() - started
        size = stream.size
        best = max(best, size / elapsed / 1e6)
    return best, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    csv_bytes = users_csv(args.rows)
    array_bytes = users_array(args.rows)
    cases = [
        ("gzip CSV -> CSV", gzip.compress(csv_bytes, compresslevel=6), "csv", True),
        ("JSON array -> JSON Lines", array_bytes, "json", False),
        ("gzip JSON array -> JSON Lines", gzip.compress(array_bytes, compresslevel=6), "json", True),
    ]
    for name, source, fmt, gzipped in cases:
        mb_per_s, staged = rate(source, fmt, gzipped, args.runs)
        verdict = "PASS" if mb_per_s >= TARGET_MB_PER_SECOND else "MISS"
        print(
            f"{name:30} {mb_per_s:7.1f} MB/s of staged copy ({len(source) / 1e6:.0f} MB in, "
            f"{staged / 1e6:.0f} MB out)   target >= {TARGET_MB_PER_SECOND} MB/s {verdict}"
        )


if __name__ == "__main__":
    main()
