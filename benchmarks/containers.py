"""The function image for real: build time (cold and cached), image sizes, and the cold start of a container
invocation (its init duration: container start to the runtime's first ``/invocation/next``) beside the
in-process worker's (process start to handler imported). Needs a Docker engine with BuildKit.

    .venv/bin/python benchmarks/containers.py [--runs 5] [--cold-standin]

Builds on the STAND-IN base image (images/standin; no registry here) unless BASE_IMAGE names another base.
``--cold-standin`` removes the stand-in and its root filesystem first, to time them from scratch.
Prints each figure beside its target; nothing asserts on them.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker

from pipeline_toolkit import deploy, standin
from pipeline_toolkit.containers import ContainerInvoker, new_runtime_id
from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.s3_events import sns_notification
from pipeline_toolkit.sqs_event import sqs_event

ROOT = Path(__file__).resolve().parents[1]
HANDLER = "pipeline.handlers.datalake.handler"
ENV = {
    "PIPELINE_DATALAKE_BUCKET": "bench-datalake",
    "PIPELINE_QUARANTINE_BUCKET": "bench-quarantine",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "bench",
}
TARGETS = {
    "cold build": 120.0,  # s, no layer cache (wheels from pip's cache mount or the network)
    "cached build": 10.0,  # s, unchanged content
    "image": 300.0,  # MiB, the function image (base included)
    "container init": 1500.0,  # ms, container start to first /next
    "in-process init": 1000.0,  # ms, process start to handler imported
}


def verdict(name: str, value: float) -> str:
    return "PASS" if value <= TARGETS[name] else "MISS"


def timed_build(settings: deploy.Settings, tag: str, *, no_cache: bool) -> float:
    command = deploy.build_command(settings, tag, buildx=deploy.has_buildx(settings))
    argv = list(command.argv)
    if no_cache:
        argv.insert(argv.index("build") + 1, "--no-cache")
    started = time.monotonic()
    subprocess.run(argv, cwd=ROOT, env={**os.environ, **command.env}, check=True, capture_output=True)
    return time.monotonic() - started


def test_event_batch() -> dict[str, Any]:
    """One SQS message holding S3's test event (what S3 sends when a notification is configured): the
    handler recognises and skips it, so the invocation succeeds without touching AWS."""
    body = sns_notification(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00.000Z", "Bucket": "b"}
    )
    message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body, "Attributes": {}, "MD5OfBody": ""}
    return sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:bench", "us-east-1")  # type: ignore[list-item]


def container_inits(image: str, runs: int) -> list[float]:
    durations = []
    runtime_id = new_runtime_id()
    for run in range(runs):
        invoker = ContainerInvoker(
            image,
            handler=HANDLER,
            function_name="bench",
            environment=ENV,
            memory_mb=512,
            timeout_seconds=30,
            container_name=f"bench-{runtime_id}-{run}",
            runtime_id=runtime_id,
            log_stream=io.StringIO(),
        )
        try:
            context = LocalLambdaContext(
                function_name="bench",
                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench",
                memory_limit_in_mb=512,
                timeout_seconds=30,
            )
            outcome = invoker.invoke(test_event_batch(), context)
            assert outcome.ok, outcome
            durations.append(invoker.init_durations[0] * 1000)
        finally:
            invoker.close()
    return durations


def in_process_inits(runs: int) -> list[float]:
    probe = "import importlib; importlib.import_module('pipeline.handlers.datalake')"
    durations = []
    for _ in range(runs + 1):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", probe], env={**os.environ, **ENV}, check=True)
        durations.append((time.monotonic() - started) * 1000)
    return durations[1:]  # the first warms the file cache, as a provisioned image would have it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-standin", action="store_true")
    args = parser.parse_args()
    client = docker.from_env()
    pip_ca = standin.default_pip_ca()
    base = os.environ.get("BASE_IMAGE")
    if not base:
        if args.cold_standin:
            for ref in (standin.standin_ref(ROOT),):
                subprocess.run(["docker", "image", "rm", "-f", ref], capture_output=True, check=False)
            for image in client.images.list(name=standin.ROOTFS_REPOSITORY):
                client.images.remove(image.id, force=True)
        started = time.monotonic()
        base = standin.build(ROOT, pip_ca=pip_ca)
        print(f"stand-in base image {base}: ready in {time.monotonic() - started:.1f} s")
    settings = deploy.Settings.for_checkout(
        ROOT, standin.host_arch(), base_image=base, pip_ca=pip_ca, build_network="host"
    )
    tag = deploy.content_tag(settings)
    image = deploy.local_image(tag)
    cold = timed_build(settings, tag, no_cache=True)
    cached = timed_build(settings, tag, no_cache=False)
    size = client.images.get(image).attrs["Size"] / 2**20
    base_size = client.images.get(base).attrs["Size"] / 2**20
    containers = container_inits(image, args.runs)
    processes = in_process_inits(args.runs)
    print(f"function image {image} on {base}" + (" (STAND-IN base)" if standin.is_standin(base) else ""))
    rows = [
        ("cold build", cold, "s", f"{cold:.1f} s (no layer cache)"),
        ("cached build", cached, "s", f"{cached:.1f} s (unchanged content)"),
        (
            "image",
            size,
            "MiB",
            f"{size:.0f} MiB (base {base_size:.0f} MiB, layers of ours {size - base_size:.0f} MiB)",
        ),
        (
            "container init",
            statistics.median(containers),
            "ms",
            f"{statistics.median(containers):.0f} ms median of {len(containers)} "
            f"(min {min(containers):.0f}, max {max(containers):.0f}): container start to first /next",
        ),
        (
            "in-process init",
            statistics.median(processes),
            "ms",
            f"{statistics.median(processes):.0f} ms median of {len(processes)}: "
            "worker process start to handler imported",
        ),
    ]
    for name, value, unit, text in rows:
        print(f"  {name:<16} {text:<90} target <= {TARGETS[name]:g} {unit}   {verdict(name, value)}")


if __name__ == "__main__":
    main()
