"""Planner scan rate: how fast :func:`pipeline.splits.plan_parts` plans a big CSV file, in MB/s.

Generates about 200 MB of CSV in memory (plain LF rows without quotes; CRLF rows with quoted fields,
doubled quotes and quoted newlines), plans each into parts of ``--part-mib`` (the default part size) and
prints the best of ``--runs`` rates beside the target. Print only: nothing asserts, it exits 0 either way.
``read_range`` slices the bytes in memory, so the figure is the scan's own cost (S3 transfer excluded).

Run: ``.venv/bin/python benchmarks/split_scan.py`` (``--size-mb 50`` for a quick look).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from pipeline.splits import plan_parts

TARGET_MB_PER_SECOND = 200
BLOCK_ROWS = 20_000


def plain_lf_block(rng: random.Random) -> bytes:
    rows = [
        f"{n},user{rng.randrange(10**6)},{rng.choice(['alice', 'bob', 'carol'])}@example.com,"
        f"{rng.randrange(18, 90)},{rng.random():.6f},2024-05-{rng.randrange(1, 29):02d}"
        for n in range(BLOCK_ROWS)
    ]
    return ("\n".join(rows) + "\n").encode()


def quoted_crlf_block(rng: random.Random) -> bytes:
    notes = ['"plain note"', '"with, comma"', '"two\r\nlines"', '"say ""hi"""', '"ünïcødé"', '""', "bare"]
    rows = [
        f'{n},"user {rng.randrange(10**6)}","{rng.choice(["alice", "bob"])}@example.com",'
        f"{rng.choice(notes)},{rng.choice(notes)},{rng.randrange(18, 90)}"
        for n in range(BLOCK_ROWS)
    ]
    return ("\r\n".join(rows) + "\r\n").encode()


def generate(header: bytes, block: bytes, size: int) -> bytes:
    return header + block * max(1, size // len(block))


def rate(data: bytes, part_bytes: int, runs: int) -> tuple[float, int]:
    """Best MB/s over ``runs`` plans of ``data``, and the number of parts."""
    read_range: Callable[[int, int], bytes] = lambda start, end: data[start:end]  # noqa: E731
    best = 0.0
    parts = 0
    for _ in range(runs):
        started = time.perf_counter()
        parts = len(plan_parts(read_range, len(data), "csv", part_bytes))
        best = max(best, len(data) / 1e6 / (time.perf_counter() - started))
    return best, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--part-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mb * 1_000_000
    rng = random.Random(42)
    workloads = {
        "plain LF": generate(b"id,name,email,age,score,day\n", plain_lf_block(rng), size),
        "CRLF, quoted fields and newlines": generate(
            b"id,name,email,note,other,age\r\n", quoted_crlf_block(rng), size
        ),
    }
    print(f"plan_parts scan rate, parts of {args.part_mib} MiB, best of {args.runs}")
    for name, data in workloads.items():
        for part_mib in sorted({args.part_mib, 8}):
            mb_per_second, parts = rate(data, part_mib << 20, args.runs)
            verdict = "PASS" if mb_per_second >= TARGET_MB_PER_SECOND else "MISS"
            print(
                f"  {name:<34} {len(data) / 1e6:6.0f} MB  {part_mib:3d} MiB parts ({parts:3d})"
                f"  {mb_per_second:8.0f} MB/s  target >= {TARGET_MB_PER_SECOND} MB/s  {verdict}"
            )


if __name__ == "__main__":
    main()
