"""The function behind the API, as the gateway invokes it: a few execution environments, one request each.

Each environment is a process of its own (:mod:`.function_server`) with only the function's environment, as
the runtime's workers are, so the function never sees the gateway's or another function's configuration, and a
timeout or a crash ends one environment, not the gateway. ``size`` is the function's concurrency here: a
request waits for a free environment, as Lambda would start another (up to the account's limit).
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.deployment import FunctionConfig
from pipeline_toolkit.invokers import HttpInvoker, Invocation
from pipeline_toolkit.runtime import worker_environment
from pipeline_toolkit.worker import EXIT_TIMED_OUT, HTTP_TIMEOUT_MARGIN_SECONDS

log = logging.getLogger("pipeline_toolkit.gateway.functions")

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 5.0
EXIT_WAIT_SECONDS = 2.0


class FunctionStartError(RuntimeError):
    """An execution environment did not come up (its log says why)."""


@dataclass
class _Environment:
    process: subprocess.Popen[bytes]
    invoker: HttpInvoker

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class FunctionPool:
    """``size`` execution environments of one function; :meth:`invoke` blocks until one is free."""

    def __init__(
        self,
        function: FunctionConfig,
        aws_environment: Mapping[str, str],
        *,
        size: int = 2,
        log_file: Path | None = None,
        pythonpath: Sequence[str] = (),
    ) -> None:
        if size < 1:
            raise ValueError("a function pool needs at least one environment")
        self.function = function
        self.size = size
        self._environment = worker_environment(function, aws_environment, pythonpath)
        self._log_path = log_file
        self._log: IO[bytes] | None = None
        self._idle: queue.Queue[_Environment] = queue.Queue()
        self._all: list[_Environment] = []
        self._lock = threading.Lock()
        self.restarts = 0

    def start(self) -> None:
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self._log_path.open("ab")
        for _ in range(self.size):
            self._idle.put(self._spawn())

    def _spawn(self) -> _Environment:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline_toolkit.gateway.function_server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log or subprocess.DEVNULL,
            env=self._environment,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(self.function.to_json().encode())
        process.stdin.close()
        port = _read_port(process, START_TIMEOUT_SECONDS)
        environment = _Environment(
            process,
            HttpInvoker(
                f"http://127.0.0.1:{port}", self.function.timeout_seconds + HTTP_TIMEOUT_MARGIN_SECONDS
            ),
        )
        with self._lock:
            self._all.append(environment)
        return environment

    def invoke(self, event: dict[str, Any], request_id: str) -> Invocation:
        environment = self._idle.get()
        try:
            context = LocalLambdaContext(
                function_name=self.function.name,
                invoked_function_arn=self.function.arn,
                memory_limit_in_mb=self.function.memory_mb,
                timeout_seconds=self.function.timeout_seconds,
                aws_request_id=request_id,
            )
            outcome = environment.invoker.invoke(event, context)
            if not outcome.ok and outcome.error_type == "Runtime.InvokeError":
                # The connection dropped: the process is ending (a timeout) or ended; let it finish.
                try:
                    environment.process.wait(EXIT_WAIT_SECONDS)
                except subprocess.TimeoutExpired:
                    environment.process.kill()
            if not environment.alive:
                # Timed out or crashed: Lambda ends that sandbox and the next request gets a fresh one.
                code = environment.process.wait()
                log.warning("%s: environment ended (exit %s); starting another", self.function.name, code)
                if code == EXIT_TIMED_OUT:
                    outcome = Invocation(
                        ok=False,
                        error_type="Sandbox.Timedout",
                        error_message=f"Task timed out after {self.function.timeout_seconds} seconds",
                    )
                self._forget(environment)
                environment = self._spawn()
                self.restarts += 1
            return outcome
        finally:
            self._idle.put(environment)

    def _forget(self, environment: _Environment) -> None:
        with self._lock:
            self._all.remove(environment)

    def stop(self) -> None:
        with self._lock:
            environments = list(self._all)
        for environment in environments:
            if environment.alive:
                environment.process.terminate()  # by its pid: only the processes this pool started
        for environment in environments:
            try:
                environment.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                environment.process.kill()
                environment.process.wait()
        if self._log is not None:
            self._log.close()

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [environment.process.pid for environment in self._all]


def _read_port(process: subprocess.Popen[bytes], timeout: float) -> int:
    """The port the environment prints once its handler is imported; its death or silence is an error."""
    assert process.stdout is not None
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    line = result[0].strip() if result else b""
    if not line.isdigit():
        process.kill()
        process.wait()
        raise FunctionStartError(
            f"function environment (pid {process.pid}) did not start within {timeout:.0f}s"
            f"{'' if result else ' (no answer)'}; see its log"
        )
    return int(line)
