"""The LocalStack deployment: its pieces, and the whole deploy against the embedded emulator.

LocalStack itself needs Docker and an auth token. ``localstack.deploy`` only needs an AWS endpoint and a
docker CLI, so it runs here against the emulator with the stand-in docker CLI of the image tests: that proves
it goes through the routines of ``make deploy`` (:mod:`pipeline_toolkit.deploy`): the targeted ECR apply, one
build, the content tag pushed to every function's repository, the digests read back from ECR and passed to
Terraform.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3
import pytest
import yaml
from tests.images import fake_docker

from pipeline_toolkit import deploy as aws_deploy
from pipeline_toolkit import emulator, localstack
from pipeline_toolkit.deployment import FunctionConfig
from pipeline_toolkit.imagefiles import image_tag
from pipeline_toolkit.localstack import env_file_text, localstack_variables
from pipeline_toolkit.project import load_functions, project_dir

#: The stack's `environment` here: its own names, apart from other stacks in this process's moto.
STACK_ENVIRONMENT = "lstest"


def function(**environment: str) -> FunctionConfig:
    return FunctionConfig(
        name="pipeline-dev-datalake-loader",
        arn="arn:aws:lambda:us-east-1:000000000000:function:pipeline-dev-datalake-loader",
        handler="pipeline.handlers.datalake.handler",
        timeout_seconds=5,
        memory_mb=512,
        region="us-east-1",
        environment=environment,
    )


def test_env_file_holds_the_deployed_environment_and_lambdas_own_variables() -> None:
    text = env_file_text(function(PIPELINE_DATALAKE_BUCKET="lake", POWERTOOLS_LOG_LEVEL="INFO"))

    lines = text.splitlines()
    assert "PIPELINE_DATALAKE_BUCKET=lake" in lines
    assert "AWS_LAMBDA_FUNCTION_TIMEOUT=5" in lines  # the Runtime Interface Emulator enforces it
    assert "AWS_LAMBDA_FUNCTION_NAME=pipeline-dev-datalake-loader" in lines
    assert lines == sorted(lines)


def test_env_file_refuses_a_value_it_cannot_carry() -> None:
    with pytest.raises(ValueError, match="newline"):
        env_file_text(function(BAD="two\nlines"))


@pytest.mark.parametrize("managed", [True, False])
def test_variables_choose_who_polls(managed: bool) -> None:
    variables = localstack_variables(managed_sqs_polling=managed)

    assert variables["managed_sqs_polling"] is managed
    assert set(variables["function_settings"]) == set(load_functions())
    # The image variables are the release's, from the deploy path: never a fixed tag here.
    assert not {"image_tag", "image_digests"} & set(variables)


def deployed_configs(names: Mapping[str, str]) -> dict[str, FunctionConfig]:
    """What the deploy reads back, per function key: the handler is functions.json's (Terraform's command)."""
    specs = load_functions()
    return {
        key: FunctionConfig(
            name=name,
            arn=f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
            handler=specs[key].handler,
            timeout_seconds=5,
            memory_mb=512,
            region="us-east-1",
        )
        for key, name in names.items()
    }


def test_function_containers_follow_the_list_order_from_port_9001(tmp_path: Path) -> None:
    order = list(load_functions())
    # Terraform's outputs come sorted by key, whatever the list's order: the ports follow the list.
    names = {key: f"pipeline-dev-{key}" for key in sorted(order, reverse=True)}
    containers = localstack.function_containers(deployed_configs(names), order, tmp_path)

    assert [container.key for container in containers] == order
    assert [container.port for container in containers] == list(range(9001, 9001 + len(order)))
    assert [container.env_file for container in containers] == [
        (tmp_path / f"{key}.env").resolve() for key in order
    ]
    text = localstack.invoker_urls_text(containers)
    assert (
        text
        == ",".join(f"pipeline-dev-{key}=http://127.0.0.1:{9001 + n}" for n, key in enumerate(order)) + "\n"
    )


# --- the whole deploy, against the emulator ----------------------------------------------------------------


@pytest.fixture
def target(tmp_path: Path) -> Iterator[dict[str, str]]:
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    running = emulator.start()
    environment = {
        **os.environ,
        **running.environment(),  # empty values (AWS_PROFILE, AWS_SESSION_TOKEN) mean "unset"
        "PATH": f"{fake_docker.install(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
        "FAKE_DOCKER_LOG": str(tmp_path / "docker.log"),
        "FAKE_DOCKER_STATE": str(tmp_path / "docker.json"),
        "TF_VAR_environment": STACK_ENVIRONMENT,
        "LAMBDA_ARCH": "x86_64",
    }
    try:
        yield environment
    finally:
        running.stop()


@pytest.mark.terraform
def test_local_deploy_goes_through_the_aws_deploy_path(
    target: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one push routine, watched: LocalStack's path must call the very function `make deploy` calls.
    pushed_with: list[tuple[dict[str, str], str]] = []
    push_images = aws_deploy.push_images

    def watched(settings: aws_deploy.Settings, urls: Mapping[str, str], tag: str) -> dict[str, str]:
        pushed_with.append((dict(urls), tag))
        return push_images(settings, urls, tag)

    monkeypatch.setattr(aws_deploy, "push_images", watched)
    state_dir = tmp_path / "state"
    messages: list[str] = []

    outputs = localstack.deploy(target, state_dir, managed_sqs_polling=False, say=messages.append)

    functions = load_functions()
    tag = image_tag(project_dir(), "x86_64")
    assert set(outputs.functions) == set(functions)
    # Pushed once per repository, under the content tag, after one build.
    ((urls, pushed_tag),) = pushed_with
    assert pushed_tag == tag
    assert set(urls) == set(functions)
    calls = fake_docker.calls(Path(target["FAKE_DOCKER_LOG"]))
    assert len([call for call in calls if call[:2] == ["buildx", "build"]]) == 1
    assert sorted(call[1] for call in calls if call[0] == "push") == sorted(
        f"{url}:{tag}" for url in urls.values()
    )
    assert not [call for call in calls if call[0] == "tag" and call[2].endswith(":latest")]

    # Every function runs <repository>@<the digest ECR holds for that tag>.
    ecr = boto3.client("ecr", region_name="us-east-1", endpoint_url=target["AWS_ENDPOINT_URL"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    awslambda = boto3.client("lambda", region_name="us-east-1", endpoint_url=target["AWS_ENDPOINT_URL"],
                             aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    for key, name in outputs.functions.items():
        repository = urls[key].partition("/")[2]
        (detail,) = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])[
            "imageDetails"
        ]
        configuration = awslambda.get_function(FunctionName=name)
        assert configuration["Code"]["ImageUri"] == f"{urls[key]}@{detail['imageDigest']}"
        command = configuration["Configuration"]["ImageConfigResponse"]["ImageConfig"]["Command"]
        assert command == [functions[key].handler]

    # What the compose file and the e2e tests read.
    raw = json.loads((state_dir / "outputs.json").read_text())
    assert raw["image_uris"] == {
        key: awslambda.get_function(FunctionName=name)["Code"]["ImageUri"]
        for key, name in outputs.functions.items()
    }
    compose = yaml.safe_load((state_dir / localstack.COMPOSE_FILE).read_text())
    assert list(compose["services"]) == list(functions)  # one service per function, in the list's order
    for n, (key, service) in enumerate(compose["services"].items()):
        env_file = state_dir / f"{key}.env"
        assert f"AWS_LAMBDA_FUNCTION_NAME={outputs.functions[key]}" in env_file.read_text().splitlines()
        assert service["image"] == f"s3-ingest-pipeline/lambda:{tag}"  # what was built and pushed
        assert service["command"] == [functions[key].handler]
        assert service["env_file"] == [{"path": str(env_file.resolve()), "required": True}]
        assert service["ports"] == [f"127.0.0.1:{9001 + n}:8080"]
    invoker_urls = (state_dir / localstack.INVOKER_URLS_FILE).read_text().strip()
    assert invoker_urls == ",".join(
        f"{outputs.functions[key]}=http://127.0.0.1:{9001 + n}" for n, key in enumerate(functions)
    )
    assert any(f"-f {state_dir / localstack.COMPOSE_FILE}" in message for message in messages)
