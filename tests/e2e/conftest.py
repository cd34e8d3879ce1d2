"""End-to-end fixtures: the deployed stack with the local function runtime polling its queues.

By default the stack is the session's embedded one (``deployed_stack`` from ``tests/conftest.py``, applied
once) and the runtime runs the real handlers in worker processes. To run the same tests against another
target (LocalStack from ``docker-compose.yml``, see ``make e2e-localstack``), point the standard AWS
environment at it and set:

- ``PIPELINE_E2E_OUTPUTS``: a file holding ``terraform output -json`` of the stack applied there;
- ``PIPELINE_E2E_RUNTIME=1`` when the target does not poll the queues itself (mappings applied disabled),
  optionally with ``PIPELINE_E2E_INVOKER_URLS=datalake-loader=http://127.0.0.1:9001,...`` to invoke function
  containers (Runtime Interface Emulator) instead of the handlers in process.

Where the local runtime runs the functions is the ``pipeline`` fixture's parameter, chosen by
``PIPELINE_E2E_INVOKERS`` (comma-separated; default ``process``): ``process``, the handlers in worker
processes (``in-process``), or ``container``, every function in the one function image, started by the
runtime under the Lambda Runtime API (``in-containers``, marked ``containers``: see ``function_image`` in
``tests/conftest.py``).
``make e2e-compose`` runs the suite with ``container`` against an emulator of its own, in docker compose: one
emulator serving the suite twice would hold twice the state and slow every scan of the second pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.support import Pipeline

from pipeline_toolkit.clients import Clients
from pipeline_toolkit.outputs import StackOutputs
from pipeline_toolkit.runtime import LocalRuntime

# A failed message normally comes back after the queue's visibility timeout (6 x the function timeout: minutes
# with the stack's defaults). The runtime retries sooner when the queue's timeout is longer than this, so the
# dead-letter test takes seconds; maxReceiveCount and the redrive are still the queue's own.
RETRY_AFTER_SECONDS = 2
_notes: list[str] = []
_pipelines: list[Pipeline] = []


def _invoker_urls(outputs: StackOutputs) -> dict[str, str]:
    """``PIPELINE_E2E_INVOKER_URLS`` (``key-or-name=url,...``) by function name."""
    pairs = [
        item.split("=", 1) for item in os.environ.get("PIPELINE_E2E_INVOKER_URLS", "").split(",") if item
    ]
    return {outputs.functions.get(function, function): url for function, url in pairs}


_INVOKER_PARAMS = {
    "process": pytest.param("process", id="in-process"),
    "container": pytest.param("container", id="in-containers", marks=pytest.mark.containers),
}
INVOKERS = [
    _INVOKER_PARAMS[name.strip()]
    for name in os.environ.get("PIPELINE_E2E_INVOKERS", "process").split(",")
    if name.strip()
]


@pytest.fixture(scope="module", params=INVOKERS)
def pipeline(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The deployed pipeline, processing: the runtime (when needed) runs for one test module, its functions
    in worker processes or in their containers (the parameter).

    Module scope, not session: the stack is shared with other suites (``tests/terraform`` reads its queues),
    so the runtime consumes them only while an end-to-end module runs, whatever order the suites run in.
    """
    outputs_file = os.environ.get("PIPELINE_E2E_OUTPUTS")
    start_runtime = True
    if outputs_file:
        outputs = StackOutputs.from_terraform(json.loads(Path(outputs_file).read_text()))
        environment = dict(os.environ)
        start_runtime = os.environ.get("PIPELINE_E2E_RUNTIME") == "1"
        _notes.append(
            f"e2e target: {environment.get('AWS_ENDPOINT_URL', 'AWS')} (outputs from {outputs_file})"
        )
    else:
        stack: Any = request.getfixturevalue("deployed_stack")
        environment = {name: value for name, value in stack.env.items() if value}
        outputs = StackOutputs.from_terraform(stack.outputs)
    clients = Clients(environment)
    runtime: LocalRuntime | None = None
    container_image: str | None = None
    if request.param == "container":
        if not start_runtime:
            pytest.skip("this target runs the functions itself (in its own containers)")
        container_image = request.getfixturevalue("function_image")
    if start_runtime:
        log_dir = tmp_path_factory.mktemp("runtime-logs")
        runtime = LocalRuntime.discover(
            environment,
            sorted(outputs.functions.values()),
            invoker_urls=_invoker_urls(outputs),
            log_dir=log_dir,
            container_image=container_image,
        )
        long_visibility = any(
            worker.mapping.queue.visibility_timeout > 10 * RETRY_AFTER_SECONDS for worker in runtime.workers
        )
        if long_visibility:
            runtime.retry_after_seconds = RETRY_AFTER_SECONDS
            _notes.append(
                f"local runtime retries failed messages after {RETRY_AFTER_SECONDS} s "
                "(the queues' visibility timeouts are long)"
            )
        where = f"in containers of {container_image}" if container_image else "in process"
        _notes.append(f"local runtime: {len(runtime.workers)} worker(s) {where}, logs in {log_dir}")
        runtime.start()
    deployed = Pipeline(clients, outputs, runtime=runtime)
    _pipelines.append(deployed)
    try:
        yield deployed
    finally:
        if runtime is not None:
            runtime.stop()


@pytest.fixture(scope="session")
def figures() -> list[str]:
    """Lines for the end-of-run summary (figures are reported, never asserted)."""
    return _notes


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = [*_notes]
    for deployed in _pipelines:
        lines.extend(deployed.summary())
    if lines:
        terminalreporter.section("end-to-end figures (reported, not asserted)")
        for line in lines:
            terminalreporter.write_line(line)
