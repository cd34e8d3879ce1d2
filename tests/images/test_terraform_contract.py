"""The image and the Terraform stack agree: a plan of the real stack, made with exactly the variables
``pipeline_toolkit.deploy`` passes, runs every function of terraform/functions.json with that function's
handler as its command (the image has no CMD), on the architecture the image was built for; and each of those
handlers is importable and callable in the reproduced install of the one image.

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

import pytest
from tests.images.replay import REPO, ImageInstall, run_handler

from pipeline_toolkit import deploy
from pipeline_toolkit.imagefiles import ARCHITECTURES
from pipeline_toolkit.project import load_functions

pytestmark = pytest.mark.terraform

FUNCTIONS = load_functions(REPO)
FAKE_DIGESTS = {key: "sha256:" + f"{n:x}" * 64 for n, key in enumerate(FUNCTIONS, start=10)}


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
    variables = deploy.release_variables(arch, f"{arch}-{'0' * 24}", FAKE_DIGESTS)
    var_file = workdir / f"{arch}.tfvars.json"
    var_file.write_text(json.dumps(variables))  # as the Terraform wrapper passes them: a JSON var file
    planfile = workdir / f"{arch}.tfplan"
    result = subprocess.run(
        ["terraform", "plan", "-input=false", "-lock=false", f"-out={planfile}", f"-var-file={var_file}"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"terraform plan with deploy's variables failed:\n{result.stderr[-3000:]}"
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
        keys = [key for key in FUNCTIONS if f'["{key}"]' in change["address"]]
        assert len(keys) == 1, f"cannot tell which function {change['address']} is"
        found[keys[0]] = change["change"]["after"]
    assert set(found) == set(FUNCTIONS), f"planned functions: {sorted(found)}"
    return found


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_terraform_runs_every_function_with_its_handler_from_the_list(
    initialised: tuple[Path, dict[str, str]], arch: str
) -> None:
    workdir, env = initialised
    functions = planned_functions(plan(workdir, env, arch))
    for key, after in functions.items():
        (image_config,) = after["image_config"]
        assert image_config["command"] == [FUNCTIONS[key].handler], f"{key}: command != functions.json"
        assert after["package_type"] == "Image"
        # One variable drives both: the image's docker platform and the function's architecture.
        assert after["architectures"] == [arch]
        assert ARCHITECTURES[arch] == {"x86_64": "linux/amd64", "arm64": "linux/arm64"}[arch]


@pytest.fixture(scope="module")
def planned_x86_64(initialised: tuple[Path, dict[str, str]]) -> dict[str, Any]:
    workdir, env = initialised
    return plan(workdir, env, "x86_64")


def reference_value(reference: str, document: dict[str, Any]) -> str:
    """What Terraform gives the function for a functions.json reference, as far as the plan knows it: a
    setting is the root variable's planned value; a resource's name or URL, one of the right form."""
    kind, _, name = reference.partition(".")
    if kind == "setting":
        value = document["variables"][name]["value"]
        if isinstance(value, dict):  # a map: main.tf joins it as table=version pairs, in key order
            return ",".join(f"{key}={value[key]}" for key in sorted(value))
        return str(value)  # tostring(var.<name>) in main.tf
    if kind == "queue":
        return f"https://sqs.us-east-1.amazonaws.com/123456789012/pipeline-dev-{name}"
    return reference.replace(".", "-")  # bucket and table names


@pytest.mark.parametrize("key", list(FUNCTIONS))
def test_each_command_is_importable_and_callable_in_the_one_install(
    planned_x86_64: dict[str, Any],
    handler_host: ImageInstall | str,
    tmp_path: Path,
    key: str,
) -> None:
    """What Lambda does at cold start with the command Terraform sets: import it from the task root, in the
    environment functions.json gives the function (the handlers validate it at import)."""
    spec = FUNCTIONS[key]
    (image_config,) = planned_functions(planned_x86_64)[key]["image_config"]
    (handler,) = image_config["command"]
    env = {name: reference_value(ref, planned_x86_64) for name, ref in spec.environment.items()}
    env |= {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": key}
    report = run_handler(handler_host, handler, key, env, tmp_path)
    assert report["result"] == {"callable": True}, report["log"]
