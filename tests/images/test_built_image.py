"""The function image as built (``function_image``: images/Dockerfile through BuildKit, on the stand-in base
here), inspected from the inside: the interpreter that ships, the byte-compiled package, exactly the locked
distributions, and no toolkit. Figures (size) are reported, not asserted."""

from __future__ import annotations

import json
import subprocess

import docker
import pytest
from tests.images.replay import image_python_version
from tests.images.test_image_layout import locked

from pipeline_toolkit.standin import is_standin

pytestmark = pytest.mark.containers

PROBE = """
import importlib.metadata, json, pathlib, sys
root = pathlib.Path("/var/task")
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "pyc": sorted(p.name for p in (root / "pipeline" / "handlers" / "__pycache__").glob("*.pyc")),
    "dists": sorted(
        (d.metadata["Name"], d.version) for d in importlib.metadata.distributions(path=[str(root)])
    ),
    "toolkit": sorted(str(p) for p in root.rglob("*pipeline_toolkit*")),
}))
"""


@pytest.fixture(scope="module")
def inside(function_image: str) -> dict[str, object]:
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python", function_image, "-c", PROBE],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_the_image_runs_the_python_the_dockerfile_installs_for(inside: dict[str, object]) -> None:
    assert inside["python"] == image_python_version() == "3.13"


def test_the_package_is_byte_compiled_for_that_interpreter(inside: dict[str, object]) -> None:
    pyc = inside["pyc"]
    assert isinstance(pyc, list)
    assert pyc
    assert all(name.endswith(".cpython-313.pyc") for name in pyc), pyc


def test_the_task_root_holds_exactly_the_locked_distributions_and_no_toolkit(
    inside: dict[str, object],
) -> None:
    from packaging.utils import canonicalize_name

    dists = inside["dists"]
    assert isinstance(dists, list)
    assert {canonicalize_name(name): version for name, version in dists} == locked()
    assert inside["toolkit"] == []


def test_an_image_on_the_stand_in_base_says_so_in_its_labels(function_image: str) -> None:
    image = docker.from_env().images.get(function_image)
    size_mib = image.attrs["Size"] / 2**20
    print(f"{function_image}: {size_mib:.0f} MiB")
    title = image.labels.get("org.opencontainers.image.title", "")
    base = next(
        (arg for arg in image.attrs.get("Config", {}).get("Env", []) if arg.startswith("LAMBDA_TASK_ROOT")),
        None,
    )
    assert base == "LAMBDA_TASK_ROOT=/var/task"
    if "STAND-IN" in title:
        assert not is_standin(function_image)  # the function image has its own name; the label tells
