"""scripts/deploy.py and scripts/imagefiles.py: content tags, build flags, refusals, and the deploy flow.

The flow test runs the real script, real Terraform and the embedded emulator (ECR, Lambda, ...), with a
stand-in docker CLI (fake_docker.py) that pushes through the emulator's ECR API: it proves that a changed
image updates its function and an unchanged one leaves it alone, without a Docker engine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import deploy
import pytest
from imagefiles import FUNCTIONS, DockerIgnore, image_tag
from tests.images.replay import REPO

DEPLOY = REPO / "scripts" / "deploy.py"
FAKE_DOCKER = Path(__file__).with_name("fake_docker.py")


def copy_checkout(dest: Path) -> Path:
    """What the images and the stack are made of, copied so the test can change it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".terraform", "*.tfstate*", "build")
    for rel in ("images", "requirements", "src/pipeline", "terraform", "scripts"):
        shutil.copytree(REPO / rel, dest / rel, ignore=ignore)
    shutil.copy2(REPO / ".dockerignore", dest / ".dockerignore")
    return dest


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return copy_checkout(tmp_path / "repo")


def tags_of(root: Path, arch: str = "x86_64") -> dict[str, str]:
    return {function: image_tag(root, function, arch) for function in FUNCTIONS}


def touch(path: Path, text: str = "\n# changed\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


# --- content tags ----------------------------------------------------------------------------------------


def test_content_tag_is_stable_and_per_function(checkout: Path) -> None:
    first = tags_of(checkout)
    assert first == tags_of(checkout)
    assert first["datalake-loader"] != first["database-loader"]  # their CMDs differ
    assert all(tag.startswith("x86_64-") for tag in first.values())
    assert tags_of(checkout) == tags_of(copy_checkout(checkout.parent / "again"))  # not path- or mtime-bound


def test_content_tag_ignores_what_the_build_never_sees(checkout: Path) -> None:
    before = tags_of(checkout)
    touch(checkout / "src" / "pipeline" / "__pycache__" / "routing.cpython-311.pyc", "bytecode")
    touch(checkout / "src" / "pipeline" / "local" / "emulator.py")  # dockerignored: development tooling
    touch(checkout / "tests" / "unit" / "test_new.py")
    touch(checkout / "terraform" / "main.tf")
    touch(checkout / "README.md")
    assert tags_of(checkout) == before


def test_content_tag_changes_with_a_source_file(checkout: Path) -> None:
    before = tags_of(checkout)
    touch(checkout / "src" / "pipeline" / "routing.py")
    after = tags_of(checkout)
    assert all(after[function] != before[function] for function in FUNCTIONS)  # both images copy the package


def test_content_tag_changes_with_requirements_dockerfile_and_architecture(checkout: Path) -> None:
    before = tags_of(checkout)
    touch(checkout / "images" / "database-loader" / "Dockerfile", "# a comment is content too\n")
    after = tags_of(checkout)
    assert after["datalake-loader"] == before["datalake-loader"]
    assert after["database-loader"] != before["database-loader"]
    touch(checkout / "requirements" / "runtime.txt", "# re-locked\n")
    assert all(tags_of(checkout)[function] != after[function] for function in FUNCTIONS)
    arm = tags_of(checkout, "arm64")
    assert all(arm[function].startswith("arm64-") for function in FUNCTIONS)
    assert arm != tags_of(checkout, "x86_64")


DOCKER_DOCS_RULES = "# comment\n**/*.go\n*/temp*\ntemp?\n*.md\n!README.md\n/build\n"


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("main.go", True),
        ("a/b/c.go", True),  # ** spans directories, the root included
        ("somedir/temporary.txt", True),
        ("temporary.txt", False),  # */temp* is one level down only
        ("a/b/temporary.txt", False),
        ("tempa", True),
        ("tempab", False),
        ("CHANGES.md", True),
        ("README.md", False),  # a later ! re-includes
        ("docs/CHANGES.md", False),  # patterns match from the context root, not anywhere
        ("build/x/y.txt", True),  # a directory's contents go with it
    ],
)
def test_dockerignore_matches_as_docker_does(path: str, excluded: bool) -> None:
    assert DockerIgnore.parse(DOCKER_DOCS_RULES).excluded(path) is excluded


