#!/usr/bin/env python3
"""Build the Lambda images, push them to ECR, and apply Terraform with the pushed digests.

Used by ``mk/images.mk`` (``make images``, ``push``, ``plan``, ``deploy``); ``--help`` lists the commands.

* Each image is tagged ``<arch>-<hash>``, the hash taken over its Dockerfile and every build-context file it
  copies (see ``imagefiles.py``): unchanged content means the same tag.
* ``push`` never re-pushes a tag ECR already has (a rebuild of unchanged content is not byte-identical, so
  re-pushing would move the digest); it resolves every function's digest from ECR.
* ``deploy`` passes those digests to Terraform (``image_digests``), so a function whose image content
  changed always gets a new digest and is updated, and one whose content did not keeps its digest and is
  left alone.
* Builds use the docker CLI with buildx (``--platform``, ``--provenance=false``, ``--sbom=false``): Lambda
  rejects images pushed as a manifest list, which is what attestations turn a single image into.

Refuses, with a message that says what to do, when Docker or AWS credentials are missing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from pipeline_toolkit.imagefiles import ARCHITECTURES, FUNCTIONS, dockerfile_path, image_tag

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

ROOT = Path(__file__).resolve().parent.parent
LOCAL_REPOSITORY = "s3-ingest-pipeline"  # local image names: s3-ingest-pipeline/<function>:<tag>
STATE_DIR = Path("build") / "deploy"  # relative to the repository root; holds the last pushed digests
# Media types Lambda accepts for an image; an index or manifest list (what attestations make) it rejects.
SINGLE_IMAGE_MEDIA_TYPES = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
}


class DeployError(RuntimeError):
    """A refusal or failure with a message meant for the person running make."""


@dataclass(frozen=True, slots=True)
class Settings:
    root: Path
    arch: str
    functions: tuple[str, ...]
    tf_dir: Path
    tf_init_flags: tuple[str, ...] = ()
    profile: str | None = None
    region: str | None = None
    auto_approve: bool = False
    ecr_targets: tuple[str, ...] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def platform(self) -> str:
        return ARCHITECTURES[self.arch]

    def environment(self) -> dict[str, str]:
        """The environment for terraform and docker: the caller's, with the chosen profile and region."""
        env = dict(os.environ)
        env.update(self.extra_env)
        if self.profile:
            env["AWS_PROFILE"] = self.profile
        if self.region:
            env["AWS_REGION"] = self.region
            env["AWS_DEFAULT_REGION"] = self.region
        return env


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    argv: Sequence[str],
    settings: Settings,
    *,
    capture: bool = False,
    stdin: str | None = None,
    check: bool = True,
    echo: bool = True,
) -> subprocess.CompletedProcess[str]:
    if echo:
        say("+ " + shlex.join(argv))
    result = subprocess.run(
        list(argv),
        cwd=settings.root,
        env=settings.environment(),
        input=stdin,
        text=True,
        capture_output=capture,
        check=False,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise DeployError(
            f"`{shlex.join(argv[:3])} …` failed (exit {result.returncode}) {' '.join(detail)}".strip()
        )
    return result


# --- preflight ----------------------------------------------------------------------------------------


def check_docker(settings: Settings) -> list[str]:
    """Problems that stop a build or push; empty when the docker CLI, its engine and buildx all answer."""
    if shutil.which("docker", path=settings.environment().get("PATH")) is None:
        return [
            "Docker is required to build and push the Lambda images, and the `docker` command is not on "
            "PATH. Install Docker Engine (or Docker Desktop) with the buildx plugin, then run make again."
        ]
    info = run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], settings, capture=True, check=False, echo=False
    )
    if info.returncode != 0:
        reason = " ".join((info.stderr or info.stdout).strip().splitlines()[-1:]) or f"exit {info.returncode}"
        return [
            f"The docker CLI is installed but no Docker engine answers (`docker info`: {reason}). "
            "Start Docker, or point DOCKER_HOST at a running engine, then run make again."
        ]
    buildx = run(["docker", "buildx", "version"], settings, capture=True, check=False, echo=False)
    if buildx.returncode != 0:
        return [
            "The docker buildx plugin is missing (`docker buildx version` failed). It is needed to build for "
            "the functions' platform with attestations off; install the docker-buildx plugin."
        ]
    return []


def aws_session(settings: Settings) -> boto3.Session:
    try:
        return boto3.Session(profile_name=settings.profile or None, region_name=settings.region or None)
    except ProfileNotFound:
        raise DeployError(
            f"AWS profile {settings.profile!r} is not configured. List profiles with "
            "`aws configure list-profiles` and pass one with AWS_PROFILE=<name>."
        ) from None


