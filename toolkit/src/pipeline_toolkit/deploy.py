"""Build the one Lambda image, push it to every function's ECR repository, apply Terraform with the digests.

``python -m pipeline_toolkit.deploy`` (``make images``, ``push``, ``plan``, ``deploy``; ``--help`` lists the
commands), and :mod:`pipeline_toolkit.localstack`, which deploys to LocalStack through the same routines.

* Every function runs the same image (``images/Dockerfile``); Terraform sets which handler each one runs
  (``image_config.command``, from ``terraform/functions.json``). The image is built once, tagged
  ``<arch>-<hash>``, the hash taken over the Dockerfile and every build-context file it copies (see
  :mod:`pipeline_toolkit.imagefiles`): unchanged content means the same tag.
* ``push`` pushes that tag to every function's repository that lacks it, and never re-pushes a tag ECR already
  has (a rebuild of unchanged content is not byte-identical, so re-pushing would move the digest); it resolves
  every function's digest from ECR.
* ``deploy`` passes those digests to Terraform (``image_digests``), so a changed image gives every function a
  new digest and updates it, and an unchanged one keeps the digests and leaves the functions alone. On the
  first deploy the ECR repositories are applied alone first, so there is somewhere to push to.
* Builds use ``docker buildx build --platform … --provenance=false --sbom=false --load``: Lambda rejects
  images pushed as a manifest list, which is what attestations turn a single image into. Without buildx,
  BuildKit through the engine (``DOCKER_BUILDKIT=1 docker build --platform …``), which adds no attestations.

Before it applies, ``deploy`` (and ``plan``, after its plan) compares what the plan would deploy with the
account's Lambda quotas, which AWS lowers for new accounts, and warns when the functions' concurrency or
memory would not fit (:mod:`pipeline_toolkit.quotas`).

Terraform runs through the toolkit's one wrapper, :class:`pipeline_toolkit.terraform.Terraform` (providers
from ``TF_PLUGIN_MIRROR`` when set). Refuses, with a message that says what to do, when Docker or AWS
credentials are missing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from pipeline_toolkit.imagefiles import ARCHITECTURES, dockerfile_path, image_tag
from pipeline_toolkit.project import ProjectError, load_functions, project_dir
from pipeline_toolkit.quotas import check_plan
from pipeline_toolkit.standin import build_cli, is_standin
from pipeline_toolkit.terraform import Terraform, TerraformError

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sts import STSClient

LOCAL_IMAGE = "s3-ingest-pipeline/lambda"  # the local image name: s3-ingest-pipeline/lambda:<tag>
STATE_DIR = Path("build") / "deploy"  # relative to the repository root; holds the last pushed digests
#: Terraform addresses that create the ECR repositories, applied alone on the first deploy (before any push).
ECR_TARGETS = ("module.ecr",)
# Media types Lambda accepts for an image; an index or manifest list (what attestations make) it rejects.
SINGLE_IMAGE_MEDIA_TYPES = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
}


class DeployError(RuntimeError):
    """A refusal or failure with a message meant for the person running make."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What a deploy runs against. ``extra_env`` is set on top of this process's environment for docker,
    boto3 and Terraform (an empty value removes a variable): LocalStack's endpoint, for instance."""

    root: Path
    arch: str
    functions: tuple[str, ...]
    tf_dir: Path = Path("terraform")  # relative to root (or absolute)
    profile: str | None = None
    region: str | None = None
    auto_approve: bool = False
    ecr_targets: tuple[str, ...] = ECR_TARGETS
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Terraform's working data and state; None: Terraform's defaults in the stack directory (and its backend).
    tf_data_dir: Path | None = None
    tf_state: Path | None = None
    # The build: another base than the Dockerfile's pinned AWS image (the stand-in, pipeline_toolkit.standin),
    # a CA bundle for pip behind a TLS-intercepting proxy (a BuildKit secret, never stored in a layer), and
    # the network of the build's RUN steps (``host`` where the engine has no bridge network).
    base_image: str | None = None
    pip_ca: Path | None = None
    build_network: str | None = None

    @classmethod
    def for_checkout(cls, root: Path, arch: str, **options: Any) -> Settings:
        """Settings for every function of the checkout's list (``terraform/functions.json``)."""
        return cls(root=root, arch=arch, functions=tuple(load_functions(root)), **options)

    @property
    def platform(self) -> str:
        return ARCHITECTURES[self.arch]

    def overrides(self) -> dict[str, str]:
        """The variables set on top of this process's environment: ``extra_env``, the profile and region."""
        env = dict(self.extra_env)
        if self.profile:
            env["AWS_PROFILE"] = self.profile
        if self.region:
            env["AWS_REGION"] = self.region
            env["AWS_DEFAULT_REGION"] = self.region
        return env

    def environment(self) -> dict[str, str]:
        """The environment for docker and boto3: the caller's, with :meth:`overrides` (empty removes)."""
        env = dict(os.environ)
        for name, value in self.overrides().items():
            if value:
                env[name] = value
            else:
                env.pop(name, None)
        return env