OUT_OF_CONTEXT = [
    ".venv/bin/python",
    ".venv-checkov/bin/checkov",
    ".git/HEAD",
    "tests/unit/test_routing.py",
    "terraform/.terraform/providers/x",
    "terraform/main.tf",
    "benchmarks/run.py",
    "samples/users.csv",
    "README.md",
    "pyproject.toml",
    "build/deploy/x86_64.json",
    "images/datalake-loader/Dockerfile",
    "src/pipeline/__pycache__/a.cpython-311.pyc",
    "src/pipeline/handlers/__pycache__/datalake.cpython-311.pyc",
    "src/pipeline/local/emulator.py",
]
IN_CONTEXT = [
    "requirements/runtime.txt",
    "src/pipeline/__init__.py",
    "src/pipeline/handlers/datalake.py",
    "src/pipeline/py.typed",
]


def test_the_build_context_holds_only_what_the_images_copy() -> None:
    ignore = DockerIgnore.load(REPO)
    assert [path for path in OUT_OF_CONTEXT if not ignore.excluded(path)] == []
    assert [path for path in IN_CONTEXT if ignore.excluded(path)] == []


def test_build_command_sets_platform_and_turns_attestations_off() -> None:
    for arch, platform in (("x86_64", "linux/amd64"), ("arm64", "linux/arm64")):
        settings = deploy.Settings(root=REPO, arch=arch, functions=FUNCTIONS, tf_dir=Path("terraform"))
        argv = deploy.build_command(settings, "datalake-loader", "t")
        assert argv[:3] == ["docker", "buildx", "build"]
        assert argv[argv.index("--platform") + 1] == platform
        assert {"--provenance=false", "--sbom=false", "--load"} <= set(argv)
        assert argv[argv.index("--file") + 1] == "images/datalake-loader/Dockerfile"
        assert argv[-1] == "."  # the repository root is the build context


# --- refusals --------------------------------------------------------------------------------------------


def fake_docker_bin(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "docker"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_DOCKER}" "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return directory


