"""Deploy the stack to LocalStack (``docker-compose.yml``) for ``make e2e-localstack``, as AWS is deployed.

Against the target in the environment (``AWS_ENDPOINT_URL`` pointing at LocalStack), with the routines of
``make deploy`` (:mod:`pipeline_toolkit.deploy`), not a copy of them:

1. :func:`pipeline_toolkit.deploy.publish`: the ECR repositories applied alone when they do not exist yet,
   one build of the image, its content tag (``<arch>-<hash>``) pushed to every function's repository in
   LocalStack's registry unless already there, and each function's digest read back from ECR;
2. ``terraform apply`` of the whole stack with those digests (``image_digests``).
   ``managed_sqs_polling=true``: LocalStack polls the queues and runs the image itself (container-image
   Lambda is a paid LocalStack feature). ``false``: the mappings are created disabled and the local runtime
   polls, invoking the function containers of the generated compose file (below) over HTTP;
3. writes, in the state directory: ``outputs.json`` (for the e2e tests and ``pipeline status --outputs``),
   one ``<key>.env`` per function (its deployed environment), ``compose.functions.yml`` (one service per
   deployed function: the image, its handler as the command, its env file, a port on 127.0.0.1) and
   ``invoker-urls`` (``<function name>=<url>,...``, what ``pipeline local runtime --invoker-url`` and
   ``PIPELINE_E2E_INVOKER_URLS`` take).

Nothing here can run against LocalStack without Docker and a LocalStack auth token; the tests run the same
deploy against the embedded emulator with a stand-in docker CLI.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_toolkit import deploy as aws_deploy
from pipeline_toolkit.clients import DEFAULT_REGION, Clients
from pipeline_toolkit.deployment import FunctionConfig, read_function
from pipeline_toolkit.outputs import StackOutputs
from pipeline_toolkit.project import load_functions, project_dir
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, local_function_settings

Say = Callable[[str], None]

COMPOSE_FILE = "compose.functions.yml"
INVOKER_URLS_FILE = "invoker-urls"
#: The first function's port on 127.0.0.1; the next ones follow in the order of terraform/functions.json.
FIRST_PORT = 9001
RIE_PORT = 8080  # where the Runtime Interface Emulator of the AWS base image listens in the container
#: How the function containers reach LocalStack: inside the compose network, with path-style S3 addressing
#: (virtual-hosted bucket names would not resolve there), through an AWS config file compose mounts.
CONTAINER_ENDPOINT = "http://localstack:4566"
CONTAINER_AWS_CONFIG = "/etc/aws/config"
AWS_CONFIG_NAME = "aws-path-style"
AWS_CONFIG = "[default]\ns3 =\n    addressing_style = path\n"


def _quiet(_message: str) -> None:
    return


def host_architecture() -> str:
    """The Lambda architecture of this machine, so the function containers run without emulation."""
    return "arm64" if platform.machine().lower() in {"arm64", "aarch64"} else "x86_64"


def localstack_variables(*, managed_sqs_polling: bool, root: Path | None = None) -> dict[str, Any]:
    """LocalStack's root variables; the image variables come from the release (:func:`deploy`)."""
    return {
        **EMBEDDED_VARIABLES,
        "managed_sqs_polling": managed_sqs_polling,
        "function_settings": local_function_settings(root),
    }


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


@dataclass(frozen=True, slots=True)
class FunctionContainer:
    """One function as docker compose runs it with the Runtime Interface Emulator."""

    key: str
    name: str  # the deployed function name: what the local runtime's invoker URLs are keyed by
    handler: str
    env_file: Path
    port: int

    @property
    def invoker_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def function_containers(
    functions: Mapping[str, FunctionConfig], order: Sequence[str], state_dir: Path
) -> list[FunctionContainer]:
    """The deployed functions (by key), in the list's order, each on the next port from :data:`FIRST_PORT`."""
    keys = [key for key in order if key in functions] + sorted(set(functions) - set(order))
    return [
        FunctionContainer(
            key=key,
            name=functions[key].name,
            handler=functions[key].handler,
            env_file=(state_dir / f"{key}.env").resolve(),
            port=FIRST_PORT + index,
        )
        for index, key in enumerate(keys)
    ]


