"""pipeline_toolkit.deploy and .imagefiles: the content tag, the build commands, refusals, the deploy flow.

The flow test runs the real ``python -m pipeline_toolkit.deploy``, real Terraform and the embedded emulator
(ECR, Lambda, ...), with a stand-in docker CLI (fake_docker.py) that pushes through the emulator's ECR API: it
proves that a changed image updates every function (they all run it) and an unchanged one leaves them alone,
without a Docker engine.
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
import pytest
from tests.images import fake_docker
from tests.images.replay import REPO

from pipeline_toolkit import deploy
from pipeline_toolkit.imagefiles import DockerIgnore, image_tag
from pipeline_toolkit.project import load_functions

#: The stack's `environment` in the flow test: its own names, apart from other stacks in this process's moto.
FLOW_ENVIRONMENT = "deployflow"


def copy_checkout(dest: Path) -> Path:
    """What the image and the stack are made of, copied so the test can change it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".terraform", "*.tfstate*", "build")
    for rel in ("images", "requirements", "src/pipeline", "terraform"):
        shutil.copytree(REPO / rel, dest / rel, ignore=ignore)
    shutil.copy2(REPO / ".dockerignore", dest / ".dockerignore")
    return dest


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return copy_checkout(tmp_path / "repo")


def touch(path: Path, text: str = "\n# changed\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


# --- the content tag -------------------------------------------------------------------------------------


def test_content_tag_is_stable_and_one_for_every_function(checkout: Path) -> None:
    tag = image_tag(checkout, "x86_64")
    assert tag == image_tag(checkout, "x86_64")
    assert tag.startswith("x86_64-")
    assert tag == image_tag(copy_checkout(checkout.parent / "again"), "x86_64")  # not path- or mtime-bound
    # One image: deploy pushes this one tag to every function's repository.
    assert deploy.content_tag(deploy.Settings.for_checkout(checkout, "x86_64")) == tag


def test_content_tag_ignores_what_the_build_never_sees(checkout: Path) -> None:
    before = image_tag(checkout, "x86_64")
    touch(checkout / "src" / "pipeline" / "__pycache__" / "datasets.cpython-311.pyc", "bytecode")
    touch(checkout / "toolkit" / "src" / "pipeline_toolkit" / "deploy.py")  # dev toolkit: dockerignored
    touch(checkout / "toolkit" / "pyproject.toml")
    touch(checkout / "tests" / "unit" / "test_new.py")
    touch(checkout / "terraform" / "main.tf")
    touch(checkout / "README.md")
    # A function's handler is Terraform's (image_config.command), not the image's.
    functions_file = checkout / "terraform" / "functions.json"
    functions = json.loads(functions_file.read_text())
    first = next(iter(functions))
    functions[first]["handler"] = "pipeline.handlers.renamed.handler"
    functions_file.write_text(json.dumps(functions))
    assert image_tag(checkout, "x86_64") == before


def test_content_tag_changes_with_a_source_file(checkout: Path) -> None:
    before = image_tag(checkout, "x86_64")
    touch(checkout / "src" / "pipeline" / "datasets.py")
    assert image_tag(checkout, "x86_64") != before


def test_content_tag_changes_with_requirements_dockerfile_and_architecture(checkout: Path) -> None:
    before = image_tag(checkout, "x86_64")
    touch(checkout / "images" / "Dockerfile", "# a comment is content too\n")
    after_dockerfile = image_tag(checkout, "x86_64")
    assert after_dockerfile != before
    touch(checkout / "requirements" / "runtime.txt", "# re-locked\n")
    assert image_tag(checkout, "x86_64") != after_dockerfile
    arm = image_tag(checkout, "arm64")
    assert arm.startswith("arm64-")
    assert arm.removeprefix("arm64-") != image_tag(checkout, "x86_64").removeprefix("x86_64-")


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
    "terraform/functions.json",
    "benchmarks/run.py",
    "samples/users.csv",
    "README.md",
    "pyproject.toml",
    "build/deploy/x86_64.json",
    "images/Dockerfile",
    "docker-compose.yml",
    "toolkit/pyproject.toml",
    "toolkit/src/pipeline_toolkit/deploy.py",
    "toolkit/src/pipeline_toolkit/emulator.py",
    ".local/localstack/compose.functions.yml",
    "src/pipeline/__pycache__/a.cpython-311.pyc",
    "src/pipeline/handlers/__pycache__/datalake.cpython-311.pyc",
]
IN_CONTEXT = [
    "requirements/runtime.txt",
    "src/pipeline/__init__.py",
    "src/pipeline/handlers/datalake.py",
    "src/pipeline/handlers/database.py",
    "src/pipeline/py.typed",
]


