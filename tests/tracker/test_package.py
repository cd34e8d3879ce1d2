"""The tracker installs into an app on its own: one dependency, nothing of the pipeline or the toolkit."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_tracker_depends_on_urllib3_only() -> None:
    with (REPO / "tracker" / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    assert [dependency.split("==")[0] for dependency in project["dependencies"]] == ["urllib3"]


def test_importing_the_tracker_imports_nothing_of_the_pipeline() -> None:
    code = (
        "import sys, pipeline_tracker\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pipeline', 'pipeline_toolkit', 'boto3', 'botocore', 'moto', 'requests'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
