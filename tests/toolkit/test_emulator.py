"""The embedded emulator runs in a process of its own: its state, its stop, its request counts."""

from __future__ import annotations

import os
import subprocess

import boto3
import pytest
from moto import mock_aws

from pipeline_toolkit import emulator as emulator_module
from pipeline_toolkit.clients import Clients


def test_its_state_survives_mock_aws_in_this_process() -> None:
    running = emulator_module.start()
    try:
        clients = Clients(running.environment())
        clients.s3.create_bucket(Bucket="kept-across-mock-aws")
        with mock_aws():
            # In-process moto, as the unit tests use it: reset when the block ends.
            boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="in-process-only")
        names = [bucket["Name"] for bucket in clients.s3.list_buckets()["Buckets"]]
        assert names == ["kept-across-mock-aws"]
    finally:
        running.stop()


def test_stop_ends_its_process_and_is_idempotent() -> None:
    running = emulator_module.start()
    process = running._process
    assert process is not None
    assert running.pid == process.pid

    running.stop()
    running.stop()

    assert process.returncode is not None
    assert running.pid is None


def test_it_ends_when_its_parent_goes_away() -> None:
    # The child serves until its stdin closes: what happens when the parent dies without stopping it.
    running = emulator_module.start()
    process = running._process
    assert process is not None
    assert process.stdin is not None
    process.stdin.close()
    try:
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, 9)
        running._process = None


def test_request_counts_name_each_operation() -> None:
    running = emulator_module.start()
    try:
        dynamodb = Clients(running.environment()).dynamodb
        for _ in range(3):
            dynamodb.list_tables()

        counts = running.request_counts()

        assert counts.get("DynamoDB_20120810.ListTables") == 3
    finally:
        running.stop()


def test_a_port_in_use_is_reported_not_hung() -> None:
    first = emulator_module.start()
    try:
        port = int(first.endpoint_url.rsplit(":", 1)[1])
        with pytest.raises(emulator_module.EmulatorError, match="did not start"):
            emulator_module.start(port=port, ready_timeout_seconds=30).stop()
    finally:
        first.stop()


def test_the_module_runs_as_a_script() -> None:
    completed = subprocess.run(
        [*emulator_module.server_command(), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "--port" in completed.stdout


def test_the_emulators_state_is_frozen_out_of_full_collections() -> None:
    """What survives a young collection (the emulator's state) is moved to the permanent generation, so a
    full collection no longer scans (and stalls requests on) millions of stored items."""
    import gc

    state = [{"user_id": {"S": f"u-{n}"}} for n in range(10_000)]
    try:
        before = gc.get_freeze_count()
        emulator_module.freeze_survivors()
        assert gc.get_freeze_count() >= before + len(state)
    finally:
        gc.unfreeze()  # this test process is not the emulator


def test_freezing_never_walks_the_permanent_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    """``gc.get_freeze_count()`` walks every frozen object under the GIL: in the emulator's 5 s loop it
    stalled every request for seconds once millions of items were frozen. The loop must not call it."""
    import gc

    def walks_everything() -> int:
        raise AssertionError("gc.get_freeze_count() walks the whole permanent generation")

    monkeypatch.setattr(gc, "get_freeze_count", walks_everything)
    try:
        emulator_module.freeze_survivors()
    finally:
        gc.unfreeze()