def test_the_build_context_holds_only_what_the_image_copies() -> None:
    ignore = DockerIgnore.load(REPO)
    assert [path for path in OUT_OF_CONTEXT if not ignore.excluded(path)] == []
    assert [path for path in IN_CONTEXT if ignore.excluded(path)] == []


@pytest.mark.parametrize(("arch", "platform"), [("x86_64", "linux/amd64"), ("arm64", "linux/arm64")])
def test_build_command_sets_platform_and_turns_attestations_off(arch: str, platform: str) -> None:
    settings = deploy.Settings.for_checkout(REPO, arch)
    command = deploy.build_command(settings, "t")
    argv = command.argv
    assert argv[:3] == ["docker", "buildx", "build"]
    assert argv[argv.index("--platform") + 1] == platform
    assert {"--provenance=false", "--sbom=false", "--load"} <= set(argv)
    assert argv[argv.index("--file") + 1] == "images/Dockerfile"
    assert argv[argv.index("--tag") + 1] == "s3-ingest-pipeline/lambda:t"
    assert argv[-1] == "."  # the repository root is the build context
    assert command.env == {}


@pytest.mark.parametrize(("arch", "platform"), [("x86_64", "linux/amd64"), ("arm64", "linux/arm64")])
def test_without_buildx_the_build_uses_buildkit_through_the_engine(
    arch: str, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_BUILD_CLI", raising=False)
    command = deploy.build_command(deploy.Settings.for_checkout(REPO, arch), "t", buildx=False)
    argv = command.argv
    assert argv[:2] == ["docker", "build"]
    assert command.env == {"DOCKER_BUILDKIT": "1"}  # the Dockerfile needs BuildKit (cache mounts, TARGETARCH)
    assert argv[argv.index("--platform") + 1] == platform
    assert argv[argv.index("--file") + 1] == "images/Dockerfile"
    assert argv[argv.index("--tag") + 1] == "s3-ingest-pipeline/lambda:t"
    assert argv[-1] == "."
    assert not [flag for flag in argv if flag.startswith(("--provenance", "--sbom", "--load"))]  # buildx's


# --- refusals --------------------------------------------------------------------------------------------


def no_aws_env(tmp_path: Path, path: str) -> dict[str, str]:
    """An environment with no AWS credentials anywhere the SDK looks, and no emulator."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in {"DOCKER_BUILD_CLI", "BASE_IMAGE", "BUILD_NETWORK"}
    }
    env.update(
        PATH=path,
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        FAKE_DOCKER_LOG=str(tmp_path / "docker.log"),
        FAKE_DOCKER_STATE=str(tmp_path / "docker.json"),
        PIPELINE_PROJECT_DIR=str(REPO),
    )
    return env


def run_deploy(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline_toolkit.deploy", "--region", "us-east-1", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def test_refuses_to_build_without_docker(tmp_path: Path) -> None:
    result = run_deploy("images", env=no_aws_env(tmp_path, "/usr/bin/nonexistent"))
    assert result.returncode == 2
    assert "`docker` command is not on PATH" in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_when_no_engine_answers(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, str(fake_docker.install(tmp_path / "bin")))
    env["FAKE_DOCKER_FAIL"] = "info"
    result = run_deploy("images", env=env)
    assert result.returncode == 2
    assert "no Docker engine answers" in result.stderr
    built = [call for call in fake_docker.calls(tmp_path / "docker.log") if "build" in call[:2]]
    assert built == []  # nothing was built


def test_without_buildx_it_builds_with_buildkit_through_the_engine_and_says_so(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, str(fake_docker.install(tmp_path / "bin")))
    env["FAKE_DOCKER_FAIL"] = "buildx"
    result = run_deploy("images", env=env)
    assert result.returncode == 0, result.stderr
    assert "docker buildx is not available" in result.stderr
    assert "DOCKER_BUILDKIT=1 docker build" in result.stderr
    builds = [call for call in fake_docker.calls(tmp_path / "docker.log") if call[0] == "build"]
    assert len(builds) == 1  # the stand-in checks DOCKER_BUILDKIT=1 and --platform itself
    assert builds[0][builds[0].index("--tag") + 1] == f"s3-ingest-pipeline/lambda:{image_tag(REPO, 'x86_64')}"


def test_without_buildx_a_failing_build_says_what_to_install(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, str(fake_docker.install(tmp_path / "bin")))
    env["FAKE_DOCKER_FAIL"] = "buildx,build"  # as Docker CLI 23+ does: no BuildKit without buildx
    result = run_deploy("images", env=env)
    assert result.returncode == 2
    assert "install the docker-buildx plugin" in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_without_aws_credentials(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, str(fake_docker.install(tmp_path / "bin")))
    result = run_deploy("push", env=env)
    assert result.returncode == 2
    assert "No AWS credentials found" in result.stderr
    assert "AWS_PROFILE=<profile>" in result.stderr


def test_refuses_an_unknown_profile(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, str(fake_docker.install(tmp_path / "bin")))
    result = run_deploy("--profile", "no-such-profile", "plan", env=env)
    assert result.returncode == 2
    assert "AWS profile 'no-such-profile' is not configured" in result.stderr


def test_deploy_lists_every_missing_prerequisite(tmp_path: Path) -> None:
    result = run_deploy("deploy", env=no_aws_env(tmp_path, "/usr/bin/nonexistent"))
    assert result.returncode == 2
    assert "`docker` command is not on PATH" in result.stderr
    assert "No AWS credentials found" in result.stderr


def test_refuses_outside_a_project_checkout(tmp_path: Path) -> None:
    env = no_aws_env(tmp_path, str(fake_docker.install(tmp_path / "bin")))
    env["PIPELINE_PROJECT_DIR"] = str(tmp_path)
    result = run_deploy("tags", env=env)
    assert result.returncode == 2
    assert "is not a project checkout" in result.stderr
    assert "Traceback" not in result.stderr


def test_named_profile_is_used_for_the_credential_check(tmp_path: Path) -> None:
    from pipeline_toolkit import emulator

    running = emulator.start()
    try:
        env = no_aws_env(tmp_path, str(fake_docker.install(tmp_path / "bin")))
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
    env = no_aws_env(tmp_path, f"{fake_docker.install(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    env.update({key: value for key, value in running.environment().items() if value})
    # The emulator cannot run container images; the project's local runtime polls the queues instead.
    env["TF_VAR_managed_sqs_polling"] = "false"
    env["TF_VAR_table_deletion_protection"] = "false"
    # Nor can it hold the upload page's CloudFront distribution (no response headers policy): as on the
    # embedded target, the deploy leaves the page off (terraform/modules/site/README.md).
    env["TF_VAR_enable_upload_page"] = "false"
    env["TF_VAR_environment"] = FLOW_ENVIRONMENT
    try:
        yield env
    finally:
        running.stop()


def deploy_once(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Terraform finds the provider mirror itself, from TF_PLUGIN_MIRROR (inherited, as make exports it).
    result = run_deploy("--root", str(root), "--auto-approve", "deploy", env=env, timeout=900)
    assert result.returncode == 0, f"deploy failed:\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"
    return result


def deployed_images(env: dict[str, str], keys: list[str]) -> dict[str, dict[str, Any]]:
    client = boto3.client("lambda", region_name=env["AWS_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"],
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for key in keys:
        config = client.get_function(FunctionName=f"pipeline-{FLOW_ENVIRONMENT}-{key}")
        configuration = config["Configuration"]
        found[key] = {
            "uri": config["Code"]["ImageUri"],
            "modified": configuration["LastModified"],
            "arch": configuration["Architectures"],
            "command": configuration["ImageConfigResponse"]["ImageConfig"]["Command"],
        }
    return found


def pushes(log: Path) -> list[str]:
    return [call[1] for call in fake_docker.calls(log) if call[0] == "push"]


def builds(log: Path) -> int:
    return len([call for call in fake_docker.calls(log) if call[:2] == ["buildx", "build"]])


def digest_of(image: dict[str, Any]) -> str:
    return str(image["uri"]).rpartition("@")[2]


@pytest.mark.terraform
def test_deploy_updates_every_function_when_the_image_changes_and_none_when_it_does_not(
    tmp_path: Path, deploy_env: dict[str, str]
) -> None:
    root = copy_checkout(tmp_path / "repo")
    functions = load_functions(root)
    keys = list(functions)
    log = Path(deploy_env["FAKE_DOCKER_LOG"])

    # First deploy: creates the repositories (targeted apply), builds once, pushes the one image to every
    # function's repository under its content tag, applies with the digests read back from ECR.
    first_run = deploy_once(root, deploy_env)
    assert "first deploy: creating the ECR repositories" in first_run.stderr
    # The quota check ran before anything was created (the emulator has no GetAccountSettings: "not checked").
    quota_line = first_run.stderr.index("quotas")
    assert quota_line < first_run.stderr.index("first deploy: creating the ECR repositories")
    tag = image_tag(root, "x86_64")
    first = deployed_images(deploy_env, keys)
    assert builds(log) == 1
    pushed = pushes(log)
    assert len(pushed) == len(keys)
    assert all(remote.endswith(f":{tag}") for remote in pushed)
    repositories = {image["uri"].rpartition("@")[0] for image in first.values()}
    assert {remote.rpartition(":")[0] for remote in pushed} == repositories  # one push per repository
    assert len(repositories) == len(keys)
    for key, image in first.items():
        assert "@sha256:" in image["uri"]
        assert image["arch"] == ["x86_64"]
        assert image["command"] == [functions[key].handler]  # the handler is Terraform's, per function
    assert len({digest_of(image) for image in first.values()}) == 1  # one image: one digest everywhere
    recorded = json.loads((root / "build" / "deploy" / "x86_64.json").read_text())
    assert recorded["image_digests"] == {key: digest_of(image) for key, image in first.items()}
    assert recorded["image_tag"] == tag

    # Unchanged content: rebuilt (a new, different image locally), but nothing pushed and no function touched.
    deploy_once(root, deploy_env)
    assert builds(log) == 2
    assert len(pushes(log)) == len(keys)
    assert deployed_images(deploy_env, keys) == first

    # A change to the package, which every function runs: a new tag, pushed everywhere, every function
    # updated.
    touch(root / "src" / "pipeline" / "datasets.py", "# rebuilt for a reason\n")
    deploy_once(root, deploy_env)
    new_tag = image_tag(root, "x86_64")
    assert new_tag != tag
    pushed = pushes(log)[len(keys) :]
    assert len(pushed) == len(keys)
    assert all(remote.endswith(f":{new_tag}") for remote in pushed)
    third = deployed_images(deploy_env, keys)
    for key in keys:
        assert third[key]["uri"] != first[key]["uri"], key
        assert third[key]["uri"].rpartition("@")[0] == first[key]["uri"].rpartition("@")[0]  # same repository
        assert third[key]["command"] == first[key]["command"]
    assert len({digest_of(image) for image in third.values()}) == 1
