"""The embedded target in one object: the emulator, the real stack applied to it, and the function runtime.

``make demo``, ``pipeline local up`` and the end-to-end fixtures build on :func:`embedded_stack`::

    with embedded_stack(Path(".local")) as stack:
        stack.clients.s3.upload_file("users.csv", stack.outputs.landing_bucket, "users.csv")

Everything it starts (the emulator's process, the worker processes) is stopped when the block ends, and the
Terraform state of the throw-away stack lives in the given state directory (``.local/`` is ignored by git).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_toolkit import emulator as emulator_module
from pipeline_toolkit.clients import Clients
from pipeline_toolkit.outputs import Session, StackOutputs
from pipeline_toolkit.runtime import LocalRuntime
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, Terraform, local_function_settings

Say = Callable[[str], None]


def local_variables(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Root variables of the embedded stack: :data:`EMBEDDED_VARIABLES`, short timeouts, then ``extra``."""
    return {**EMBEDDED_VARIABLES, "function_settings": local_function_settings(), **(extra or {})}


@dataclass
class EmbeddedStack:
    """A running emulator with the stack deployed to it and (unless asked not to) the runtime polling."""

    emulator: emulator_module.Emulator
    outputs: StackOutputs
    runtime: LocalRuntime | None
    clients: Clients
    timings: dict[str, float]

    @property
    def environment(self) -> dict[str, str]:
        return self.emulator.environment()

    def session(self) -> Session:
        return Session(
            endpoint_url=self.emulator.endpoint_url,
            region=self.emulator.region,
            outputs=self.outputs,
            pid=os.getpid(),
        )


def _quiet(_message: str) -> None:
    return


def deploy(
    env: Mapping[str, str], state_dir: Path, variables: Mapping[str, Any], say: Say = _quiet
) -> StackOutputs:
    """``terraform init`` + ``apply`` of the project's stack, state and working data under ``state_dir``."""
    tf = Terraform(
        data_dir=state_dir / "terraform-data",
        state=state_dir / "terraform.tfstate",
        env=env,
    )
    say("terraform init")
    tf.init()
    say("terraform apply (about a minute against the emulator: each SQS queue takes a while)")
    tf.apply(variables)
    return StackOutputs.from_terraform(tf.outputs())


@contextmanager
def embedded_stack(
    state_dir: Path,
    *,
    variables: Mapping[str, Any] | None = None,
    with_runtime: bool = True,
    runtime_options: Mapping[str, Any] | None = None,
    say: Say = _quiet,
) -> Iterator[EmbeddedStack]:
    """Start the emulator, apply the stack to it, start the runtime; stop all of it when the block ends.

    The emulator is new each time, so any state left in ``state_dir`` from an earlier run describes resources
    that no longer exist: it is cleared first.
    """
    state_dir = state_dir.resolve()
    for stale in ("terraform.tfstate", "terraform.tfstate.backup"):
        (state_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(state_dir / "logs", ignore_errors=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    started = time.monotonic()
    emulator = emulator_module.start()
    timings["emulator"] = time.monotonic() - started
    say(f"emulator listening on {emulator.endpoint_url}")
    runtime: LocalRuntime | None = None
    try:
        started = time.monotonic()
        outputs = deploy(emulator.environment(), state_dir, variables or local_variables(), say)
        timings["apply"] = time.monotonic() - started
        clients = Clients(emulator.environment())
        if with_runtime:
            started = time.monotonic()
            options: dict[str, Any] = {"log_dir": state_dir / "logs", **(runtime_options or {})}
            runtime = LocalRuntime.discover(
                emulator.environment(), sorted(outputs.functions.values()), **options
            )
            runtime.start()
            timings["runtime"] = time.monotonic() - started
            say(f"function runtime: {len(runtime.workers)} worker process(es), logs in {options['log_dir']}")
        yield EmbeddedStack(emulator, outputs, runtime, clients, timings)
    finally:
        if runtime is not None:
            say("stopping the function runtime")
            runtime.stop()
        say("stopping the emulator")
        emulator.stop()
