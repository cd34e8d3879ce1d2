"""Static checks of terraform/: formatting, validity, checkov, and the documentation every module needs."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.terraform.markers import needs_terraform

from pipeline_toolkit import lookup, query
from pipeline_toolkit.project import stack_dir
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, Terraform

pytestmark = pytest.mark.terraform

STACK_DIR = stack_dir(Path(__file__).resolve().parents[2])
REPO_ROOT = STACK_DIR.parent
MODULE_DIRS = sorted(p for p in (STACK_DIR / "modules").iterdir() if p.is_dir())
STANDARD_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")


def _blocks(path: Path, kind: str) -> dict[str, str]:
    """Top-level `<kind> "<name>" { ... }` blocks of a .tf file by name (fmt puts them at column 0)."""
    text = path.read_text(encoding="utf-8")
    starts = [(m.start(), m.group(1)) for m in re.finditer(rf'^{kind} "([^"]+)" \{{', text, flags=re.M)]
    ends = [m.start() for m in re.finditer(r"^\}", text, flags=re.M)]
    blocks = {}
    for start, name in starts:
        end = next(e for e in ends if e > start)
        blocks[name] = text[start:end]
    return blocks


@needs_terraform
def test_fmt_is_clean() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", "-no-color", str(STACK_DIR)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"terraform fmt would change files:\n{result.stdout}{result.stderr}"


@needs_terraform
def test_validate_is_clean(tmp_path: Path) -> None:
    terraform = Terraform(STACK_DIR, data_dir=tmp_path / "data")
    terraform.init(backend=False)
    report = terraform.validate()
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)


def _checkov() -> str | None:
    configured = os.environ.get("CHECKOV")
    if configured:
        return configured
    local = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
    return str(local) if local.exists() else None


def test_checkov_finds_no_failed_check() -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov not found: set $CHECKOV or run `make checkov` to create .venv-checkov")
    result = subprocess.run(
        [checkov, "-d", str(STACK_DIR), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    reports: Any = json.loads(result.stdout)
    report = reports[0] if isinstance(reports, list) else reports
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert summary["parsing_errors"] == 0, result.stdout
    assert summary["resource_count"] > 0
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    unjustified = [
        f"{c['check_id']} {c['resource']}"
        for c in report["results"]["skipped_checks"]
        if len((c["check_result"].get("suppress_comment") or "").strip()) < 20
    ]
    assert not unjustified, "checkov skips need an inline justification:\n" + "\n".join(unjustified)


@pytest.mark.parametrize("module", MODULE_DIRS, ids=lambda p: p.name)
def test_module_follows_standard_structure(module: Path) -> None:
    missing = [name for name in STANDARD_FILES if not (module / name).is_file()]
    assert not missing, f"{module.name} lacks {missing}"


@pytest.mark.parametrize("directory", [STACK_DIR, *MODULE_DIRS], ids=lambda p: p.name)
def test_every_variable_and_output_is_typed_described_and_documented(directory: Path) -> None:
    readme = (directory / "README.md").read_text(encoding="utf-8")
    variables = _blocks(directory / "variables.tf", "variable")
    outputs = _blocks(directory / "outputs.tf", "output")
    assert outputs, f"{directory.name} has no outputs"
    for name, body in variables.items():
        assert re.search(r"^  type\s+=", body, flags=re.M), f"variable {name} in {directory.name} has no type"
        assert re.search(r"^  description\s+=", body, flags=re.M), f"variable {name} has no description"
        assert f"`{name}`" in readme, f"variable {name} is not in {directory.name}/README.md"
    for name, body in outputs.items():
        assert re.search(r"^  description\s+=", body, flags=re.M), f"output {name} has no description"
        assert f"`{name}`" in readme, f"output {name} is not in {directory.name}/README.md"


def test_no_endpoint_settings_in_the_configuration() -> None:
    """The stack reaches AWS, LocalStack or the emulator only through the standard environment."""
    offenders = [
        f"{path.relative_to(STACK_DIR)}:{number}: {line.strip()}"
        for path in STACK_DIR.rglob("*.tf")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if not line.lstrip().startswith("#")
        and re.search(
            r"\b(endpoints|endpoint_url|skip_credentials_validation|skip_requesting_account_id|s3_use_path_style)\b"
            r"|localhost|127\.0\.0\.1|:4566",
            line,
        )
    ]
    assert not offenders, "\n".join(offenders)


def test_each_named_query_is_a_sql_file_of_the_catalog_module() -> None:
    """Terraform reads queries/<name>.sql for each entry; `pipeline query --named` reads the same files."""
    module = STACK_DIR / "modules" / "catalog"
    text = (module / "main.tf").read_text(encoding="utf-8")
    block = re.search(r"^  named_queries = \{\n(.*?)^  \}", text, flags=re.M | re.S)
    assert block is not None
    declared = set(re.findall(r"^    (\w+)\s+=", block.group(1), flags=re.M))
    assert declared == {path.stem for path in (module / "queries").glob("*.sql")}
    assert 'query       = file("${path.module}/queries/${each.key}.sql")' in text
    assert set(query.named_queries(REPO_ROOT)) == declared


def test_the_email_index_get_user_queries_is_the_one_the_stack_makes() -> None:
    table_module = (STACK_DIR / "modules" / "table" / "main.tf").read_text(encoding="utf-8")
    assert f'for_each = var.email_index ? ["{lookup.EMAIL_INDEX}"] : []' in table_module
    assert re.search(r"^  email_index = true$", _blocks(STACK_DIR / "main.tf", "module")["table"], flags=re.M)


def test_the_embedded_target_gives_the_provider_a_small_retry_budget() -> None:
    """An action moto lacks must fail in seconds, not after the provider's 25 attempts."""
    assert "max_retries = var.provider_max_retries" in (STACK_DIR / "versions.tf").read_text(encoding="utf-8")
    assert 1 <= EMBEDDED_VARIABLES["provider_max_retries"] <= 5
