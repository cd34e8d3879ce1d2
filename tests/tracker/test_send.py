"""``pipeline send`` without an emulator: reading JSON Lines and JSON arrays, the run's deterministic batch
keys, and the command against the stand-in API (a rerun lands nothing twice). Against the real gateway and
Cognito: ``tests/e2e/test_tracker_gateway.py``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.tracker.servers import FakeIngestApi, FaultProxy

from pipeline_toolkit import cli
from pipeline_toolkit.send import InputError, batch_key, read_records


@pytest.fixture
def api() -> Iterator[FakeIngestApi]:
    served = FakeIngestApi()
    yield served
    served.stop()


def test_json_lines_and_json_arrays_are_read_as_records() -> None:
    assert list(read_records(io.BytesIO(b'{"a": 1}\n\n  {"a": 2}\n'))) == [{"a": 1}, {"a": 2}]
    assert list(read_records(io.BytesIO(b' \n[{"a": 1}, {"a": 2.5}]'))) == [{"a": 1}, {"a": 2.5}]
    assert list(read_records(io.BytesIO(b"  \n"))) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}\n{"a": \n', "line 2: not JSON"),
        (b'{"a": 1}\n[1]\n', "line 2: a record is a JSON object"),
        (b'[{"a": 1}, 3]', "array element 1: a record is a JSON object"),
        (b'[{"a": 1}, {"a"', "not a JSON array"),
    ],
)
def test_bad_input_says_where(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(read_records(io.BytesIO(data)))


def test_a_batch_key_depends_on_the_run_the_dataset_the_position_and_the_bytes() -> None:
    key = batch_key("", "users", 0, b"{}\n")
    assert key == batch_key("", "users", 0, b"{}\n")
    others = {
        batch_key("2", "users", 0, b"{}\n"),
        batch_key("", "events", 0, b"{}\n"),
        batch_key("", "users", 1, b"{}\n"),
        batch_key("", "users", 0, b"[]\n"),
    }
    assert key not in others
    assert len(others) == 4


def send(api: FakeIngestApi, *extra: str) -> list[str]:
    return ["--state-dir", "/nonexistent", "send", "users", *extra, "--url", api.url, "--token", api.TOKEN]


def test_send_prints_counts_and_reasons_and_a_rerun_lands_nothing_twice(
    api: FakeIngestApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "users.jsonl"
    records = [{"user_id": f"u-{n}"} for n in range(7)] + [{"user_id": "u-x", "bad": True}]
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    argv = send(api, str(source), "--batch-records", "3", "--spool-dir", str(tmp_path / "spool"))
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "8 record(s) of users read, 3 batch(es)" in out
    assert "7 accepted, 1 rejected, 0 not sent" in out
    assert 'rejected {"user_id":"u-x","bad":true}: bad: flagged by the test' in out
    assert cli.main(argv) == 1
    assert "(3 batch(es) had landed before: replayed)" in capsys.readouterr().out
    assert sorted(r["user_id"] for r in api.records()) == [f"u-{n}" for n in range(7)]


def test_send_reads_stdin_and_exits_0_when_all_is_accepted(
    api: FakeIngestApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps([{"user_id": "u-1"}, {"user_id": "u-2"}]).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli.main(send(api, "-")) == 0
    assert "2 accepted, 0 rejected, 0 not sent" in capsys.readouterr().out
    assert not stdin.closed


def test_an_empty_input_sends_nothing_and_is_no_failure(
    api: FakeIngestApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    assert cli.main(send(api, str(tmp_path / "empty.jsonl"))) == 0
    assert "0 record(s) of users read, 0 batch(es)" in capsys.readouterr().out
    assert api.requests == []


def test_send_stops_at_bad_input_but_sends_what_came_before(
    api: FakeIngestApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "broken.jsonl"
    source.write_text('{"user_id": "u-1"}\nnot json\n{"user_id": "u-3"}\n')
    assert cli.main(send(api, str(source))) == 1
    out = capsys.readouterr().out
    assert "input stopped: line 2: not JSON" in out
    assert [r["user_id"] for r in api.records()] == ["u-1"]


def test_send_says_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_token = ["--state-dir", str(tmp_path), "send", "users", "-", "--url", "http://127.0.0.1:1"]
    assert cli.main(no_token) == 2
    assert "sign in: pass --username" in capsys.readouterr().out
    assert cli.main(["--state-dir", str(tmp_path), "send", "users", "-"]) == 2
    assert "pipeline local up" in capsys.readouterr().out


def test_send_killed_mid_stream_and_run_again_lands_every_record_once(
    api: FakeIngestApi, tmp_path: Path
) -> None:
    proxy = FaultProxy(api.url, ["pass", "hold"])  # batch 2 lands, its answer never comes back
    source = tmp_path / "users.jsonl"
    source.write_text("".join(json.dumps({"user_id": f"u-{n}"}) + "\n" for n in range(45)))
    argv = [
        sys.executable, "-m", "pipeline_toolkit.cli", "--state-dir", str(tmp_path / "state"), "send", "users",
        str(source), "--url", proxy.url, "--token", api.TOKEN, "--spool-dir", str(tmp_path / "spool"),
        "--batch-records", "10",
    ]  # fmt: skip
    try:
        first = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        proxy.kill_when_held(first, 60)
        again = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    finally:
        proxy.release()
        proxy.stop()
    assert again.returncode == 0, again.stdout
    assert "45 record(s) of users read, 5 batch(es)" in again.stdout
    assert "45 accepted, 0 rejected, 0 not sent (2 batch(es) had landed before: replayed)" in again.stdout
    assert sorted(r["user_id"] for r in api.records()) == sorted(f"u-{n}" for n in range(45))
