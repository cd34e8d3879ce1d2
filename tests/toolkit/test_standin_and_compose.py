"""The stand-in base image and the compose target, as far as they can be checked without starting them
(their real builds and runs: tests/images/test_built_image.py, tests/toolkit/test_containers.py, and
``make e2e-compose``, which ``make test`` runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipeline_toolkit import compose, deploy, standin

ROOT = Path(__file__).resolve().parents[2]
MOTO = yaml.safe_load((ROOT / "docker-compose.moto.yml").read_text())


def test_the_stand_in_tag_names_it_and_changes_with_its_inputs() -> None:
    ref = standin.standin_ref(ROOT, standin.Inputs(), "x86_64")
    assert ref.startswith("s3-ingest-pipeline/lambda-standin:py3.13-x86_64-")
    assert standin.is_standin(ref)
    assert not standin.is_standin("public.ecr.aws/lambda/python:3.13.2025.12.15.13")
    assert not standin.is_standin(None)
    assert standin.standin_ref(ROOT, standin.Inputs(), "x86_64") == ref  # stable: built once
    assert standin.standin_ref(ROOT, standin.Inputs(suite="forky"), "x86_64") != ref
    assert standin.standin_ref(ROOT, standin.Inputs(), "arm64") != ref


def test_the_root_filesystem_is_made_again_only_when_the_debootstrap_inputs_change() -> None:
    inputs = standin.Inputs()
    assert inputs.rootfs_key("x86_64") == standin.Inputs().rootfs_key("x86_64")
    assert inputs.rootfs_key("x86_64") != standin.Inputs(packages=("python3.13",)).rootfs_key("x86_64")
    assert inputs.rootfs_key("x86_64") != standin.Inputs(mirror="http://example.invalid/debian").rootfs_key(
        "x86_64"
    )


def test_the_stand_in_is_pinned_to_the_functions_python_and_a_hashed_runtime_client() -> None:
    inputs = standin.Inputs()
    assert inputs.suite == "trixie"
    assert f"python{inputs.python_version}" in inputs.packages
    requirements = (ROOT / "images" / "standin" / "requirements.txt").read_text()
    assert re.search(r"^awslambdaric==\d+\.\d+\.\d+ \\$", requirements, flags=re.MULTILINE)
    pins = re.findall(r"^([a-z0-9-]+)==", requirements, flags=re.MULTILINE)
    assert requirements.count("--hash=sha256:") >= len(pins)
    assert "--python-version 3.13" in (ROOT / "images" / "Dockerfile").read_text()


def test_an_image_on_the_stand_in_is_never_deployed_to_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(deploy, "check_aws", lambda settings: ([], "123456789012"))
    settings = deploy.Settings.for_checkout(ROOT, "x86_64", base_image=standin.standin_ref(ROOT))
    with pytest.raises(deploy.DeployError, match="STAND-IN"):
        deploy.preflight(settings, docker=False, aws=True)
    # An emulator's registry (LocalStack) may take it: it is a test target.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    deploy.preflight(settings, docker=False, aws=True)


def test_a_build_on_another_base_gets_another_tag_and_passes_the_base_and_the_ca_as_a_secret() -> None:
    default = deploy.Settings.for_checkout(ROOT, "x86_64")
    other = deploy.Settings.for_checkout(
        ROOT, "x86_64", base_image="example/base:1", pip_ca=Path("/etc/ca.pem"), build_network="host"
    )
    assert deploy.content_tag(default) != deploy.content_tag(other)
    argv = deploy.build_command(other, "t", buildx=False).argv
    assert argv[argv.index("--build-arg") + 1] == "BASE_IMAGE=example/base:1"
    assert argv[argv.index("--secret") + 1] == "id=pip-ca,src=/etc/ca.pem"
    assert argv[argv.index("--network") + 1] == "host"
    assert "--build-arg" not in deploy.build_command(default, "t", buildx=False).argv


def test_without_buildx_the_build_client_can_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_BUILD_CLI", "/usr/bin/docker")
    argv = deploy.build_command(deploy.Settings.for_checkout(ROOT, "x86_64"), "t", buildx=False).argv
    assert argv[:2] == ["/usr/bin/docker", "build"]
    # buildx, when present, is the docker CLI's plugin: DOCKER_BUILD_CLI does not apply.
    assert deploy.build_command(deploy.Settings.for_checkout(ROOT, "x86_64"), "t").argv[:2] == [
        "docker",
        "buildx",
    ]


def test_the_compose_emulator_runs_on_the_host_network_bound_to_loopback_at_a_pinned_base() -> None:
    (name,) = MOTO["services"]
    service = MOTO["services"][name]
    assert service["network_mode"] == "host"
    assert "ports" not in service  # nothing published: the server binds 127.0.0.1 itself
    assert service["command"] == ["--port", "${MOTO_PORT:-4566}"]
    base = service["build"]["args"]["BASE_IMAGE"]
    assert re.fullmatch(r"\$\{EMULATOR_BASE_IMAGE:-motoserver/moto:\d+\.\d+\.\d+\}", base)
    dockerfile = (ROOT / service["build"]["dockerfile"]).read_text()
    assert "ARG BASE_IMAGE=motoserver/moto:5.2.5" in dockerfile
    assert '"--serve-forever"' in dockerfile


def test_the_emulator_image_pins_the_toolkits_moto() -> None:
    toolkit = (ROOT / "toolkit" / "pyproject.toml").read_text()
    (pin,) = re.findall(r'"moto\[server\]==([^"]+)"', toolkit)
    requirements = (ROOT / "images" / "emulator" / "requirements.txt").read_text()
    assert re.search(rf"^moto(\[server\])?=={re.escape(pin)} ", requirements, flags=re.MULTILINE)
    assert "motoserver/moto:" + pin in (ROOT / "images" / "emulator" / "Dockerfile").read_text()


def test_each_image_build_has_its_own_context_allow_list() -> None:
    """BuildKit reads <Dockerfile>.dockerignore instead of the root one: all out, then what it copies."""
    for dockerfile in ("images/standin/Dockerfile", "images/emulator/Dockerfile"):
        rules = [
            line
            for line in (ROOT / f"{dockerfile}.dockerignore").read_text().splitlines()
            if line and not line.startswith("#")
        ]
        assert rules[0] == "**"
        allowed = {rule.removeprefix("!") for rule in rules[1:]}
        text = (ROOT / dockerfile).read_text().replace("\\\n", " ")
        sources = {
            source
            for line in re.findall(r"^COPY (.+)$", text, flags=re.MULTILINE)
            for source in line.split()[:-1]
            if not source.startswith("--")
        }
        assert sources
        assert sources == allowed, dockerfile


def test_compose_prefers_the_docker_plugin_and_falls_back_to_the_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\nexit 1\n")  # `docker compose version` fails: no plugin
    fake.chmod(0o755)
    binary = tmp_path / "docker-compose"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    command = compose.compose_command(ROOT)
    assert command[0] == str(binary)
    assert command[-2:] == ["-f", str(ROOT / "docker-compose.moto.yml")]


def test_without_an_engine_e2e_compose_says_so_or_fails_when_containers_are_required(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(compose, "engine_available", lambda: "no Docker engine answers (test)")
    monkeypatch.delenv("PIPELINE_REQUIRE_CONTAINERS", raising=False)
    assert compose.main(["--skip-without-engine", "e2e"]) == 0
    assert "NOT RUN" in capsys.readouterr().err
    monkeypatch.setenv("PIPELINE_REQUIRE_CONTAINERS", "1")
    assert compose.main(["--skip-without-engine", "e2e"]) == 2