def no_aws_env(tmp_path: Path, path: str) -> dict[str, str]:
    """An environment with no AWS credentials anywhere the SDK looks, and no emulator."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        PATH=path,
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        FAKE_DOCKER_LOG=str(tmp_path / "docker.log"),
        FAKE_DOCKER_STATE=str(tmp_path / "docker.json"),
    )
    return env


def run_deploy(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEPLOY), "--region", "us-east-1", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_refuses_to_build_without_docker(tmp_path: Path) -> None:
    result = run_deploy("images", env=no_aws_env(tmp_path, "/usr/bin/nonexistent"))
    assert result.returncode == 2
    assert "`docker` command is not on PATH" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("failing", "message"), [("info", "no Docker engine answers"), ("buildx", "buildx plugin is missing")]
)
def test_refuses_when_the_engine_or_buildx_is_missing(tmp_path: Path, failing: str, message: str) -> None:
    env = no_aws_env(tmp_path, str(fake_docker_bin(tmp_path / "bin")))
    env["FAKE_DOCKER_FAIL"] = failing
    result = run_deploy("images", env=env)
    assert result.returncode == 2
    assert message in result.stderr
    calls = [json.loads(line) for line in (tmp_path / "docker.log").read_text().splitlines()]
    assert not [call for call in calls if call[:2] == ["buildx", "build"]]  # nothing was built


def test_refuses_without_aws_credentials(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, str(fake_docker_bin(tmp_path / "bin")))
    result = run_deploy("push", env=env)
    assert result.returncode == 2
    assert "No AWS credentials found" in result.stderr
    assert "AWS_PROFILE=<profile>" in result.stderr


def test_refuses_an_unknown_profile(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, str(fake_docker_bin(tmp_path / "bin")))
    result = run_deploy("--profile", "no-such-profile", "plan", env=env)
    assert result.returncode == 2
    assert "AWS profile 'no-such-profile' is not configured" in result.stderr


def test_deploy_lists_every_missing_prerequisite(tmp_path: Path) -> None:
    result = run_deploy("deploy", env=no_aws_env(tmp_path, "/usr/bin/nonexistent"))
    assert result.returncode == 2
    assert "`docker` command is not on PATH" in result.stderr
    assert "No AWS credentials found" in result.stderr


def test_named_profile_is_used_for_the_credential_check(tmp_path: Path) -> None:
    from pipeline_toolkit import emulator

    running = emulator.start()
    try:
        env = no_aws_env(tmp_path, str(fake_docker_bin(tmp_path / "bin")))
        Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
            "[ci-deployer]\naws_access_key_id = testing\naws_secret_access_key = testing\n", encoding="utf-8"
        )
        env["AWS_ENDPOINT_URL"] = running.endpoint_url
        result = run_deploy("--profile", "ci-deployer", "check", "--aws", "--docker", env=env)
        assert result.returncode == 0, result.stderr
        assert "AWS account 123456789012" in result.stderr
    finally:
        running.stop()


# --- the deploy flow, against the emulator ---------------------------------------------------------------


@pytest.fixture
def deploy_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    from pipeline_toolkit import emulator

    running = emulator.start()
    env = no_aws_env(tmp_path, f"{fake_docker_bin(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    env.update({key: value for key, value in running.environment().items() if value})
    # The emulator cannot run container images; the project's local runtime polls the queues instead.
    env["TF_VAR_managed_sqs_polling"] = "false"
    env["TF_VAR_table_deletion_protection"] = "false"
    try:
        yield env
    finally:
        running.stop()


def deploy_once(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    mirror = os.environ.get("TF_PLUGIN_MIRROR")
    result = run_deploy(
        "--root", str(root), "--tf-dir", "terraform", "--auto-approve", "--ecr-target", "module.ecr",
        "--tf-init-flags", f"-input=false {f'-plugin-dir={mirror}' if mirror else ''}", "deploy",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, f"deploy failed:\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"
    return result


def deployed_images(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    client = boto3.client("lambda", region_name=env["AWS_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"],
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for function in client.list_functions()["Functions"]:
        key = next(key for key in FUNCTIONS if function["FunctionName"].endswith(key))
        config = client.get_function(FunctionName=function["FunctionName"])
        found[key] = {"uri": config["Code"]["ImageUri"], "modified": config["Configuration"]["LastModified"],
                      "arch": config["Configuration"]["Architectures"]}  # fmt: skip
    return found


def pushes(log: Path) -> list[str]:
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return [call[1] for call in calls if call[0] == "push"]


@pytest.mark.terraform
def test_deploy_updates_exactly_the_functions_whose_image_changed(
    tmp_path: Path, deploy_env: dict[str, str]
) -> None:
    root = copy_checkout(tmp_path / "repo")
    log = Path(deploy_env["FAKE_DOCKER_LOG"])

    # First deploy: creates the repositories (targeted apply), builds, pushes both, applies with the digests.
    first_run = deploy_once(root, deploy_env)
    assert "first deploy: creating the ECR repositories" in first_run.stderr
    first = deployed_images(deploy_env)
    assert set(first) == set(FUNCTIONS)
    assert len(pushes(log)) == 2
    for image in first.values():
        assert "@sha256:" in image["uri"]
        assert image["arch"] == ["x86_64"]
    assert (
        first["datalake-loader"]["uri"].rpartition("@")[2]
        != first["database-loader"]["uri"].rpartition("@")[2]
    )
    recorded = json.loads((root / "build" / "deploy" / "x86_64.json").read_text())
    assert {f: first[f]["uri"].rpartition("@")[2] for f in FUNCTIONS} == recorded["image_digests"]

    # Unchanged content: rebuilt (a new, different image locally), but nothing pushed and no function touched.
    deploy_once(root, deploy_env)
    assert len(pushes(log)) == 2
    assert deployed_images(deploy_env) == first

    # A change only the database loader's image sees: only it is pushed and updated.
    touch(root / "images" / "database-loader" / "Dockerfile", "# rebuilt for a reason\n")
    deploy_once(root, deploy_env)
    pushed = pushes(log)
    assert len(pushed) == 3
    assert "database-loader" in pushed[-1]
    third = deployed_images(deploy_env)
    assert third["datalake-loader"] == first["datalake-loader"]
    assert third["database-loader"]["uri"] != first["database-loader"]["uri"]