def compose_document(
    containers: Sequence[FunctionContainer], image: str, image_platform: str, region: str
) -> dict[str, Any]:
    """The compose override that runs every function: ``docker compose -f docker-compose.yml -f <it>``.

    Every service runs the one image; what differs is the command (the handler, as Terraform's
    ``image_config.command`` sets it in Lambda), the env file and the port."""
    environment = {
        "AWS_ENDPOINT_URL": CONTAINER_ENDPOINT,
        "AWS_CONFIG_FILE": CONTAINER_AWS_CONFIG,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    services = {
        container.key: {
            "image": image,
            "platform": image_platform,
            # The image is built and pushed by `pipeline local deploy`; compose must not try to pull it.
            "pull_policy": "never",
            "command": [container.handler],
            "depends_on": {"localstack": {"condition": "service_healthy"}},
            "environment": environment,
            "env_file": [{"path": str(container.env_file), "required": True}],
            "ports": [f"127.0.0.1:{container.port}:{RIE_PORT}"],
            "configs": [{"source": AWS_CONFIG_NAME, "target": CONTAINER_AWS_CONFIG}],
        }
        for container in containers
    }
    return {"services": services, "configs": {AWS_CONFIG_NAME: {"content": AWS_CONFIG}}}


def invoker_urls_text(containers: Sequence[FunctionContainer]) -> str:
    return ",".join(f"{container.name}={container.invoker_url}" for container in containers) + "\n"


def deploy(
    environment: Mapping[str, str],
    state_dir: Path,
    *,
    managed_sqs_polling: bool,
    push_images: bool = True,
    say: Say = _quiet,
    root: Path | None = None,
    arch: str | None = None,
) -> StackOutputs:
    """Apply the stack to the target in ``environment``; write outputs.json, the env files, the compose file.

    ``push_images=False`` builds and pushes nothing: the functions run the digests the target's ECR already
    holds for the current content. ``arch``: default ``LAMBDA_ARCH`` in ``environment``, else this machine's.
    """
    root = root or project_dir(environment)
    arch = arch or environment.get("LAMBDA_ARCH") or host_architecture()
    state_dir.mkdir(parents=True, exist_ok=True)
    region = environment.get("AWS_REGION") or environment.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    settings = aws_deploy.Settings.for_checkout(
        root,
        arch,
        region=region,
        auto_approve=True,
        extra_env=dict(environment),
        tf_data_dir=state_dir / "terraform-data",
        tf_state=state_dir / "terraform.tfstate",
    )
    variables = localstack_variables(managed_sqs_polling=managed_sqs_polling, root=root)
    tf = aws_deploy.terraform_init(settings)
    if push_images:
        aws_deploy.preflight(settings, docker=True, aws=False)
        release = aws_deploy.publish(settings, tf, variables)
    else:
        tag = aws_deploy.content_tag(settings)
        digests = aws_deploy.current_digests(settings, aws_deploy.repository_urls(tf), tag)
        release = aws_deploy.Release(arch, tag, digests)
    say(f"terraform apply (managed_sqs_polling={str(managed_sqs_polling).lower()}, image {release.tag})")
    tf.apply({**variables, **release.variables})
    raw_outputs = tf.outputs()
    (state_dir / "outputs.json").write_text(json.dumps(raw_outputs, indent=2))
    outputs = StackOutputs.from_terraform(raw_outputs)

    clients = Clients(environment)
    deployed: dict[str, FunctionConfig] = {}
    for key, name in outputs.functions.items():
        deployed[key] = read_function(clients.awslambda, clients.sqs, name)
        (state_dir / f"{key}.env").write_text(env_file_text(deployed[key]))
    containers = function_containers(deployed, list(load_functions(root)), state_dir)
    document = compose_document(containers, aws_deploy.local_image(release.tag), settings.platform, region)
    # JSON is YAML: docker compose reads it as is, and nothing beyond the standard library is needed.
    (state_dir / COMPOSE_FILE).write_text(json.dumps(document, indent=2) + "\n")
    (state_dir / INVOKER_URLS_FILE).write_text(invoker_urls_text(containers))
    say(f"function containers: docker compose -f docker-compose.yml -f {state_dir / COMPOSE_FILE} up -d")
    say("the local runtime invokes them with `pipeline local runtime` and:")
    for container in containers:
        say(f"  {container.key}: --invoker-url {container.name}={container.invoker_url}")
    return outputs
