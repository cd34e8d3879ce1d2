"""Child process of run.py: stream a lazily generated CSV through the loader path, report peak RSS growth.

Run alone: ``python benchmarks/stream_memory.py --size-mib 1024``; prints one JSON object. A process of
its own so that the throughput runs' allocations do not count, and so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pipeline.objects import ObjectRef
from pipeline.schemas import UserRecord
from pipeline.validation import iter_validated_batches
from workloads import LazyCsv

REF = ObjectRef("landing", "incoming/users-big.csv", datetime(2024, 5, 1, tzinfo=UTC), version_id="v1")


def _status_kib(field: str) -> int | None:
    """VmRSS / VmHWM from /proc (Linux), in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so start-up and warm-up peaks do not count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def stream(size: int, batch_size: int) -> tuple[int, int, int, LazyCsv]:
    body = LazyCsv(size)
    read = loaded = rejected = 0
    for batch in iter_validated_batches(body, schema=UserRecord, ref=REF, fmt="csv", batch_size=batch_size):
        # What the loader does with a batch, minus the network: count it and let it go.
        read += batch.records_read
        loaded += len(batch.items)
        rejected += len(batch.rejections)
    return read, loaded, rejected, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    stream(4 << 20, args.batch_size)  # warm-up: imports, the schema's validator, allocator arenas
    gc.collect()
    exact_peak = _reset_peak()
    baseline_kib = _status_kib("VmRSS") or 0
    started = time.perf_counter()
    read, loaded, rejected, body = stream(args.size_mib << 20, args.batch_size)
    seconds = time.perf_counter() - started
    peak_kib = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump(
        {
            "bytes": body.bytes_read,
            "records_read": read,
            "records_loaded": loaded,
            "records_rejected": rejected,
            "seconds": seconds,
            "baseline_rss_mib": baseline_kib / 1024,
            "peak_rss_mib": peak_kib / 1024,
            "growth_mib": (peak_kib - baseline_kib) / 1024,
            "peak_includes_startup": not exact_peak,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
