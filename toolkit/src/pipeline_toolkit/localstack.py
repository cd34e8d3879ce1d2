"""Deploy the stack to LocalStack (``docker-compose.yml``) for ``make e2e-localstack``.

Nothing here can run without Docker and a LocalStack auth token; the pieces that do not need them (the
variables, the env files, the docker commands) are unit-tested. Steps, against the target in the environment
(``AWS_ENDPOINT_URL`` pointing at LocalStack):

1. ``terraform apply`` of the ECR repositories alone (``TF_CLI_ARGS_apply=-target=module.ecr``);
2. tag and push the locally built function images to them (LocalStack's registry), so the functions'
   ``image_uri`` exists;
3. ``terraform apply`` of the whole stack. ``managed_sqs_polling=true``: LocalStack polls the queues and
   runs the images itself (container-image Lambda is a LocalStack Pro feature). ``false``: the mappings are
   created disabled and the local runtime polls, invoking the function containers that docker compose runs
   with the Runtime Interface Emulator (profile ``functions``);
4. write ``outputs.json`` (for the e2e tests and ``pipeline status --outputs``) and one ``<key>.env`` per
   function: its deployed environment, for those containers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline_toolkit.clients import Clients
from pipeline_toolkit.deployment import FunctionConfig, read_function
from pipeline_toolkit.outputs import StackOutputs
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, Terraform, local_function_settings

#: Images docker compose builds for the function containers (``docker-compose.yml``), by function key.
LOCAL_IMAGES = {
    "datalake-loader": "s3-ingest-pipeline/datalake-loader:local",
    "database-loader": "s3-ingest-pipeline/database-loader:local",
}
IMAGE_TAG = "latest"

Runner = Callable[[Sequence[str]], None]
Say = Callable[[str], None]


def _run(command: Sequence[str]) -> None:
    subprocess.run(list(command), check=True)


def _quiet(_message: str) -> None:
    return


def localstack_variables(*, managed_sqs_polling: bool) -> dict[str, Any]:
    return {
        **EMBEDDED_VARIABLES,
        "managed_sqs_polling": managed_sqs_polling,
        "function_settings": local_function_settings(),
        "image_tag": IMAGE_TAG,
    }


def push_commands(local_image: str, repository_url: str, tag: str = IMAGE_TAG) -> list[list[str]]:
    target = f"{repository_url}:{tag}"
    return [["docker", "tag", local_image, target], ["docker", "push", target]]


def env_file_text(function: FunctionConfig) -> str:
    """A docker compose env file: the function's deployed variables and the ones Lambda sets for it."""
    variables = {
        **function.environment,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout_seconds),
    }
    for name, value in variables.items():
        if "\n" in value:
            raise ValueError(f"{function.name}: variable {name} holds a newline; an env file cannot carry it")
    return "".join(f"{name}={value}\n" for name, value in sorted(variables.items()))


def deploy(
    environment: Mapping[str, str],
    state_dir: Path,
    *,
    managed_sqs_polling: bool,
    push_images: bool = True,
    run: Runner = _run,
    say: Say = _quiet,
) -> StackOutputs:
    """Apply the stack to the target in ``environment``; write outputs.json and the env files."""
    state_dir.mkdir(parents=True, exist_ok=True)
    variables = localstack_variables(managed_sqs_polling=managed_sqs_polling)

    def terraform(extra_env: Mapping[str, str] | None = None) -> Terraform:
        return Terraform(
            data_dir=state_dir / "terraform-data",
            state=state_dir / "terraform.tfstate",
            env={**environment, **(extra_env or {})},
            echo=True,
        )

    terraform().init()
    if push_images:
        say("terraform apply -target=module.ecr (the repositories, before any image is pushed)")
        terraform({"TF_CLI_ARGS_apply": "-target=module.ecr"}).apply(variables)
        repositories = terraform().outputs().get("repository_urls") or {}
        for key, local_image in LOCAL_IMAGES.items():
            if key not in repositories:
                raise RuntimeError(f"no ECR repository for {key} in the Terraform outputs")
            for command in push_commands(local_image, repositories[key]):
                say(" ".join(command))
                run(command)
    say(f"terraform apply (managed_sqs_polling={str(managed_sqs_polling).lower()})")
    tf = terraform()
    tf.apply(variables)
    raw_outputs = tf.outputs()
    (state_dir / "outputs.json").write_text(json.dumps(raw_outputs, indent=2))
    outputs = StackOutputs.from_terraform(raw_outputs)
    clients = Clients(environment)
    for key, name in outputs.functions.items():
        function = read_function(clients.awslambda, clients.sqs, name)
        (state_dir / f"{key}.env").write_text(env_file_text(function))
    return outputs
