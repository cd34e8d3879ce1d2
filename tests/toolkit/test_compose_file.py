"""docker-compose.yml cannot run here (no Docker engine): its structure is checked instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
FUNCTIONS = ("datalake-loader", "database-loader")


def test_every_image_is_pinned() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image!r} has no tag"
        assert tag not in {"latest", "stable", ""}, f"{name}: image {image!r} is not pinned"


def test_localstack_is_a_dated_release() -> None:
    image = SERVICES["localstack"]["image"]
    assert re.fullmatch(r"localstack/localstack(-pro)?:\d{4}\.\d{2}\.\d+", image)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_ports_are_bound_to_loopback_only(name: str) -> None:
    for port in SERVICES[name].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is reachable from other hosts"


def test_localstack_requires_its_auth_token() -> None:
    environment = SERVICES["localstack"]["environment"]
    # ${VAR:?message}: compose refuses to start without it, with the message, instead of a failing container.
    assert environment["LOCALSTACK_AUTH_TOKEN"].startswith("${LOCALSTACK_AUTH_TOKEN:?")
    services = set(environment["SERVICES"].split(","))
    assert {"s3", "sns", "sqs", "lambda", "dynamodb", "ecr", "iam"} <= services
    assert "healthcheck" in SERVICES["localstack"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_containers_are_built_from_their_dockerfiles(name: str) -> None:
    service = SERVICES[name]
    assert service["build"]["dockerfile"] == f"images/{name}/Dockerfile"
    assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service["profiles"] == ["functions"]
    assert service["depends_on"]["localstack"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_containers_reach_localstack_with_the_standard_variables(name: str) -> None:
    environment = SERVICES[name]["environment"]
    assert environment["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert variable in environment
    (env_file,) = SERVICES[name]["env_file"]
    assert env_file == {"path": f".local/localstack/{name}.env", "required": False}
    (config,) = SERVICES[name]["configs"]
    assert config["target"] == environment["AWS_CONFIG_FILE"]
    assert "addressing_style = path" in COMPOSE["configs"][config["source"]]["content"]


def test_the_function_images_match_what_local_deploy_pushes() -> None:
    from pipeline_toolkit.localstack import LOCAL_IMAGES

    assert {key: SERVICES[key]["image"] for key in FUNCTIONS} == LOCAL_IMAGES


def test_the_runtimes_invoker_urls_match_the_published_ports() -> None:
    makefile = (ROOT / "mk" / "local.mk").read_text()
    urls = re.search(r"^RIE_INVOKER_URLS\s*\?=\s*(\S+)", makefile, re.MULTILINE)
    assert urls is not None
    for pair in urls.group(1).split(","):
        key, url = pair.split("=", 1)
        port = url.rsplit(":", 1)[1]
        assert f"127.0.0.1:{port}:8080" in SERVICES[key]["ports"]


def test_make_targets_are_documented() -> None:
    makefile = (ROOT / "mk" / "local.mk").read_text()
    for target in ("demo", "local-up", "e2e-localstack"):
        assert re.search(rf"^{re.escape(target)}:.*## \S", makefile, re.MULTILINE), target
