"""The images and the Terraform stack agree: a plan of the real stack, made with exactly the variables
``scripts/deploy.py`` passes, configures each function with its Dockerfile's CMD and the architecture the
image was built for.

The plan runs against the embedded emulator (no AWS account), from a copy of terraform/ so that nothing is
written into the working tree. Needs the terraform binary and a provider (registry or TF_PLUGIN_MIRROR).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import deploy
import pytest
from imagefiles import ARCHITECTURES, FUNCTIONS, dockerfile_path, parse_dockerfile
from tests.images.replay import REPO

pytestmark = pytest.mark.terraform

FAKE_DIGESTS = {function: "sha256:" + f"{n:x}" * 64 for n, function in enumerate(FUNCTIONS, start=10)}


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    from pipeline_toolkit import emulator

    workdir = tmp_path_factory.mktemp("tf") / "terraform"
    shutil.copytree(REPO / "terraform", workdir, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    running = emulator.start()
    env = {**os.environ, **running.environment()}
    env = {key: value for key, value in env.items() if value}
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    mirror = os.environ.get("TF_PLUGIN_MIRROR")
    init = [
        "terraform",
        "init",
        "-input=false",
        "-backend=false",
        *([f"-plugin-dir={mirror}"] if mirror else []),
    ]
    try:
        result = subprocess.run(init, cwd=workdir, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"terraform init failed:\n{result.stderr[-3000:]}"
        yield workdir, env
    finally:
        running.stop()


def plan(workdir: Path, env: dict[str, str], arch: str) -> dict[str, Any]:
    settings = deploy.Settings(root=REPO, arch=arch, functions=FUNCTIONS, tf_dir=workdir)
    tags = {function: f"{arch}-{'0' * 24}" for function in FUNCTIONS}
    variables = deploy.terraform_vars(settings, tags, FAKE_DIGESTS)
    planfile = workdir / f"{arch}.tfplan"
    result = subprocess.run(
        ["terraform", "plan", "-input=false", "-lock=false", f"-out={planfile}", *variables],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"terraform plan with deploy.py's variables failed:\n{result.stderr[-3000:]}"
    )
    shown = subprocess.run(
        ["terraform", "show", "-json", str(planfile)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def planned_functions(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Planned aws_lambda_function attributes per function key (the key is in the module instance address)."""
    found: dict[str, dict[str, Any]] = {}
    for change in document["resource_changes"]:
        if change["type"] != "aws_lambda_function":
            continue
        keys = [function for function in FUNCTIONS if f'["{function}"]' in change["address"]]
        assert len(keys) == 1, f"cannot tell which function {change['address']} is"
        found[keys[0]] = change["change"]["after"]
    assert set(found) == set(FUNCTIONS), f"planned functions: {sorted(found)}"
    return found


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_terraform_runs_each_image_with_its_dockerfile_cmd(
    initialised: tuple[Path, dict[str, str]], arch: str
) -> None:
    workdir, env = initialised
    functions = planned_functions(plan(workdir, env, arch))
    for function, after in functions.items():
        cmd = parse_dockerfile(dockerfile_path(REPO, function)).cmd()
        (image_config,) = after["image_config"]
        assert image_config["command"] == cmd, f"{function}: Terraform command != Dockerfile CMD"
        assert after["package_type"] == "Image"
        # One variable drives both: the image's docker platform and the function's architecture.
        assert after["architectures"] == [arch]
        assert ARCHITECTURES[arch] == {"x86_64": "linux/amd64", "arm64": "linux/arm64"}[arch]
