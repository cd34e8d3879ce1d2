"""One worker process: the execution environment of one function, fed by one event source mapping.

Started by :mod:`pipeline_toolkit.runtime` as ``python -m pipeline_toolkit.worker`` with the function's own
environment only (its variables, the Lambda-reserved ones, and the endpoint and credentials of the
emulator), so one function never sees another's configuration. It reads its spec (a JSON object) from
standard input. SIGTERM or SIGINT stops it cleanly; an invocation that outlives the function's timeout ends
the process, as Lambda ends the sandbox, and the runtime starts a fresh one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import boto3

from pipeline_toolkit.containers import ContainerInvoker, container_environment, new_runtime_id
from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.deployment import FunctionConfig
from pipeline_toolkit.invokers import HttpInvoker, InProcessInvoker, Invoker
from pipeline_toolkit.poller import InvocationGuard, Poller, no_guard

EXIT_TIMED_OUT = 124
# Host variables a worker may inherit (pipeline_toolkit.runtime): enough to run Python, nothing that
# configures AWS or the pipeline. They, and the PYTHONPATH the runtime may add, describe the host: a function
# container gets the rest of the worker's environment.
HOST_VARIABLES = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "COVERAGE_PROCESS_START")
PARENT_CHECK_SECONDS = 1.0
# Extra time the HTTP invoker waits past the function timeout for the container to answer.
HTTP_TIMEOUT_MARGIN_SECONDS = 5.0

log = logging.getLogger("pipeline_toolkit.worker")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs, passed on standard input."""

    function: FunctionConfig
    mapping_uuid: str
    invoker_url: str | None = None  # None: in-process; else the base URL of a Runtime Interface Emulator
    wait_seconds: int = 2
    retry_after_seconds: int | None = None
    # The function image to run each invocation in (pipeline_toolkit.containers), instead of this process.
    container_image: str | None = None
    container_name: str | None = None
    runtime_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "function": json.loads(self.function.to_json()),
                "mapping_uuid": self.mapping_uuid,
                "invoker_url": self.invoker_url,
                "wait_seconds": self.wait_seconds,
                "retry_after_seconds": self.retry_after_seconds,
                "container_image": self.container_image,
                "container_name": self.container_name,
                "runtime_id": self.runtime_id,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        raw = json.loads(text)
        return cls(
            function=FunctionConfig.from_json(json.dumps(raw["function"])),
            mapping_uuid=raw["mapping_uuid"],
            invoker_url=raw.get("invoker_url"),
            wait_seconds=int(raw.get("wait_seconds", 2)),
            retry_after_seconds=raw.get("retry_after_seconds"),
            container_image=raw.get("container_image"),
            container_name=raw.get("container_name"),
            runtime_id=raw.get("runtime_id"),
        )


@contextmanager
def kill_on_timeout(context: LocalLambdaContext) -> Iterator[None]:
    """End this process if the invocation outlives the function's timeout (what Lambda does)."""

    def expire() -> None:
        log.error(
            "RequestId: %s Error: Task timed out after %.2f seconds",
            context.aws_request_id,
            context.timeout_seconds,
        )
        logging.shutdown()
        os._exit(EXIT_TIMED_OUT)

    timer = threading.Timer(context.get_remaining_time_in_millis() / 1000, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _watch_parent(stop: threading.Event) -> None:
    """Stop if the runtime that started this worker goes away (never outlive it)."""
    parent = os.getppid()
    while not stop.wait(PARENT_CHECK_SECONDS):
        if os.getppid() != parent:
            log.warning("runtime went away; stopping")
            stop.set()


def run(spec: WorkerSpec, stop: threading.Event) -> None:
    function = spec.function
    mapping = next(mapping for mapping in function.mappings if mapping.uuid == spec.mapping_uuid)
    invoker: Invoker
    guard: InvocationGuard = no_guard
    container: ContainerInvoker | None = None
    if spec.container_image:
        # The invoker ends the container when an invocation outlives the timeout; this process stays.
        container = ContainerInvoker(
            spec.container_image,
            handler=function.handler,
            function_name=function.name,
            environment=container_environment(os.environ, (*HOST_VARIABLES, "PYTHONPATH")),
            memory_mb=function.memory_mb,
            timeout_seconds=function.timeout_seconds,
            container_name=spec.container_name or f"{function.name}-{os.getpid()}",
            runtime_id=spec.runtime_id or new_runtime_id(),
        )
        invoker = container
    elif spec.invoker_url:
        # The function container enforces the timeout itself (the emulator reads AWS_LAMBDA_FUNCTION_TIMEOUT).
        invoker = HttpInvoker(spec.invoker_url, function.timeout_seconds + HTTP_TIMEOUT_MARGIN_SECONDS)
    else:
        in_process = InProcessInvoker(function.handler)
        in_process.warm()  # Lambda's init phase: import the handler before the first event
        invoker = in_process
        guard = kill_on_timeout
    poller = Poller(
        boto3.client("sqs", region_name=function.region),
        function,
        mapping,
        invoker,
        stop,
        wait_seconds=spec.wait_seconds,
        guard=guard,
        retry_after_seconds=spec.retry_after_seconds,
    )
    try:
        poller.run()
    finally:
        if container is not None:
            container.close()


def main() -> int:
    spec = WorkerSpec.from_json(sys.stdin.read())
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {spec.function.name} %(message)s",
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the batch in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_watch_parent, args=(stop,), daemon=True, name="watch-parent").start()
    run(spec, stop)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
