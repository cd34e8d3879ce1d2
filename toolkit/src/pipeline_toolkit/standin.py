"""The STAND-IN for the AWS Lambda Python base image, for machines that cannot pull ``public.ecr.aws``.

This project's CI reaches no container registry, so it cannot pull ``public.ecr.aws/lambda/python``. To build
and run the real function image anyway, it builds a stand-in: a Debian trixie root filesystem made with
``debootstrap`` (Python 3.13, as the functions' AWS base image), imported into the engine, plus the Lambda
Runtime Interface Client (``awslambdaric``, hash-pinned in ``images/standin/requirements.txt``) and an
entrypoint that runs it on the handler given as the command (``images/standin/Dockerfile``).

It is never the default: ``images/Dockerfile`` stays on the pinned AWS image, the stand-in is used only when
passed as ``BASE_IMAGE``, its tag names it (``s3-ingest-pipeline/lambda-standin``), every log line that uses
it says so, and ``make deploy`` refuses to push an image built on it to AWS.

Built once per content: the tag is a hash of the debootstrap inputs and of ``images/standin/``, so a second
build of the same inputs is an ``image inspect`` (``python -m pipeline_toolkit.standin`` prints the tag).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STANDIN_REPOSITORY = "s3-ingest-pipeline/lambda-standin"
ROOTFS_REPOSITORY = "s3-ingest-pipeline/standin-rootfs"
STANDIN_DIR = Path("images/standin")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def is_standin(image: str | None) -> bool:
    return bool(image) and str(image).startswith(STANDIN_REPOSITORY + ":")


class StandinError(RuntimeError):
    """A failed or impossible build, with a message for the person running it."""


@dataclass(frozen=True, slots=True)
class Inputs:
    """What decides the stand-in: the debootstrap inputs (pinned here) and ``images/standin/``."""

    suite: str = "trixie"  # Debian 13: Python 3.13, as the Lambda python3.13 runtime
    variant: str = "minbase"
    packages: tuple[str, ...] = ("python3.13", "python3-pip", "ca-certificates")
    mirror: str = DEFAULT_MIRROR
    python_version: str = "3.13"

    def rootfs_key(self, arch: str) -> str:
        """The debootstrap inputs alone: the root filesystem is made again only when they change."""
        digest = hashlib.sha256()
        for part in (self.suite, self.variant, ",".join(self.packages), self.mirror, arch):
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()[:16]

    def key(self, root: Path, arch: str) -> str:
        digest = hashlib.sha256(self.rootfs_key(arch).encode())
        for path in sorted((root / STANDIN_DIR).iterdir()):
            if path.is_file():
                digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()[:16]


def host_arch() -> str:
    """The host's Lambda architecture name: debootstrap makes a root filesystem of this one only."""
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def say(message: str) -> None:
    print(f"[stand-in base image] {message}", file=sys.stderr, flush=True)


def _run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    label: str = "stand-in base image",
    **options: object,
) -> None:
    print(f"[{label}] + {shlex.join(argv)}", file=sys.stderr, flush=True)
    result = subprocess.run(argv, env={**os.environ, **(env or {})}, check=False, **options)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise StandinError(f"`{shlex.join(argv[:3])} …` failed (exit {result.returncode})")


def build_cli(env: Mapping[str, str]) -> str:
    """The docker client that builds with BuildKit without buildx: ``DOCKER_BUILD_CLI`` (a client before
    23.0, such as Debian bookworm's /usr/bin/docker), else ``docker``."""
    return env.get("DOCKER_BUILD_CLI") or "docker"


