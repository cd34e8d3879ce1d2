"""Fixtures for the image tests: the one Lambda image's install, reproduced from images/Dockerfile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest
from tests.images.replay import (
    IMAGE_SIZES,
    LAMBDA_TASK_ROOT,
    REPO,
    ImageInstall,
    Replayer,
    host_path,
    python311,
)

from pipeline_toolkit.imagefiles import dockerfile_path, parse_dockerfile


@pytest.fixture(scope="session")
def python_311() -> str:
    python = python311()
    if python is None:
        pytest.skip("needs a Python 3.11 interpreter (the Lambda base image's version)")
    return python


@pytest.fixture(scope="session")
def reproduce_install(
    tmp_path_factory: pytest.TempPathFactory, python_311: str
) -> Callable[..., ImageInstall]:
    """``install(arch="amd64")``: the task root as images/Dockerfile builds it (every function runs it)."""
    workdir = tmp_path_factory.mktemp("image-installs")
    cache: dict[str, Path] = {}
    replayers = {arch: Replayer(workdir, python_311, cache, arch) for arch in ("amd64", "arm64")}
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