@dataclass(frozen=True, slots=True)
class Release:
    """One build of the image, in ECR: its content tag and the digest every function's repository holds."""

    arch: str
    tag: str
    digests: Mapping[str, str]

    @property
    def variables(self) -> dict[str, Any]:
        return release_variables(self.arch, self.tag, self.digests)


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
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    if echo:
        say("+ " + shlex.join([*(f"{name}={value}" for name, value in (env or {}).items()), *argv]))
    result = subprocess.run(
        list(argv),
        cwd=settings.root,
        env={**settings.environment(), **(env or {})},
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
    """Problems that stop a build or push; empty when the docker CLI and its engine answer."""
    if shutil.which("docker", path=settings.environment().get("PATH")) is None:
        return [
            "Docker is required to build and push the Lambda image, and the `docker` command is not on "
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
    return []


def has_buildx(settings: Settings) -> bool:
    return (
        run(["docker", "buildx", "version"], settings, capture=True, check=False, echo=False).returncode == 0
    )


def aws_session(settings: Settings) -> boto3.Session:
    """A session for the settings' profile, or else for the credentials in their environment."""
    env = settings.environment()
    region = settings.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    try:
        if settings.profile:
            # No explicit keys: with a named profile botocore reads neither those nor the environment's.
            return boto3.Session(profile_name=settings.profile, region_name=region)
        return boto3.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            region_name=region,
        )
    except ProfileNotFound:
        raise DeployError(
            f"AWS profile {settings.profile!r} is not configured. List profiles with "
            "`aws configure list-profiles` and pass one with AWS_PROFILE=<name>."
        ) from None


def endpoint_url(settings: Settings, service: str) -> str | None:
    """The endpoint the standard variables name for ``service`` (an emulator), or None for AWS itself."""
    env = settings.environment()
    return env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL") or None


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
        sts: STSClient = session.client("sts", endpoint_url=endpoint_url(settings, "sts"))
        identity = sts.get_caller_identity()
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
        if is_standin(settings.base_image) and endpoint_url(settings, "ecr") is None:
            problems.append(
                f"the base image {settings.base_image} is the STAND-IN for tests, not AWS's Lambda base "
                "image; unset BASE_IMAGE to deploy to AWS"
            )
    if problems:
        raise DeployError("\n".join(f"refusing to continue: {problem}" for problem in problems))


# --- the image ----------------------------------------------------------------------------------------


def content_tag(settings: Settings) -> str:
    return image_tag(settings.root, settings.arch, settings.base_image)


def local_image(tag: str) -> str:
    return f"{LOCAL_IMAGE}:{tag}"


@dataclass(frozen=True, slots=True)
class BuildCommand:
    argv: list[str]
    env: dict[str, str]  # set for this command only


def build_command(settings: Settings, tag: str, *, buildx: bool = True) -> BuildCommand:
    """The one build of the image: with buildx, else BuildKit through the engine (which adds no
    attestations, so it has no flags to turn them off)."""
    options: list[str] = []
    if settings.base_image:
        options += ["--build-arg", f"BASE_IMAGE={settings.base_image}"]
    if settings.pip_ca:
        options += ["--secret", f"id=pip-ca,src={settings.pip_ca}"]
    if settings.build_network:
        options += ["--network", settings.build_network]
    common = [
        *options,
        "--platform",
        settings.platform,
        "--file",
        str(dockerfile_path(settings.root).relative_to(settings.root)),
        "--tag",
        local_image(tag),
        ".",  # the repository root is the build context
    ]
    if buildx:
        return BuildCommand(
            ["docker", "buildx", "build", "--provenance=false", "--sbom=false", "--load", *common], {}
        )
    return BuildCommand([build_cli(settings.environment()), "build", *common], {"DOCKER_BUILDKIT": "1"})


def build_image(settings: Settings, tag: str | None = None) -> str:
    """Build the image for the settings' architecture; its content tag."""
    tag = tag or content_tag(settings)
    buildx = has_buildx(settings)
    if not buildx:
        say(
            "docker buildx is not available (`docker buildx version` failed): building with BuildKit through "
            "the engine instead (DOCKER_BUILDKIT=1 docker build)"
        )
    base = settings.base_image or "the Dockerfile's AWS base image"
    if is_standin(settings.base_image):
        base += " (a STAND-IN for the AWS base image, for tests only: never deploy it)"
    say(f"building the function image for {settings.platform} as {local_image(tag)} on {base}")
    command = build_command(settings, tag, buildx=buildx)
    try:
        run(command.argv, settings, env=command.env)
    except DeployError as exc:
        if buildx:
            raise
        # Docker CLI 23 and later refuse DOCKER_BUILDKIT=1 without buildx; older ones have BuildKit built in.
        raise DeployError(
            f"{exc}. Without buildx the build needs a docker CLI with BuildKit built in (before 23.0): "
            "install the docker-buildx plugin, or set DOCKER_BUILD_CLI to such a client (Debian bookworm's "
            "docker.io installs one as /usr/bin/docker), and run make again."
        ) from None
    return tag


# --- terraform ----------------------------------------------------------------------------------------


def terraform(settings: Settings) -> Terraform:
    """The stack's Terraform, in the settings' environment, its output streamed to this terminal."""
    try:
        return Terraform(
            settings.root / settings.tf_dir,
            data_dir=settings.tf_data_dir,
            state=settings.tf_state,
            env=settings.overrides(),
            echo=True,
        )
    except FileNotFoundError:
        raise DeployError(
            "refusing to continue: `terraform` is not on PATH; install Terraform >= 1.9."
        ) from None


def terraform_init(settings: Settings) -> Terraform:
    tf = terraform(settings)
    try:
        tf.init()
    except FileNotFoundError as exc:  # TF_PLUGIN_MIRROR names no directory
        raise DeployError(f"refusing to continue: {exc}") from None
    return tf


def repository_urls(tf: Terraform) -> dict[str, str]:
    """Terraform's ``repository_urls`` output (function -> ECR URL); empty before the first apply."""
    value = tf.outputs().get("repository_urls") or {}
    return {str(key): str(url) for key, url in value.items()} if isinstance(value, dict) else {}


def release_variables(arch: str, tag: str, digests: Mapping[str, str]) -> dict[str, Any]:
    """The root variables a deploy sets: the architecture, the image's content tag, each function's digest."""
    return {
        "lambda_architecture": arch,
        "image_tag": tag,
        "image_digests": dict(sorted(digests.items())),
    }


def ensure_repositories(
    settings: Settings, tf: Terraform, variables: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The ECR repository URLs, creating the repositories first (targeted apply) when they do not exist.

    ``variables``: the root variables of the whole apply (the targeted one must accept the same)."""
    urls = repository_urls(tf)
    missing = [function for function in settings.functions if function not in urls]
    if not missing:
        return urls
    if not settings.ecr_targets:
        raise DeployError(
            f"no ECR repository yet for {', '.join(missing)} and no ECR_TARGETS to create them with."
        )
    say(f"first deploy: creating the ECR repositories ({', '.join(settings.ecr_targets)}) before any push")
    tf.apply(
        {**(variables or {}), **release_variables(settings.arch, content_tag(settings), {})},
        targets=settings.ecr_targets,
        auto_approve=settings.auto_approve,
    )
    urls = repository_urls(tf)
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
    client: ECRClient = aws_session(settings).client("ecr", endpoint_url=endpoint_url(settings, "ecr"))
    return client


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


def push_images(settings: Settings, urls: Mapping[str, str], tag: str) -> dict[str, str]:
    """Push the image under ``tag`` to every function's repository that lacks it; every function's digest,
    read back from ECR. The one push routine of both AWS and LocalStack deploys."""
    ecr = ecr_client(settings)
    digests: dict[str, str] = {}
    to_push: list[str] = []
    for function in settings.functions:
        digest = pushed_digest(ecr, split_repository_url(urls[function])[1], tag)
        if digest is None:
            to_push.append(function)
        else:
            say(f"{function}: {tag} is already in ECR ({digest}); not pushing")
            digests[function] = digest
    if not to_push:
        return digests
    image = local_image(tag)
    if run(["docker", "image", "inspect", image], settings, capture=True, check=False, echo=False).returncode:
        raise DeployError(f"no local image {image} for the current content: run `make images`.")
    docker_login(settings, ecr, {split_repository_url(urls[function])[0] for function in to_push})
    for function in to_push:
        remote = f"{urls[function]}:{tag}"
        run(["docker", "tag", image, remote], settings)
        run(["docker", "push", remote], settings)
        digest = pushed_digest(ecr, split_repository_url(urls[function])[1], tag)
        if digest is None:
            raise DeployError(f"pushed {remote} but ECR does not list it")
        say(f"{function}: pushed {remote} ({digest})")
        digests[function] = digest
    return digests


def current_digests(settings: Settings, urls: Mapping[str, str], tag: str) -> dict[str, str]:
    """Digests ECR already holds for the current content (no build, no push); for ``plan``."""
    ecr = ecr_client(settings)
    digests: dict[str, str] = {}
    for function in settings.functions:
        if function not in urls:
            continue
        digest = pushed_digest(ecr, split_repository_url(urls[function])[1], tag)
        if digest is None:
            say(f"note: {function} has no {tag} in ECR yet; `make deploy` would push it")
        else:
            digests[function] = digest
    return digests


def publish(settings: Settings, tf: Terraform, variables: Mapping[str, Any] | None = None) -> Release:
    """The deploy path up to the final apply, for AWS and LocalStack alike: the repositories (created when
    missing), one build, the push to every repository, the digests. ``variables``: the target's own root
    variables, for the targeted apply."""
    tag = content_tag(settings)
    urls = ensure_repositories(settings, tf, variables)
    build_image(settings, tag)
    return Release(settings.arch, tag, push_images(settings, urls, tag))


def record_digests(settings: Settings, release: Release) -> Path:
    path = settings.root / STATE_DIR / f"{settings.arch}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(release.variables, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# --- commands -----------------------------------------------------------------------------------------


def cmd_check(settings: Settings, args: argparse.Namespace) -> None:
    preflight(settings, docker=args.docker, aws=args.aws)
    say("ok")


def cmd_tags(settings: Settings, _: argparse.Namespace) -> None:
    print(content_tag(settings))


def cmd_images(settings: Settings, _: argparse.Namespace) -> None:
    preflight(settings, docker=True, aws=False)
    build_image(settings)


def cmd_push(settings: Settings, _: argparse.Namespace) -> None:
    preflight(settings, docker=True, aws=True)
    tag = content_tag(settings)
    urls = repository_urls(terraform_init(settings))
    missing = [function for function in settings.functions if function not in urls]
    if missing:
        raise DeployError(
            f"no ECR repository yet for {', '.join(missing)}: run `make deploy`, which creates them first."
        )
    release = Release(settings.arch, tag, push_images(settings, urls, tag))
    say(f"digests recorded in {record_digests(settings, release).relative_to(settings.root)}")


# --- quotas -------------------------------------------------------------------------------------------


def lambda_client(settings: Settings) -> LambdaClient:
    client: LambdaClient = aws_session(settings).client(
        "lambda", endpoint_url=endpoint_url(settings, "lambda")
    )
    return client


def warn_about_quotas(settings: Settings, tf: Terraform, plan: Path) -> list[str]:
    """Say what of the saved ``plan`` would not fit the account's Lambda quotas; the warnings said."""
    warnings = check_plan(
        tf.show_json(plan), lambda_client(settings), aws_session(settings).region_name or ""
    )
    for warning in warnings:
        say(f"warning: {warning}")
    if not warnings:
        say("the account's Lambda quotas hold the planned functions' concurrency and memory")
    return warnings


def check_quotas_before_apply(settings: Settings, tf: Terraform, variables: Mapping[str, Any]) -> list[str]:
    """A quiet plan of ``variables`` (no refresh: only the sizing matters), checked against the quotas."""
    quiet = Terraform(tf.workdir, data_dir=tf.data_dir, state=tf.state, env=tf.env, binary=tf.binary)
    with tempfile.TemporaryDirectory(prefix="pipeline-plan-") as scratch:
        plan = Path(scratch) / "quotas.tfplan"
        quiet.plan(variables, refresh=False, out=plan)
        return warn_about_quotas(settings, quiet, plan)


def cmd_plan(settings: Settings, _: argparse.Namespace) -> None:
    preflight(settings, docker=False, aws=True)
    tag = content_tag(settings)
    tf = terraform_init(settings)
    urls = repository_urls(tf)
    if not urls:
        say("note: no ECR repositories yet; `make deploy` creates them first, then builds and pushes")
    with tempfile.TemporaryDirectory(prefix="pipeline-plan-") as scratch:
        plan = Path(scratch) / "review.tfplan"
        changes = tf.plan(
            release_variables(settings.arch, tag, current_digests(settings, urls, tag)), out=plan
        )
        warn_about_quotas(settings, tf, plan)
    say("the plan above would change the stack" if changes else "no changes: the stack is up to date")


def cmd_deploy(settings: Settings, _: argparse.Namespace) -> None:
    preflight(settings, docker=True, aws=True)
    tf = terraform_init(settings)
    # Before anything is created: a new account's quotas are the likeliest surprise of a first deploy.
    check_quotas_before_apply(settings, tf, release_variables(settings.arch, content_tag(settings), {}))
    release = publish(settings, tf)
    record_digests(settings, release)
    tf.apply(release.variables, auto_approve=settings.auto_approve)
    say(
        "deployed: "
        + ", ".join(f"{function}@{digest}" for function, digest in sorted(release.digests.items()))
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline_toolkit.deploy", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--arch", default=os.environ.get("LAMBDA_ARCH", "x86_64"), choices=sorted(ARCHITECTURES))
    p.add_argument(
        "--root", type=Path, default=None, help="project checkout (default: found from the working directory)"
    )
    p.add_argument("--tf-dir", default="terraform", help="Terraform root, relative to the project checkout")
    p.add_argument("--profile", default=os.environ.get("AWS_PROFILE") or None, help="named AWS profile")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument(
        "--auto-approve", action="store_true", help="apply without Terraform's confirmation prompt"
    )
    p.add_argument(
        "--ecr-target",
        action="append",
        default=[],
        help=f"Terraform address creating the ECR repos (repeatable; default {' '.join(ECR_TARGETS)})",
    )
    p.add_argument(
        "--base-image",
        default=os.environ.get("BASE_IMAGE") or None,
        help="build on this base instead of the Dockerfile's pinned AWS image (e.g. the stand-in)",
    )
    p.add_argument(
        "--pip-ca",
        type=Path,
        default=os.environ.get("PIP_CA_BUNDLE") or None,
        help="CA bundle for pip inside the build (a BuildKit secret), for TLS-intercepting proxies",
    )
    p.add_argument(
        "--build-network",
        default=os.environ.get("BUILD_NETWORK") or None,
        help="network of the build's RUN steps (host where the engine runs without a bridge)",
    )
    commands = p.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check Docker and/or AWS credentials")
    check.add_argument("--docker", action="store_true")
    check.add_argument("--aws", action="store_true")
    check.set_defaults(handler=cmd_check)
    for name, handler, text in [
        ("tags", cmd_tags, "print the image's content tag"),
        ("images", cmd_images, "build the image"),
        ("push", cmd_push, "push the image to every repository that lacks it, record every digest"),
        ("plan", cmd_plan, "terraform plan with the digests of the current image"),
        ("deploy", cmd_deploy, "create repositories if needed, build, push, terraform apply"),
    ]:
        commands.add_parser(name, help=text).set_defaults(handler=handler)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        root = args.root.resolve() if args.root else project_dir()
        settings = Settings.for_checkout(
            root,
            args.arch,
            tf_dir=Path(args.tf_dir),
            profile=args.profile,
            region=args.region,
            auto_approve=args.auto_approve,
            ecr_targets=tuple(args.ecr_target) or ECR_TARGETS,
            base_image=args.base_image,
            pip_ca=args.pip_ca,
            build_network=args.build_network,
        )
        args.handler(settings, args)
    except (DeployError, ProjectError, TerraformError) as exc:
        say(str(exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
