"""Fixtures for the image tests: each Lambda image's install, reproduced from its Dockerfile (replay.py)."""

from __future__ import annotations

import sys
from pathlib import Path

# scripts/ holds imagefiles.py (Dockerfile reader, .dockerignore, content hash) and deploy.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from collections.abc import Callable
from pathlib import PurePosixPath

import pytest
from imagefiles import dockerfile_path, parse_dockerfile
from tests.images.replay import (
    IMAGE_SIZES,
    LAMBDA_TASK_ROOT,
    REPO,
    ImageInstall,
    Replayer,
    host_path,
    python311,
)


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
    """``install(function, arch="amd64")``: the task root as the function's Dockerfile builds it."""
    workdir = tmp_path_factory.mktemp("image-installs")
    cache: dict[str, Path] = {}
    replayers = {arch: Replayer(workdir, python_311, cache, arch) for arch in ("amd64", "arm64")}
    installs: dict[tuple[str, str], ImageInstall] = {}

    def install(function: str, arch: str = "amd64") -> ImageInstall:
        if (function, arch) not in installs:
            dockerfile = parse_dockerfile(dockerfile_path(REPO, function))
            final = replayers[arch].build(dockerfile, dockerfile.final)
            (handler,) = dockerfile.cmd()
            image = ImageInstall(
                function, dockerfile, host_path(final, PurePosixPath(LAMBDA_TASK_ROOT)), handler
            )
            installs[function, arch] = image
            IMAGE_SIZES[function, arch] = (image.size_bytes(), image.size_bytes("pipeline"))
        return installs[function, arch]

    return install


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not IMAGE_SIZES:
        return
    terminalreporter.section("Lambda image installs (task root, reproduced from the Dockerfiles)")
    for (function, arch), (total, package) in sorted(IMAGE_SIZES.items()):
        terminalreporter.write_line(
            f"{function:16} {arch:5} {total / 2**20:6.1f} MiB in ${{LAMBDA_TASK_ROOT}} "
            f"(pipeline package {package / 2**10:.0f} KiB, "
            f"dependencies {(total - package) / 2**20:.1f} MiB)"
        )
