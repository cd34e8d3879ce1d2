"""Fixtures for the image tests: the one Lambda image's install, reproduced from images/Dockerfile."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from tests.images.replay import (
    IMAGE_SIZES,
    LAMBDA_TASK_ROOT,
    REPO,
    ImageInstall,
    Replayer,
    bare_interpreter,
    host_path,
)

from pipeline_toolkit.imagefiles import dockerfile_path, parse_dockerfile


@pytest.fixture(scope="session")
def reproduce_install(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., ImageInstall]:
    """``install(arch="amd64")``: the task root as images/Dockerfile builds it (every function runs it)."""
    workdir = tmp_path_factory.mktemp("image-installs")
    cache: dict[str, Path] = {}
    # Any interpreter replays the install: pip fetches the wheels of the image's Python (--python-version).
    replayers = {arch: Replayer(workdir, sys.executable, cache, arch) for arch in ("amd64", "arm64")}
    installs: dict[str, ImageInstall] = {}

    def install(arch: str = "amd64") -> ImageInstall:
        if arch not in installs:
            dockerfile = parse_dockerfile(dockerfile_path(REPO))
            final = replayers[arch].build(dockerfile, dockerfile.final)
            image = ImageInstall(arch, dockerfile, host_path(final, PurePosixPath(LAMBDA_TASK_ROOT)))
            installs[arch] = image
            IMAGE_SIZES[arch] = (image.size_bytes(), image.size_bytes("pipeline"))
        return installs[arch]

    return install


@pytest.fixture(scope="session")
def handler_host(request: pytest.FixtureRequest, reproduce_install: Callable[..., ImageInstall]) -> Any:
    """Where the handler tests import and invoke the functions (for :func:`replay.run_handler`): the task
    root reproduced here, with a host interpreter of the image's Python version, or else the built function
    image itself (``function_image``: skipped loudly, or failed under PIPELINE_REQUIRE_CONTAINERS=1, without
    a Docker engine)."""
    if bare_interpreter() is not None:
        return reproduce_install()
    return request.getfixturevalue("function_image")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not IMAGE_SIZES:
        return
    terminalreporter.section("Lambda image install (task root, reproduced from images/Dockerfile)")
    for arch, (total, package) in sorted(IMAGE_SIZES.items()):
        terminalreporter.write_line(
            f"{arch:5} {total / 2**20:6.1f} MiB in ${{LAMBDA_TASK_ROOT}} "
            f"(pipeline package {package / 2**10:.0f} KiB, "
            f"dependencies {(total - package) / 2**20:.1f} MiB)"
        )