def check_aws(settings: Settings) -> tuple[list[str], str | None]:
    """Problems with the AWS credentials (empty when STS accepts them) and the account id they belong to."""
    try:
        session = aws_session(settings)
    except DeployError as exc:
        return [str(exc)], None
    profile_hint = f"profile {settings.profile!r}" if settings.profile else "the default credential chain"
    if not session.region_name:
        return ["No AWS region is set: pass AWS_REGION=<region> (for example AWS_REGION=eu-west-1)."], None
    if session.get_credentials() is None:
        return [
            f"No AWS credentials found ({profile_hint}): pass AWS_PROFILE=<profile> with a configured "
            "profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run `aws sso login`)."
        ], None
    try:
        identity = session.client("sts").get_caller_identity()
    except NoCredentialsError:
        return [f"No AWS credentials found ({profile_hint}): pass AWS_PROFILE=<profile>."], None
    except (ClientError, BotoCoreError) as exc:
        return [
            f"AWS rejected or could not check the credentials from {profile_hint} "
            f"(sts get-caller-identity: {exc}). Refresh them (e.g. `aws sso login`) and run make again."
        ], None
    say(f"AWS account {identity['Account']} as {identity['Arn']} in {session.region_name}")
    return [], identity["Account"]


def preflight(settings: Settings, *, docker: bool, aws: bool) -> None:
    problems: list[str] = []
    if docker:
        problems += check_docker(settings)
    if aws:
        problems += check_aws(settings)[0]
    if problems:
        raise DeployError("\n".join(f"refusing to continue: {problem}" for problem in problems))


# --- images -------------------------------------------------------------------------------------------


def tags(settings: Settings) -> dict[str, str]:
    return {function: image_tag(settings.root, function, settings.arch) for function in settings.functions}


def release_tag(function_tags: Mapping[str, str]) -> str:
    """One id for the whole set of images (Terraform's ``image_tag``), derived from the per-function tags."""
    joined = "\n".join(f"{name}={tag}" for name, tag in sorted(function_tags.items()))
    return "release-" + hashlib.sha256(joined.encode()).hexdigest()[:24]


def local_image(function: str, tag: str) -> str:
    return f"{LOCAL_REPOSITORY}/{function}:{tag}"


def build_command(settings: Settings, function: str, tag: str) -> list[str]:
    return [
        "docker",
        "buildx",
        "build",
        "--platform",
        settings.platform,
        "--provenance=false",
        "--sbom=false",
        "--load",
        "--file",
        str(dockerfile_path(settings.root, function).relative_to(settings.root)),
        "--tag",
        local_image(function, tag),
        ".",
    ]


def build_images(settings: Settings) -> dict[str, str]:
    function_tags = tags(settings)
    for function, tag in function_tags.items():
        say(f"building {function} for {settings.platform} as {local_image(function, tag)}")
        run(build_command(settings, function, tag), settings)
    return function_tags


# --- terraform ----------------------------------------------------------------------------------------


def terraform(settings: Settings, *args: str, capture: bool = False, check: bool = True) -> str:
    argv = ["terraform", f"-chdir={settings.tf_dir}", *args]
    return run(argv, settings, capture=capture, check=check).stdout or ""


def terraform_init(settings: Settings) -> None:
    if shutil.which("terraform", path=settings.environment().get("PATH")) is None:
        raise DeployError("refusing to continue: `terraform` is not on PATH; install Terraform >= 1.9.")
    terraform(settings, "init", *settings.tf_init_flags, capture=True)


