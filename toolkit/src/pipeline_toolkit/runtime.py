"""The local function runtime: Lambda's SQS pollers for an emulator that has none.

For every deployed function and SQS event source mapping (read from the emulator by
:mod:`.deployment`), the runtime starts worker processes (:mod:`pipeline_toolkit.worker`), each
with only its own function's environment. Each worker polls its queue, invokes the handler (in process, or
over HTTP in a function container) and settles the batch. The runtime restarts a worker that died (a timed
out invocation ends its process, as Lambda ends the sandbox) and, on :meth:`LocalRuntime.stop`, asks every
worker to finish the batch in hand and release what it has not started, then waits for it.

Mappings that are *enabled* are served by the emulator itself (LocalStack, or AWS), so by default only
disabled mappings are polled here: the embedded target deploys with ``managed_sqs_polling=false``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker

from pipeline_toolkit.clients import Clients
from pipeline_toolkit.containers import (
    FUNCTION_LABEL,
    RUNTIME_LABEL,
    new_runtime_id,
    remove_runtime_containers,
)
from pipeline_toolkit.deployment import FunctionConfig, MappingConfig, read_deployment
from pipeline_toolkit.worker import EXIT_TIMED_OUT, HOST_VARIABLES, WorkerSpec

log = logging.getLogger("pipeline_toolkit.runtime")

# Standard AWS variables that aim a worker's SDK at the target (the emulator, LocalStack).
AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
# How long stop() lets the workers settle the batch in hand, all together. A worker still busy then is killed:
# its messages come back after their visibility timeout, and every handler is idempotent, so a quick Ctrl-C
# loses nothing (measured by benchmarks/local_up_stop.py; the target is 10 s for `pipeline local up`).
STOP_DEADLINE_SECONDS = 6.0
MONITOR_SECONDS = 0.5
MAX_RESTART_DELAY_SECONDS = 10.0
# Long-poll wait of each ReceiveMessage. Lambda waits 20 s; shorter here so that Ctrl-C stops within seconds.
DEFAULT_WAIT_SECONDS = 2


def worker_environment(
    function: FunctionConfig, aws_environment: Mapping[str, str], pythonpath: Sequence[str] = ()
) -> dict[str, str]:
    """The whole environment of a worker: the function's variables, Lambda's reserved ones, the target's."""
    env = {name: os.environ[name] for name in HOST_VARIABLES if os.environ.get(name)}
    env.update(function.environment)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_seconds),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{function.name}",
            "_HANDLER": function.handler,
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({name: aws_environment[name] for name in AWS_VARIABLES if aws_environment.get(name)})
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return env