def image_exists(ref: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def standin_ref(root: Path, inputs: Inputs = Inputs(), arch: str | None = None) -> str:
    arch = arch or host_arch()
    return f"{STANDIN_REPOSITORY}:py{inputs.python_version}-{arch}-{inputs.key(root, arch)}"


def build_rootfs(ref: str, inputs: Inputs) -> None:
    """debootstrap the root filesystem and import it into the engine as ``ref``."""
    if shutil.which("debootstrap") is None:
        raise StandinError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="standin-rootfs-") as directory:
        target = Path(directory) / "rootfs"
        started = time.monotonic()
        _run(
            [
                "debootstrap",
                f"--variant={inputs.variant}",
                f"--include={','.join(inputs.packages)}",
                inputs.suite,
                str(target),
                inputs.mirror,
            ],
            stdout=subprocess.DEVNULL,
        )
        # What an image needs none of, and what would make two builds of the same inputs differ for nothing.
        for path in ("var/cache/apt/archives", "var/lib/apt/lists", "var/log"):
            shutil.rmtree(target / path, ignore_errors=True)
        say(f"debootstrap {inputs.suite} took {time.monotonic() - started:.0f} s")
        tar = subprocess.Popen(
            ["tar", "-C", str(target), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
        )
        _run(["docker", "import", "-", ref], stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            raise StandinError("tar of the root filesystem failed")


def build(
    root: Path,
    *,
    inputs: Inputs = Inputs(),
    pip_ca: Path | None = None,
    network: str | None = "host",
) -> str:
    """The stand-in's tag, built when the engine does not have it yet."""
    arch = host_arch()
    ref = standin_ref(root, inputs, arch)
    if image_exists(ref):
        say(f"{ref} is built already")
        return ref
    rootfs = f"{ROOTFS_REPOSITORY}:{inputs.suite}-{arch}-{inputs.rootfs_key(arch)}"
    if not image_exists(rootfs):
        build_rootfs(rootfs, inputs)
    started = time.monotonic()
    buildkit_build(root, STANDIN_DIR / "Dockerfile", ref, {"ROOTFS": rootfs}, pip_ca=pip_ca, network=network)
    say(f"built {ref} in {time.monotonic() - started:.0f} s: a STAND-IN, not the AWS Lambda base image")
    return ref


def buildkit_build(
    root: Path,
    dockerfile: Path,
    ref: str,
    build_args: Mapping[str, str],
    *,
    pip_ca: Path | None,
    network: str | None,
) -> None:
    """``docker build`` with BuildKit through the engine (``DOCKER_BUILD_CLI``), the repository root as the
    context, the optional CA bundle as the ``pip-ca`` secret: the one build of the test-only images."""
    argv = [build_cli(os.environ), "build", "--file", str(dockerfile), "--tag", ref]
    for name, value in build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    if pip_ca is not None:
        argv += ["--secret", f"id=pip-ca,src={pip_ca}"]
    if network:
        argv += ["--network", network]
    _run([*argv, "."], env={"DOCKER_BUILDKIT": "1"}, label=f"build {ref}", cwd=root)


def default_pip_ca() -> Path | None:
    """The CA bundle pip on this machine trusts (``PIP_CERT``), for a build behind the same proxy."""
    value = os.environ.get("PIP_CA_BUNDLE") or os.environ.get("PIP_CERT")
    return Path(value) if value and Path(value).is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_toolkit.standin", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", type=Path, default=None, help="project checkout (default: found from here)")
    parser.add_argument(
        "--pip-ca", type=Path, default=default_pip_ca(), help="CA bundle for pip in the build"
    )
    parser.add_argument("--network", default="host", help="network of the build's RUN steps (default host)")
    parser.add_argument("--mirror", default=os.environ.get("DEBIAN_MIRROR") or DEFAULT_MIRROR)
    args = parser.parse_args(argv)
    from pipeline_toolkit.project import ProjectError, project_dir  # noqa: PLC0415 - the CLI's only

    try:
        root = args.root.resolve() if args.root else project_dir()
        print(
            build(root, inputs=Inputs(mirror=args.mirror), pip_ca=args.pip_ca, network=args.network or None)
        )
    except (StandinError, ProjectError) as error:
        say(str(error))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
