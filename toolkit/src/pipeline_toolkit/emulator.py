"""Start and stop the embedded AWS emulator (moto's server) on 127.0.0.1, on a free port.

The server runs in a child process of its own (``python -m pipeline_toolkit.emulator``), for three reasons:

- stopping it is bounded: SIGTERM, then SIGKILL after a few seconds, whatever its request threads are doing
  (in-process, werkzeug's shutdown waited minutes on open connections after heavy use);
- its state is its own: ``moto.mock_aws`` in the caller's process resets moto's global state when it ends,
  and would otherwise wipe the emulator's buckets and queues from under whatever else runs there;
- it does not share the caller's GIL with the local function runtime's poller.

Everything that talks to it (boto3, the Terraform AWS provider, worker processes) is pointed at it only
through the standard ``AWS_ENDPOINT_URL`` environment variable, so no code carries endpoint plumbing.
This module imports moto only in the child: the caller needs it installed, not loaded.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pipeline_toolkit.clients import DEFAULT_REGION, emulator_environment

# SIGTERM ends the server at once (no handler); the wait only matters if the process is wedged.
STOP_TIMEOUT_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 60.0
REQUEST_COUNTS_PATH = "/_pipeline/request-counts"

logger = logging.getLogger("pipeline_toolkit.emulator")


class EmulatorError(RuntimeError):
    """The emulator's process did not start serving."""


@dataclass
class Emulator:
    """A running moto server (in its own process) and the environment that points AWS clients at it."""

    endpoint_url: str
    region: str = DEFAULT_REGION
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def environment(self) -> dict[str, str]:
        """Environment variables that aim boto3 and Terraform's AWS provider at this emulator."""
        return emulator_environment(self.endpoint_url, self.region)

    def request_counts(self) -> dict[str, int]:
        """Requests answered so far by ``X-Amz-Target`` (e.g. ``DynamoDB_20120810.BatchWriteItem``)."""
        url = self.endpoint_url + REQUEST_COUNTS_PATH  # always http://127.0.0.1:<port>, set by start()
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            counts: dict[str, int] = json.loads(response.read())
        return counts

    def stop(self, timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop serving: SIGTERM, and SIGKILL if the process has not ended within ``timeout_seconds``.

        Its state is thrown away either way, so nothing is lost by not waiting for a graceful shutdown.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            logger.warning(
                "the emulator (pid %d) did not stop within %.0f s: killed", process.pid, timeout_seconds
            )
            process.kill()
            process.wait()
        finally:
            if process.stdin is not None:
                process.stdin.close()
            if process.stdout is not None:
                process.stdout.close()


def server_command() -> list[str]:
    """The command that runs the emulator's process (this module, with this interpreter)."""
    return [sys.executable, "-m", "pipeline_toolkit.emulator"]


def start(
    region: str = DEFAULT_REGION, port: int = 0, ready_timeout_seconds: float = READY_TIMEOUT_SECONDS
) -> Emulator:
    """Start moto's server on 127.0.0.1 in a child process (port 0 picks a free port), patched to answer
    like AWS (:mod:`pipeline_toolkit.moto_compat`); returns once it serves."""
    process = subprocess.Popen(
        [*server_command(), "--port", str(port)],
        stdin=subprocess.PIPE,  # the child exits when this closes: it never outlives its parent
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(ready_timeout_seconds)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("http://"):
        emulator = Emulator(endpoint_url="", region=region, _process=process)
        emulator.stop(timeout_seconds=1)
        raise EmulatorError(
            f"the emulator did not start within {ready_timeout_seconds:.0f} s"
            + (f" (it printed {line!r})" if line else " (see its output above)")
        )
    return Emulator(endpoint_url=line, region=region, _process=process)


class _RequestCounter:
    """WSGI middleware: counts requests by ``X-Amz-Target`` (the JSON protocols: DynamoDB, SQS, ...), served
    as JSON at :data:`REQUEST_COUNTS_PATH` (a path no AWS API uses), for benchmarks."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == REQUEST_COUNTS_PATH:
            with self._lock:
                body = json.dumps(dict(self._counts)).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            with self._lock:
                self._counts[target] += 1
        return self._app(environ, start_response)


# How often the emulator moves what survived into the collector's permanent generation (see freeze_survivors).
FREEZE_SECONDS = 5.0


def freeze_survivors() -> None:
    """Collect the young generations, then freeze what is left out of every later collection.

    The emulator holds every item, object and message it was given as Python objects: millions after a big
    file. CPython's full collections scan them all while holding the GIL, and stall every request for as
    long (measured: 350 ms for 400,000 table items, growing with the table), long enough to run a function
    with the embedded target's 5 s timeout into it. AWS has no such pauses. Objects that survived a young
    collection are the emulator's state, which lives as long as the process: freezing them keeps full
    collections proportional to what is new.

    Both calls cost what is young. ``gc.get_freeze_count()`` does not: it walks the whole permanent
    generation under the GIL. Called here every 5 s it stalled the emulator for a third of its time once
    a 1,000,000-row file was loaded (py-spy; 131 ms per call for 10 million objects), which ran part
    loaders into the 5 s timeout. So it is not called here.
    """
    gc.collect(1)
    gc.freeze()


def _freeze_periodically() -> None:
    while True:
        time.sleep(FREEZE_SECONDS)
        freeze_survivors()


def _serve(port: int, forever: bool = False) -> None:
    """The child process: serve until stdin closes (the parent stopped or died) or SIGTERM; with
    ``forever`` (a container's main process), until SIGTERM only."""
    # moto is loaded only in the emulator's own process: its callers (the CLI against AWS) never import it.
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    from pipeline_toolkit import moto_compat  # noqa: PLC0415 - imports moto

    moto_compat.apply()
    # werkzeug logs every request at INFO; keep the emulator quiet unless something breaks.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # What moto's ThreadedMotoServer does, with the request counter in front.
    app = _RequestCounter(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="emulator", daemon=True).start()
    threading.Thread(target=_freeze_periodically, name="gc-freeze", daemon=True).start()
    host, bound_port = server.server_address[:2]
    print(f"http://{host!s}:{bound_port}", flush=True)
    if forever:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        threading.Event().wait()
    sys.stdin.read()
    # Nothing to save: exit at once rather than wait for request threads on open connections.
    os._exit(0)


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block (empty string unsets), then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value == "":
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@contextmanager
def running(region: str = DEFAULT_REGION) -> Iterator[Emulator]:
    """Run the emulator for the duration of a block, with this process's environment pointed at it."""
    emulator = start(region=region)
    try:
        with patched_environ(emulator.environment()):
            yield emulator
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the embedded AWS emulator (moto's server) on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    parser.add_argument(
        "--serve-forever",
        action="store_true",
        help="serve until SIGTERM, not stdin closing (containers)",
    )
    args = parser.parse_args(argv)
    _serve(args.port, forever=args.serve_forever)


if __name__ == "__main__":
    main()