@dataclass
class Worker:
    """One worker process slot: restarted whenever its process ends while the runtime runs."""

    function: FunctionConfig
    mapping: MappingConfig
    slot: int
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    timeouts: int = 0
    next_start: float = 0.0
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.function.name}[{self.mapping.queue.name}#{self.slot}]"

    @property
    def label_slug(self) -> str:
        """The label as a container name may spell it."""
        return f"{self.function.name}-{self.mapping.queue.name}-{self.slot}"


class LocalRuntime:
    """Runs the pollers of the given functions until stopped (once: start, then stop). A context manager."""

    def __init__(
        self,
        functions: Iterable[FunctionConfig],
        aws_environment: Mapping[str, str],
        *,
        invoker_urls: Mapping[str, str] | None = None,
        concurrency: int = 1,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        log_dir: Path | None = None,
        pythonpath: Sequence[str] = (),
        poll_enabled_mappings: bool = False,
        retry_after_seconds: int | None = None,
        container_image: str | None = None,
    ) -> None:
        self.functions = list(functions)
        self.aws_environment = dict(aws_environment)
        self.invoker_urls = dict(invoker_urls or {})
        self.wait_seconds = wait_seconds
        self.log_dir = log_dir
        self.pythonpath = list(pythonpath)
        self.retry_after_seconds = retry_after_seconds
        # Every function runs the one image (its handler as the command); each worker, a container of its own.
        self.container_image = container_image
        self.runtime_id = new_runtime_id()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self.workers: list[Worker] = []
        for function in self.functions:
            for mapping in function.mappings:
                if mapping.enabled and not poll_enabled_mappings:
                    log.warning(
                        "%s: mapping from %s is enabled, so the target polls it itself; skipped",
                        function.name,
                        mapping.queue.name,
                    )
                    continue
                slots = max(1, min(concurrency, mapping.maximum_concurrency or concurrency))
                self.workers.extend(Worker(function, mapping, slot) for slot in range(slots))

    @classmethod
    def discover(
        cls,
        aws_environment: Mapping[str, str],
        function_names: Iterable[str] | None = None,
        **options: Any,
    ) -> LocalRuntime:
        """A runtime for what is deployed on the target (default: every function with an SQS mapping)."""
        clients = Clients(aws_environment)
        functions = read_deployment(clients.awslambda, clients.sqs, function_names)
        return cls(functions, aws_environment, **options)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if not self.workers:
            log.warning("no SQS event source mapping to poll")
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            for worker in self.workers:
                self._start_worker(worker)
        self._monitor = threading.Thread(target=self._watch, name="runtime-monitor", daemon=True)
        self._monitor.start()

    def stop(self, deadline_seconds: float = STOP_DEADLINE_SECONDS) -> None:
        """Ask every worker to settle its batch and stop; kill those still running after ``deadline_seconds``
        (for them all, not each)."""
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join()
            self._monitor = None
        with self._lock:
            running = [worker for worker in self.workers if worker.process and worker.process.poll() is None]
            for worker in running:
                assert worker.process is not None
                worker.process.terminate()  # SIGTERM to this pid only: the worker's clean stop
            deadline = time.monotonic() + deadline_seconds
            for worker in running:
                assert worker.process is not None
                try:
                    worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning(
                        "%s still busy %.0f s after the stop request; killing pid %d (its messages come back "
                        "after their visibility timeout)",
                        worker.label,
                        deadline_seconds,
                        worker.process.pid,
                    )
                    worker.process.kill()
                    worker.process.wait()
            for worker in self.workers:
                if worker.log_file is not None:
                    worker.log_file.close()
                    worker.log_file = None
        if self.container_image:
            # Containers of workers that were killed before they could remove their own.
            removed = remove_runtime_containers(self.runtime_id)
            if removed:
                log.warning("removed %d container(s) left by killed workers", removed)

    @property
    def running(self) -> bool:
        return self._monitor is not None and not self._stopping.is_set()

    def pids(self) -> list[int]:
        with self._lock:
            return [worker.process.pid for worker in self.workers if worker.process is not None]

    def sandboxes(self, function_name: str) -> list[str]:
        """The running execution environments of a function: worker pids, or its containers' ids."""
        if self.container_image:
            return [container.id for container in self._containers(function_name)]
        with self._lock:
            return [
                str(worker.process.pid)
                for worker in self.workers
                if worker.function.name == function_name and worker.process and worker.process.poll() is None
            ]

    def kill_sandboxes(self, function_name: str) -> int:
        """SIGKILL every running environment of a function, as Lambda ends a sandbox on timeout or OOM (no
        handler code runs, the batch in hand is left unsettled); how many were killed."""
        if self.container_image:
            containers = self._containers(function_name)
            for container in containers:
                container.kill(signal="SIGKILL")
            return len(containers)
        pids = [int(pid) for pid in self.sandboxes(function_name)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return len(pids)

    def _containers(self, function_name: str) -> list[Any]:
        labels = [f"{RUNTIME_LABEL}={self.runtime_id}", f"{FUNCTION_LABEL}={function_name}"]
        return list(docker.from_env().containers.list(filters={"label": labels, "status": "running"}))

    # -- workers -----------------------------------------------------------------------------------------

    def _start_worker(self, worker: Worker) -> None:
        spec = WorkerSpec(
            function=worker.function,
            mapping_uuid=worker.mapping.uuid,
            invoker_url=self.invoker_urls.get(worker.function.name),
            wait_seconds=self.wait_seconds,
            retry_after_seconds=self.retry_after_seconds,
            container_image=self.container_image,
            container_name=f"pipeline-{self.runtime_id}-{worker.label_slug}"
            if self.container_image
            else None,
            runtime_id=self.runtime_id,
        )
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            if worker.log_file is None:
                name = f"{worker.function.name}-{worker.mapping.queue.name}-{worker.slot}.log"
                worker.log_file = (self.log_dir / name).open("ab")
            output = worker.log_file
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline_toolkit.worker"],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=output,
            env=worker_environment(worker.function, self.aws_environment, self.pythonpath),
            # Its own session: a Ctrl-C in the terminal reaches the runtime, which stops workers in order.
            start_new_session=True,
        )
        assert process.stdin is not None
        process.stdin.write(spec.to_json().encode())
        process.stdin.close()
        worker.process = process
        worker.starts += 1
        log.debug("started %s as pid %d", worker.label, process.pid)

    def _watch(self) -> None:
        """Restart workers whose process ended (a timed-out invocation, a crash) while running."""
        while not self._stopping.wait(MONITOR_SECONDS):
            with self._lock:
                if self._stopping.is_set():
                    return
                for worker in self.workers:
                    self._revive(worker)

    def _revive(self, worker: Worker) -> None:
        process = worker.process
        if process is None or process.poll() is None:
            return
        now = time.monotonic()
        if worker.next_start == 0.0:
            if process.returncode == EXIT_TIMED_OUT:
                worker.timeouts += 1
                log.warning("%s: invocation timed out; starting a fresh environment", worker.label)
                delay = 0.0
            else:
                log.warning("%s: worker pid %d exited with %s", worker.label, process.pid, process.returncode)
                delay = min(MAX_RESTART_DELAY_SECONDS, 0.5 * 2 ** min(worker.starts, 5))
            worker.next_start = now + delay
        if now >= worker.next_start:
            worker.next_start = 0.0
            self._start_worker(worker)
