"""Cold-start proxy: import a handler module and create its clients, in a fresh interpreter each time.

Prints the median over several fresh processes beside the 300 ms target. Not a test: nothing asserts on it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

TARGET_MS = 300
RUNS = 7
HANDLERS = ("pipeline.handlers.datalake", "pipeline.handlers.database")
ENV = {
    "PIPELINE_DATALAKE_BUCKET": "bench-datalake",
    "PIPELINE_QUARANTINE_BUCKET": "bench-quarantine",
    "PIPELINE_USERS_TABLE": "bench-users",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}
PROBE = (
    "import time; t = time.perf_counter(); import importlib; importlib.import_module({module!r}); "
    "print((time.perf_counter() - t) * 1000)"
)


def import_ms(module: str) -> float:
    env = {**os.environ, **ENV}
    # The images ship byte-compiled code; let the warm-up run write .pyc files as the image build does.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def main() -> None:
    print(f"cold-start proxy: import handler module + create its clients (median of {RUNS} fresh processes)")
    for module in HANDLERS:
        import_ms(module)  # warm the OS file cache and .pyc files, as a provisioned image would have them
        median = statistics.median(import_ms(module) for _ in range(RUNS))
        verdict = "PASS" if median <= TARGET_MS else "MISS"
        print(f"  {module:<32} {median:7.0f} ms   target <= {TARGET_MS} ms   {verdict}")


if __name__ == "__main__":
    main()
