"""How long `pipeline local up` takes to stop after heavy use (target: within 10 s of Ctrl-C or SIGTERM).

Starts `pipeline local up` as a user does, drops ``--files`` small files into the landing bucket from
several threads (keep-alive connections to the emulator, the runtime's workers busy), waits until the
lake loader has copied them (or ``--settle`` seconds), then sends the signal and times the exit. Before this
was measured, the in-process emulator hung about two minutes at "stopping the emulator" after a few thousand
files. Prints the figure beside the target; a benchmark, not a test: it exits 0 either way.

Offline, set ``TF_PLUGIN_MIRROR`` as the Makefile does (``mk/provider-mirror`` prints it).

    .venv/bin/python benchmarks/local_up_stop.py --files 3000            # SIGTERM
    .venv/bin/python benchmarks/local_up_stop.py --files 3000 --signal INT   # Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from pipeline_toolkit.outputs import SESSION_FILE

TARGET_SECONDS = 10.0


def wait_for_session(state_dir: Path, process: subprocess.Popen[bytes], timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"`pipeline local up` exited early with {process.returncode}")
        path = state_dir / SESSION_FILE
        if path.exists():
            return dict(json.loads(path.read_text()))
        time.sleep(1)
    sys.exit("`pipeline local up` did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--settle", type=float, default=120.0, help="at most this long for the copies")
    parser.add_argument("--signal", choices=["TERM", "INT"], default="TERM")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="local-up-stop-") as temporary:
        state_dir = Path(temporary)
        pipeline = Path(sys.executable).with_name("pipeline")
        process = subprocess.Popen(
            [str(pipeline), "--state-dir", str(state_dir), "local", "up"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            session = wait_for_session(state_dir, process, timeout=600)
            outputs = session["outputs"]
            assert isinstance(outputs, dict)
            s3 = boto3.client(
                "s3",
                endpoint_url=str(session["endpoint_url"]),
                region_name=str(session["region"]),
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            landing, lake = outputs["landing_bucket"], outputs["datalake_bucket"]
            body = b"user_id,first_name,last_name,email,gender,age\n" + b"u1,A,B,a@example.com,female,30\n"
            started = time.monotonic()
            with ThreadPoolExecutor(args.threads) as pool:
                list(
                    pool.map(
                        lambda n: s3.put_object(Bucket=landing, Key=f"stop-bench/{n}.csv", Body=body),
                        range(args.files),
                    )
                )
            dropped = time.monotonic() - started
            copied = 0
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline:
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=lake)
                copied = sum(page.get("KeyCount", 0) for page in pages)
                if copied >= args.files:
                    break
                time.sleep(2)
            print(f"dropped {args.files} files in {dropped:.1f} s; {copied} objects in the lake")
        finally:
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM if args.signal == "TERM" else signal.SIGINT)
            try:
                code = process.wait(timeout=300)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            stopped = time.monotonic() - signalled
        verdict = "PASS" if stopped <= TARGET_SECONDS else "MISS"
        print(
            f"stop after SIG{args.signal}: {stopped:.1f} s (target <= {TARGET_SECONDS:.0f} s) {verdict}; "
            f"exit code {code}; pid {process.pid}"
        )


if __name__ == "__main__":
    main()
