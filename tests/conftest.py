"""Fixtures shared by the whole suite.

``emulator``
    The embedded AWS emulator (moto's server on 127.0.0.1, a free port, in a process of its own), started
    once per test session and stopped at the end. Its state is its own: ``moto.mock_aws`` in the unit tests
    resets only this process's moto state, so the suites pass in any order (``make test-shuffled``). Use
    ``emulator.environment()`` to aim boto3, Terraform or a subprocess at it. This process's environment is
    NOT changed (unit tests that use ``moto.mock_aws`` must not see an endpoint URL); wrap code that reads
    the environment in ``pipeline_toolkit.emulator.patched_environ(emulator.environment())``.

``function_image``
    The one function image, built for real (``images/Dockerfile``) on the STAND-IN base image
    (``images/standin``, Debian trixie's Python 3.13: no registry is reachable here) or, with
    ``PIPELINE_TEST_BASE_IMAGE=aws``, on the Dockerfile's own AWS base image, or on any image that variable
    names. Built once per content (the deploy path's content tag). Tests that use it are marked
    ``containers``; with no Docker engine they are skipped, and the run says so in its summary, unless
    ``PIPELINE_REQUIRE_CONTAINERS=1`` (CI sets it), which makes a missing engine an error.

``deployed_stack``
    The root Terraform stack (``terraform/``) applied ONCE per session to that emulator with the
    embedded-target variables (``EMBEDDED_VARIABLES`` of ``pipeline_toolkit.terraform``: the SQS mappings
    are created disabled, so the project's local runtime does the polling) and ``environment = "test"``, so
    its resources are named ``pipeline-test-...`` (read names from the outputs, never guess them). It yields
    a :class:`DeployedStack`: the Terraform outputs, the environment, and a ``client(service)`` helper for
    boto3 clients aimed at the emulator. Terraform's data directory and state live in a session temporary
    directory, never in the source tree. Tests that use it share one account: create uniquely named
    objects, and delete the queue messages you consume. Skipped (with the reason) only when the
    ``terraform`` binary is not on PATH. Provider plugins come from ``$TF_PLUGIN_MIRROR`` when it is set
    (offline), else from the registry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline_toolkit import compose
from pipeline_toolkit import emulator as emulator_module
from pipeline_toolkit.containers import engine_available
from pipeline_toolkit.emulator import Emulator
from pipeline_toolkit.gateway.local import free_port, page_origin
from pipeline_toolkit.project import PROJECT_DIR_ENV, stack_dir
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, Terraform, find_binary

#: The checkout under test: the toolkit finds its Terraform and samples here, whatever the working directory.
REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault(PROJECT_DIR_ENV, str(REPO))

#: The ``environment`` variable of the session's stack: its resources are named ``pipeline-test-...``.
SESSION_ENVIRONMENT = "test"
#: Where tests/e2e/test_upload_page.py serves the upload page, and the origin the session's stack admits
#: (``api_cors_allow_origins``): chosen before the session's apply, because the API's CORS settings and the
#: landing bucket's CORS rule name the page's origin (as ``pipeline local up`` does). The embedded target
#: serves no page through CloudFront (``enable_upload_page`` is false there): the local page server does.
PAGE_PORT = free_port()
SESSION_PAGE_ORIGIN = page_origin(PAGE_PORT)

# How long the session's apply took, for the terminal summary (reported, never asserted).
_timings: dict[str, float] = {}


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """The embedded AWS emulator for the session (see the module docstring)."""
    # Its process patches moto where it answers unlike AWS (pipeline_toolkit.moto_compat).
    running = emulator_module.start()
    try:
        yield running
    finally:
        running.stop()


_container_skips: list[str] = []


@pytest.fixture(scope="session")
def function_image() -> str:
    """The function image's local reference (see the module docstring)."""

    reason = engine_available()
    if reason is not None:
        if os.environ.get("PIPELINE_REQUIRE_CONTAINERS") == "1":
            pytest.fail(f"PIPELINE_REQUIRE_CONTAINERS=1 but {reason}", pytrace=False)
        _container_skips.append(reason)
        pytest.skip(f"container tests need a Docker engine: {reason}")
    started = time.monotonic()
    image = compose.function_image(REPO)  # the one build routine of make e2e-compose and the tests
    _timings[f"function image {image} ready"] = time.monotonic() - started
    return image


@dataclass(frozen=True)
class DeployedStack:
    """The root stack, applied to the session's emulator.

    ``outputs`` holds every root output as a plain value: ``landing_bucket``, ``datalake_bucket``,
    ``quarantine_bucket``, ``topic_arn``, ``table_name``, ``functions`` (key -> function name), ``queues``
    (key -> {url, arn, dlq_url, dlq_arn}), ``repository_urls``, ``lambda_architecture``, ``region``, ...
    ``env`` is the environment that aims AWS clients at the emulator (``AWS_ENDPOINT_URL``, region, fake
    credentials; an empty value means "unset"). ``variables`` are the root variables it was applied with, and
    ``terraform`` the runner, e.g. for ``terraform.plan(variables)``.
    """

    outputs: dict[str, Any]
    env: dict[str, str]
    variables: dict[str, Any]
    terraform: Terraform = field(repr=False)

    def __getitem__(self, name: str) -> Any:
        return self.outputs[name]

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` aimed at the emulator (no environment variables involved)."""
        return boto3.session.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_REGION"],
        ).client(service, endpoint_url=self.env["AWS_ENDPOINT_URL"])  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def deployed_stack(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> DeployedStack:
    """The root stack applied once per session to the emulator (see the module docstring)."""
    if find_binary() is None:
        pytest.skip("the terraform binary is not on PATH (install Terraform >= 1.9 to run the stack tests)")
    workspace: Path = tmp_path_factory.mktemp("terraform")
    env = emulator.environment()
    terraform = Terraform(
        stack_dir(),
        data_dir=workspace / "data",
        state=workspace / "terraform.tfstate",
        env=env,
    )
    # "pipeline-test-...": names of their own, so a test reading them can never confuse them with the default
    # names another test deploys (to an emulator of its own).
    variables = {
        **EMBEDDED_VARIABLES,
        "environment": SESSION_ENVIRONMENT,
        "api_cors_allow_origins": [SESSION_PAGE_ORIGIN],
    }
    terraform.init()
    started = time.monotonic()
    terraform.apply(variables)
    _timings["terraform apply (embedded emulator)"] = time.monotonic() - started
    return DeployedStack(outputs=terraform.outputs(), env=env, variables=variables, terraform=terraform)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the stack's own checks (``tests/terraform``) first: a broken stack fails fast, before the suites
    that build on it.

    A preference only, and left out when pytest-randomly shuffles (``make test-shuffled``): the suites pass in
    any order, because the session's emulator keeps its state in a process of its own.
    """
    if config.pluginmanager.hasplugin("randomly"):
        return
    top = Path(__file__).parent
    items.sort(key=lambda item: not item.path.is_relative_to(top / "terraform"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, seconds in _timings.items():
        terminalreporter.write_line(f"{name}: {seconds:.1f} s")
    if _container_skips:
        terminalreporter.section("CONTAINER TESTS NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"the tests marked `containers` were skipped: {_container_skips[0]}. Start a Docker engine "
            "(or run .ci/run, which starts one) to run the functions in their images.",
            red=True,
        )