def repository_urls(settings: Settings) -> dict[str, str]:
    """Terraform's ``repository_urls`` output (function -> ECR URL); empty before the first apply."""
    argv = ["terraform", f"-chdir={settings.tf_dir}", "output", "-json", "repository_urls"]
    result = run(argv, settings, capture=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return {}
    value = json.loads(result.stdout)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def terraform_vars(
    settings: Settings, function_tags: Mapping[str, str], digests: Mapping[str, str]
) -> list[str]:
    return [
        f"-var=lambda_architecture={settings.arch}",
        f"-var=image_tag={release_tag(function_tags)}",
        f"-var=image_digests={json.dumps(dict(sorted(digests.items())), separators=(',', ':'))}",
    ]


def approve_flags(settings: Settings) -> list[str]:
    return ["-auto-approve"] if settings.auto_approve else []


def ensure_repositories(settings: Settings, function_tags: Mapping[str, str]) -> dict[str, str]:
    """The ECR repository URLs, creating the repositories first (targeted apply) when they do not exist."""
    urls = repository_urls(settings)
    missing = [function for function in settings.functions if function not in urls]
    if not missing:
        return urls
    if not settings.ecr_targets:
        raise DeployError(
            f"no ECR repository yet for {', '.join(missing)} and no ECR_TARGETS to create them with."
        )
    say(f"first deploy: creating the ECR repositories ({', '.join(settings.ecr_targets)}) before any push")
    targets = [f"-target={target}" for target in settings.ecr_targets]
    terraform(settings, "apply", "-input=false", *approve_flags(settings), *targets,
              *terraform_vars(settings, function_tags, {}))  # fmt: skip
    urls = repository_urls(settings)
    still = [function for function in settings.functions if function not in urls]
    if still:
        raise DeployError(
            f"Terraform output repository_urls has no entry for {', '.join(still)} after the apply."
        )
    return urls


# --- ECR ----------------------------------------------------------------------------------------------


def split_repository_url(url: str) -> tuple[str, str]:
    """``123.dkr.ecr.eu-west-1.amazonaws.com/name`` -> (registry host, repository name)."""
    registry, _, name = url.partition("/")
    if not name:
        raise DeployError(f"not an ECR repository URL: {url!r}")
    return registry, name


def ecr_client(settings: Settings) -> ECRClient:
    return aws_session(settings).client("ecr")


def pushed_digest(ecr: ECRClient, repository: str, tag: str) -> str | None:
    """The digest ECR holds for ``tag``, or None; refuses an image Lambda would reject."""
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ecr.exceptions.ImageNotFoundException:
        return None
    if not found:
        return None
    detail = found[0]
    media_type = detail.get("imageManifestMediaType")
    if media_type is not None and media_type not in SINGLE_IMAGE_MEDIA_TYPES:
        raise DeployError(
            f"{repository}:{tag} is a {media_type}, which Lambda rejects (an image index, usually from "
            "provenance or SBOM attestations). Delete that tag and rebuild with `make images`."
        )
    return detail["imageDigest"]


def docker_login(settings: Settings, ecr: ECRClient, registries: set[str]) -> None:
    auth = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    for registry in sorted(registries):
        run(["docker", "login", "--username", user, "--password-stdin", registry], settings, stdin=password,
            capture=True)  # fmt: skip


def push_images(
    settings: Settings, urls: Mapping[str, str], function_tags: Mapping[str, str]
) -> dict[str, str]:
    """Push what ECR lacks; the digest of every function's current image, from ECR."""
    ecr = ecr_client(settings)
    digests: dict[str, str] = {}
    to_push: list[str] = []
    for function in settings.functions:
        _, repository = split_repository_url(urls[function])
        digest = pushed_digest(ecr, repository, function_tags[function])
        if digest is None:
            to_push.append(function)
        else:
            say(f"{function}: {function_tags[function]} is already in ECR ({digest}); not pushing")
            digests[function] = digest
    if to_push:
        for function in to_push:
            image = local_image(function, function_tags[function])
            if run(
                ["docker", "image", "inspect", image], settings, capture=True, check=False, echo=False
            ).returncode:
                raise DeployError(
                    f"no local image {image} for the current content of {function}: run `make images`."
                )
        docker_login(settings, ecr, {split_repository_url(urls[function])[0] for function in to_push})
    for function in to_push:
        remote = f"{urls[function]}:{function_tags[function]}"
        run(["docker", "tag", local_image(function, function_tags[function]), remote], settings)
        run(["docker", "push", remote], settings)
        digest = pushed_digest(ecr, split_repository_url(urls[function])[1], function_tags[function])
        if digest is None:
            raise DeployError(f"pushed {remote} but ECR does not list it")
        say(f"{function}: pushed {remote} ({digest})")
        digests[function] = digest
    return digests


def current_digests(
    settings: Settings, urls: Mapping[str, str], function_tags: Mapping[str, str]
) -> dict[str, str]:
    """Digests ECR already holds for the current content (no build, no push); for ``plan``."""
    ecr = ecr_client(settings)
    digests: dict[str, str] = {}
    for function in settings.functions:
        if function not in urls:
            continue
        digest = pushed_digest(ecr, split_repository_url(urls[function])[1], function_tags[function])
        if digest is None:
            say(f"note: {function} at {function_tags[function]} is not in ECR; `make deploy` would push it")
        else:
            digests[function] = digest
    return digests


def record_digests(settings: Settings, function_tags: Mapping[str, str], digests: Mapping[str, str]) -> Path:
    path = settings.root / STATE_DIR / f"{settings.arch}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "lambda_architecture": settings.arch,
        "image_tag": release_tag(function_tags),
        "image_tags": dict(function_tags),
        "image_digests": dict(digests),
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# --- commands -----------------------------------------------------------------------------------------


def cmd_check(settings: Settings, args: argparse.Namespace) -> None:
    preflight(settings, docker=args.docker, aws=args.aws)
    say("ok")


def cmd_tags(settings: Settings, _: argparse.Namespace) -> None:
    for function, tag in tags(settings).items():
        print(f"{function}\t{tag}")


def cmd_images(settings: Settings, _: argparse.Namespace) -> None:
    preflight(settings, docker=True, aws=False)
    build_images(settings)


def cmd_push(settings: Settings, _: argparse.Namespace) -> None:
    preflight(settings, docker=True, aws=True)
    function_tags = tags(settings)
    terraform_init(settings)
    urls = repository_urls(settings)
    missing = [function for function in settings.functions if function not in urls]
    if missing:
        raise DeployError(
            f"no ECR repository yet for {', '.join(missing)}: run `make deploy`, which creates them first."
        )
    digests = push_images(settings, urls, function_tags)
    say(f"digests recorded in {record_digests(settings, function_tags, digests).relative_to(settings.root)}")


def cmd_plan(settings: Settings, _: argparse.Namespace) -> None:
    preflight(settings, docker=False, aws=True)
    function_tags = tags(settings)
    terraform_init(settings)
    urls = repository_urls(settings)
    if not urls:
        say("note: no ECR repositories yet; `make deploy` creates them first, then builds and pushes")
    digests = current_digests(settings, urls, function_tags)
    terraform(settings, "plan", "-input=false", *terraform_vars(settings, function_tags, digests))


def cmd_deploy(settings: Settings, _: argparse.Namespace) -> None:
    preflight(settings, docker=True, aws=True)
    terraform_init(settings)
    function_tags = tags(settings)
    urls = ensure_repositories(settings, function_tags)
    build_images(settings)
    digests = push_images(settings, urls, function_tags)
    record_digests(settings, function_tags, digests)
    terraform(settings, "apply", "-input=false", *approve_flags(settings),
              *terraform_vars(settings, function_tags, digests))  # fmt: skip
    say("deployed: " + ", ".join(f"{function}@{digest}" for function, digest in sorted(digests.items())))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deploy.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default=os.environ.get("LAMBDA_ARCH", "x86_64"), choices=sorted(ARCHITECTURES))
    p.add_argument(
        "--function", action="append", choices=FUNCTIONS, help="limit to one function (repeatable)"
    )
    p.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    p.add_argument("--tf-dir", default="terraform", help="Terraform root, relative to the repository root")
    p.add_argument(
        "--tf-init-flags", default="", help="extra `terraform init` flags (the Makefile's TF_INIT_FLAGS)"
    )
    p.add_argument("--profile", default=os.environ.get("AWS_PROFILE") or None, help="named AWS profile")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument(
        "--auto-approve", action="store_true", help="apply without Terraform's confirmation prompt"
    )
    p.add_argument(
        "--ecr-target", action="append", default=[], help="Terraform address creating the ECR repos"
    )
    commands = p.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check Docker and/or AWS credentials")
    check.add_argument("--docker", action="store_true")
    check.add_argument("--aws", action="store_true")
    check.set_defaults(handler=cmd_check)
    for name, handler, text in [
        ("tags", cmd_tags, "print each function's content tag"),
        ("images", cmd_images, "build the images"),
        ("push", cmd_push, "push the images ECR lacks, record every digest"),
        ("plan", cmd_plan, "terraform plan with the digests of the current images"),
        ("deploy", cmd_deploy, "create repositories if needed, build, push, terraform apply"),
    ]:
        commands.add_parser(name, help=text).set_defaults(handler=handler)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings(
        root=args.root.resolve(),
        arch=args.arch,
        functions=tuple(args.function or FUNCTIONS),
        tf_dir=Path(args.tf_dir),
        tf_init_flags=tuple(shlex.split(args.tf_init_flags)),
        profile=args.profile,
        region=args.region,
        auto_approve=args.auto_approve,
        ecr_targets=tuple(args.ecr_target),
    )
    try:
        args.handler(settings, args)
    except DeployError as exc:
        say(str(exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
