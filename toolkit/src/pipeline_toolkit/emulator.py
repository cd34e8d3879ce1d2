"""Start and stop the embedded AWS emulator (moto's server) on 127.0.0.1, on a free port.

Everything that talks to it (boto3, the Terraform AWS provider, worker processes) is pointed at it only
through the standard ``AWS_ENDPOINT_URL`` environment variable, so no code carries endpoint plumbing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

# moto is a dev dependency: this module belongs to the embedded target and is never in a Lambda image.
from moto.server import ThreadedMotoServer

from pipeline_toolkit import moto_compat
from pipeline_toolkit.clients import DEFAULT_REGION, emulator_environment

STOP_TIMEOUT_SECONDS = 5.0


@dataclass
class Emulator:
    """A running moto server and the environment that points AWS clients at it."""

    endpoint_url: str
    region: str = DEFAULT_REGION
    _server: object | None = field(default=None, repr=False)

    def environment(self) -> dict[str, str]:
        """Environment variables that aim boto3 and Terraform's AWS provider at this emulator."""
        return emulator_environment(self.endpoint_url, self.region)

    def stop(self, timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop serving, waiting at most ``timeout_seconds``.

        The server runs in a daemon thread: if its shutdown does not finish in time (a request thread stuck
        on a client's open connection, say), it is left to end with the process rather than hold up Ctrl-C.
        """
        server = self._server
        if server is None:
            return
        self._server = None
        stopper = threading.Thread(target=server.stop, name="emulator-stop", daemon=True)  # type: ignore[attr-defined]
        stopper.start()
        stopper.join(timeout_seconds)
        if stopper.is_alive():
            logging.getLogger("pipeline_toolkit.emulator").warning(
                "the emulator did not stop within %.0f s; leaving it to end with this process",
                timeout_seconds,
            )


def start(region: str = DEFAULT_REGION, port: int = 0) -> Emulator:
    """Start moto's threaded server on 127.0.0.1 (port 0 picks a free port), patched to answer like AWS."""
    moto_compat.apply()
    # werkzeug logs every request at INFO; keep the emulator quiet unless something breaks.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    return Emulator(endpoint_url=f"http://{host}:{bound_port}", region=region, _server=server)


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
