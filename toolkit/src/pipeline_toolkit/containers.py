"""Run a function in its container image, speaking the Lambda Runtime API to it.

A :class:`ContainerInvoker` is one execution environment: a Runtime API server on 127.0.0.1 (a free port)
and the function's container, started with the docker SDK on the host network with
``AWS_LAMBDA_RUNTIME_API`` pointing at that server, the deployed environment of the function and its memory
as the container's hard limit. The container's runtime interface client (``awslambdaric``: AWS's base image
has it, and so does the stand-in of ``images/standin``) asks ``/invocation/next`` for work and posts the
answer to ``/response`` or ``/error``; a failed init posts ``/init/error``.

As Lambda does, the invoker

* counts the init phase from the container's start to its first ``/next`` (reported like Lambda's
  ``Init Duration``),
* ends the container when an invocation outlives the function's timeout (``Task timed out``) or the container
  dies (out of memory: ``Runtime.OutOfMemory``; any other exit: ``Runtime.ExitError``), and starts a fresh one
  for the next invocation,
* and never shares an environment between two invocations at once.

Only the invoker's own containers are touched: each carries the label :data:`RUNTIME_LABEL` with the id of
the runtime that started it, and is removed by its name or that label, never by image or pattern.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker
from docker.errors import APIError, NotFound

from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.invokers import Invocation

log = logging.getLogger("pipeline_toolkit.containers")

API_PREFIX = "/2018-06-01/runtime"
RUNTIME_LABEL = "s3-ingest-pipeline.runtime"
FUNCTION_LABEL = "s3-ingest-pipeline.function"
# How often a waiting invocation checks that its container still runs.
HEALTH_CHECK_SECONDS = 0.5
# How long the container may take to ask for its first event (its init phase). Lambda allows 10 s of init
# before it counts against the timeout; a cold container here (image on local disk) needs about 1 s.
INIT_TIMEOUT_SECONDS = 30.0
# The error types Lambda reports for an environment that failed (as in the Invoke API's FunctionError).
TIMED_OUT = "Sandbox.Timedout"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
EXITED = "Runtime.ExitError"
INIT_ERROR = "Runtime.InitError"


@dataclass
class _Pending:
    """One invocation handed to the container: the event, its headers, and (when it ends) its outcome."""

    request_id: str
    event: bytes
    deadline_ms: int
    function_arn: str
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Invocation | None = None


class RuntimeApi:
    """The Lambda Runtime API for one execution environment, on 127.0.0.1 (HTTP/1.1, Content-Length set:
    awslambdaric's native client needs both)."""

    def __init__(self) -> None:
        self._work: queue.Queue[_Pending | None] = queue.Queue()
        self._lock = threading.Lock()
        self._current: _Pending | None = None
        self.first_next = threading.Event()
        self.first_next_at = 0.0  # time.monotonic() of the first /invocation/next: the end of init
        self.init_error: dict[str, Any] | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("runtime api: " + format, *args)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(
                self, status: HTTPStatus, body: bytes = b"{}", headers: Mapping[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{API_PREFIX}/invocation/next":
                    self._reply(HTTPStatus.NOT_FOUND)
                    return
                if not api.first_next.is_set():
                    api.first_next_at = time.monotonic()
                    api.first_next.set()
                pending = api._work.get()
                if pending is None:  # shutting down: the container is being removed anyway
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE)
                    return
                with api._lock:
                    api._current = pending
                self._reply(
                    HTTPStatus.OK,
                    pending.event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": pending.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(pending.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": pending.function_arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                parts = self.path.removeprefix(API_PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = _error_details(
                        body, self.headers.get("Lambda-Runtime-Function-Error-Type")
                    )
                    self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')
                    return
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in {"response", "error"}:
                    outcome = (
                        _response(body)
                        if parts[2] == "response"
                        else _error(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                    )
                    if api._settle(parts[1], outcome):
                        self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')
                    else:
                        self._reply(HTTPStatus.BAD_REQUEST, b'{"errorType":"InvalidRequestID"}')
                    return
                self._reply(HTTPStatus.NOT_FOUND)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="runtime-api", daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def hand_over(self, pending: _Pending) -> None:
        self._work.put(pending)

    def _settle(self, request_id: str, outcome: Invocation) -> bool:
        with self._lock:
            pending = self._current
            if pending is None or pending.request_id != request_id:
                return False
            self._current = None
        pending.outcome = outcome
        pending.done.set()
        return True

    def abandon(self) -> None:
        """Forget the invocation in hand and any queued one (its environment is being ended)."""
        with self._lock:
            self._current = None
        while True:
            try:
                self._work.get_nowait()
            except queue.Empty:
                break
        self.first_next.clear()
        self.init_error = None

    def close(self) -> None:
        self._work.put(None)
        self.server.shutdown()
        self.server.server_close()


def _error_details(body: bytes, error_type: str | None) -> dict[str, Any]:
    try:
        details = json.loads(body or b"{}")
    except ValueError:
        details = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(details, dict):
        details = {"errorMessage": str(details)}
    details.setdefault("errorType", error_type or "Unhandled")
    return details


def _response(body: bytes) -> Invocation:
    try:
        return Invocation(ok=True, payload=json.loads(body) if body else None)
    except ValueError:
        return Invocation(ok=False, error_type="Runtime.InvalidResponse", error_message=body[:500].decode())


def _error(body: bytes, error_type: str | None) -> Invocation:
    details = _error_details(body, error_type)
    return Invocation(
        ok=False, error_type=str(details["errorType"]), error_message=str(details.get("errorMessage"))
    )


def container_environment(environment: Mapping[str, str], host_only: Iterable[str]) -> dict[str, str]:
    """The function's environment for its container: the worker's, less what only describes the host."""
    dropped = set(host_only)
    return {name: value for name, value in environment.items() if name not in dropped}


class ContainerInvoker:
    """One execution environment of ``function`` in ``image`` (see the module docstring)."""

    def __init__(
        self,
        image: str,
        *,
        handler: str,
        function_name: str,
        environment: Mapping[str, str],
        memory_mb: int,
        timeout_seconds: float,
        container_name: str,
        runtime_id: str,
        docker_client: Any | None = None,
        log_stream: Any = None,
    ) -> None:
        self.image = image
        self.handler = handler
        self.function_name = function_name
        self.environment = dict(environment)
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.container_name = container_name
        self.runtime_id = runtime_id
        self.docker = docker_client or docker.from_env()
        self.log_stream = log_stream or sys.stderr
        self.api = RuntimeApi()
        self.container: Any = None
        self.started_at = 0.0
        self.init_durations: list[float] = []
        self.starts = 0

    # -- the environment -----------------------------------------------------------------------------------

    def _remove(self, name_or_container: Any) -> None:
        try:
            container = (
                self.docker.containers.get(name_or_container)
                if isinstance(name_or_container, str)
                else name_or_container
            )
            container.remove(force=True)
        except NotFound:
            pass
        except APIError as error:  # e.g. removal already in progress
            log.warning("%s: could not remove container: %s", self.container_name, error)

    def _start(self) -> None:
        self._remove(self.container_name)  # one left by a worker that was killed
        self.api.abandon()
        environment = {**self.environment, "AWS_LAMBDA_RUNTIME_API": self.api.address}
        self.started_at = time.monotonic()
        self.container = self.docker.containers.run(
            self.image,
            command=[self.handler],
            name=self.container_name,
            environment=environment,
            network_mode="host",  # reaches the Runtime API and the emulator on 127.0.0.1
            mem_limit=f"{self.memory_mb}m",
            memswap_limit=f"{self.memory_mb}m",  # no swap: over the limit is an OOM kill, as in Lambda
            read_only=True,  # Lambda's file system is read-only but for /tmp
            tmpfs={"/tmp": "size=512m"},  # noqa: S108 - Lambda's ephemeral storage, inside the container
            labels={RUNTIME_LABEL: self.runtime_id, FUNCTION_LABEL: self.function_name},
            detach=True,
        )
        self.starts += 1
        threading.Thread(target=self._follow_logs, args=(self.container,), daemon=True).start()
        log.info("%s: started container %s from %s", self.function_name, self.container.short_id, self.image)

    def _follow_logs(self, container: Any) -> None:
        try:
            for line in container.logs(stream=True, follow=True):
                self.log_stream.write(line.decode("utf-8", "replace"))
                self.log_stream.flush()
        except Exception:  # noqa: S110 - the container went away; its logs end with it
            pass

    def _state(self) -> dict[str, Any]:
        try:
            self.container.reload()
        except NotFound:
            return {"Running": False, "ExitCode": -1, "OOMKilled": False}
        return dict(self.container.attrs.get("State", {}))

    def _died(self) -> Invocation | None:
        """The failure of a container that is no longer running, else None."""
        state = self._state()
        if state.get("Running", False):
            return None
        if state.get("OOMKilled") or state.get("ExitCode") == 137:
            message = f"Runtime exited with error: signal: killed (memory limit {self.memory_mb} MB)"
            return Invocation(ok=False, error_type=OUT_OF_MEMORY, error_message=message)
        if self.api.init_error is not None:
            details = self.api.init_error
            return Invocation(
                ok=False,
                error_type=str(details.get("errorType") or INIT_ERROR),
                error_message=f"init failed: {details.get('errorMessage', '')}",
            )
        return Invocation(
            ok=False,
            error_type=EXITED,
            error_message=f"Runtime exited with exit code {state.get('ExitCode')}",
        )

    def _end(self) -> None:
        if self.container is not None:
            self._remove(self.container)
            self.container = None
        self.api.abandon()

    # -- invocations ---------------------------------------------------------------------------------------

    def invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> Invocation:
        # Cold: this invocation starts the environment. The runtime client may ask for its first event before
        # or after the event is handed over; its init ends at that first /next either way.
        cold = self.container is None
        if cold:
            self._start()
        remaining_ms = context.get_remaining_time_in_millis()
        deadline = time.monotonic() + remaining_ms / 1000
        pending = _Pending(
            request_id=context.aws_request_id,
            event=json.dumps(event).encode(),
            deadline_ms=int(time.time() * 1000 + remaining_ms),
            function_arn=context.invoked_function_arn,
        )
        self.api.hand_over(pending)
        init_deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
        while not pending.done.wait(HEALTH_CHECK_SECONDS):
            if cold and self.api.first_next.is_set():
                cold = False
                self.init_durations.append(self.api.first_next_at - self.started_at)
                log.info(
                    "%s: REPORT Init Duration: %.2f ms (container)",
                    self.function_name,
                    self.init_durations[-1] * 1000,
                )
            failure = self._died()
            if failure is None and time.monotonic() > deadline:
                failure = Invocation(
                    ok=False,
                    error_type=TIMED_OUT,
                    error_message=f"Task timed out after {self.timeout_seconds:.2f} seconds",
                )
            if failure is None and cold and time.monotonic() > init_deadline:
                failure = Invocation(ok=False, error_type=INIT_ERROR, error_message="init phase timed out")
            if failure is not None:
                log.error(
                    "RequestId: %s Error: %s %s",
                    context.aws_request_id,
                    failure.error_type,
                    failure.error_message,
                )
                self._end()  # a fresh environment for the next invocation, as Lambda does
                return failure
        if cold:  # answered within the first health-check interval
            self.init_durations.append(self.api.first_next_at - self.started_at)
        assert pending.outcome is not None
        return pending.outcome

    def close(self) -> None:
        self._end()
        self.api.close()


def remove_runtime_containers(runtime_id: str, docker_client: Any | None = None) -> int:
    """Remove every container one runtime started (its label), e.g. those of a worker that was killed."""
    client = docker_client or docker.from_env()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": f"{RUNTIME_LABEL}={runtime_id}"}):
        try:
            container.remove(force=True)
            removed += 1
        except (NotFound, APIError):
            pass
    return removed


def engine_available() -> str | None:
    """None when a Docker engine answers, else why not (for a loud skip)."""
    try:
        docker.from_env().ping()
    except Exception as error:  # any failure means: no engine to run containers on
        return f"no Docker engine answers ({type(error).__name__}: {error})"
    return None


def new_runtime_id() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
