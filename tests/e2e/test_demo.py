"""``make demo`` as a person runs it: one command, a summary, nothing left running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_toolkit.terraform import find_binary

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(find_binary() is None, reason="the demo applies the stack: terraform is not on PATH"),
    pytest.mark.skipif(
        bool(os.environ.get("PIPELINE_E2E_OUTPUTS")), reason="the demo runs on the embedded emulator only"
    ),
]


def test_the_demo_processes_every_sample_and_summarises(tmp_path: Path, figures: list[str]) -> None:
    state_dir = tmp_path / "state"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_toolkit.cli", "--state-dir", str(state_dir), "demo"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        check=False,
    )
    elapsed = time.monotonic() - started
    figures.append(f"`pipeline demo` (make demo) run time: {elapsed:.1f} s")
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    for line in (
        "users.csv: loaded",
        "users.jsonl: loaded",
        "users-bad-rows.csv: partial",
        "events.jsonl: loaded",
        "users-broken.csv: quarantined",
    ):
        assert line in output
    assert ": 11 item(s)" in output  # 5 + 4 + 2 good users
    assert "Dead-letter queue of datalake-loader: 0 message(s)" in output
    assert "Dead-letter queue of database-loader: 0 message(s)" in output
    assert "everything it started is stopped" in output
    assert not (state_dir / "session.json").exists()
    logs = " ".join(path.name for path in (state_dir / "logs").glob("*.log"))
    assert "datalake-loader" in logs
    assert "database-loader" in logs
