"""Latency of each ingest API route through the local gateway on the embedded target (p50/p99, per route).

Applies the stack to a fresh emulator (no runtime: nothing is loaded, only the API answers), starts the local
gateway with the ingest function in processes of its own, signs a user in, and times ``--requests`` calls of
each route from one client, sequentially, the stage's throttling off, after a warm-up (the function's cold
start is reported apart).
The figures include the gateway's own work (JWT check, event building) and the emulator's S3 answers; on AWS
API Gateway and S3 add their own network time. A benchmark, not a test: it prints figures and exits 0.

    TF_PLUGIN_MIRROR=/opt/tf-plugins .venv/bin/python benchmarks/api_latency.py --requests 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from pipeline_toolkit.embedded import embedded_stack
from pipeline_toolkit.gateway.local import create_demo_user, sign_in, start_local_api

# No target on AWS's side is claimed: the issue asks for the figures, printed.
RECORDS = [
    {
        "user_id": f"u-{n}",
        "first_name": "A",
        "last_name": "B",
        "email": f"a{n}@example.com",
        "gender": "x",
        "age": 30,
    }
    for n in range(20)
]


def timed(request: urllib.request.Request) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        status = response.status
    return (time.perf_counter() - started) * 1000, status


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per route")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state, embedded_stack(Path(state), with_runtime=False) as stack:
        # The stage's throttling (20/s steady) is off: it would measure the limit, not the latency.
        api = start_local_api(
            stack.environment, stack.outputs, log_dir=Path(state) / "logs", concurrency=1, throttle=False
        )
        try:
            username, password = create_demo_user(stack.environment, stack.outputs)
            token = sign_in(stack.environment, stack.outputs, username, password)
            auth = {"Authorization": f"Bearer {token}"}
            body = "\n".join(json.dumps(record) for record in RECORDS).encode()

            def batch() -> urllib.request.Request:
                headers = {
                    **auth,
                    "Content-Type": "application/x-ndjson",
                    "Idempotency-Key": str(uuid.uuid4()),
                }
                return urllib.request.Request(f"{api.url}/events/users", body, headers, method="POST")

            upload = json.dumps({"file_name": "users.csv", "content_type": "text/csv", "size": 1000}).encode()
            routes = {
                "POST /events/{dataset} (20 records)": batch,
                "POST /uploads": lambda: urllib.request.Request(
                    f"{api.url}/uploads", upload, {**auth, "Content-Type": "application/json"}, method="POST"
                ),
                "GET /files": lambda: urllib.request.Request(f"{api.url}/files", headers=auth),
                "401 (no token)": None,
            }
            cold, _ = timed(batch())
            print(f"first request (handler imported at process start, as Lambda's init): {cold:.1f} ms")
            for name, make in routes.items():
                samples: list[float] = []
                for _ in range(args.requests):
                    if make is None:
                        started = time.perf_counter()
                        try:
                            urllib.request.urlopen(f"{api.url}/files", timeout=60)
                        except urllib.error.HTTPError as error:
                            error.read()
                        samples.append((time.perf_counter() - started) * 1000)
                        continue
                    elapsed, _status = timed(make())
                    samples.append(elapsed)
                print(
                    f"{name:38s} p50 {statistics.median(samples):7.1f} ms"
                    f"   p99 {percentile(samples, 0.99):7.1f} ms"
                    f"   ({len(samples)} requests; target: none set, reported)"
                )
        finally:
            api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
