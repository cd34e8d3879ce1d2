"""Terraform outputs and the session file that lets `drop` and `status` find a running stack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_toolkit.outputs import NoSessionError, Session, StackOutputs

PLAIN = {
    "landing_bucket": "p-landing",
    "datalake_bucket": "p-datalake",
    "quarantine_bucket": "p-quarantine",
    "table_name": "p-users",
    "region": "eu-west-1",
    "topic_arn": "arn:aws:sns:eu-west-1:123456789012:t",
    "functions": {"datalake-loader": "p-datalake-loader"},
    "queues": {
        "datalake-loader": {"url": "u", "arn": "a", "dlq_url": "du", "dlq_arn": "da", "extra": "ignored"}
    },
    "repository_urls": {"datalake-loader": "r"},
}


def test_plain_and_wrapped_outputs_read_the_same() -> None:
    wrapped = {
        name: {"value": value, "type": "whatever", "sensitive": False} for name, value in PLAIN.items()
    }

    assert StackOutputs.from_terraform(wrapped) == StackOutputs.from_terraform(PLAIN)
    outputs = StackOutputs.from_terraform(PLAIN)
    assert outputs.queues["datalake-loader"].dlq_url == "du"
    assert outputs.functions == {"datalake-loader": "p-datalake-loader"}


def test_a_session_round_trips_and_exports_the_standard_variables(tmp_path: Path) -> None:
    session = Session("http://127.0.0.1:5000", "eu-west-1", StackOutputs.from_terraform(PLAIN), os.getpid())

    session.save(tmp_path)
    loaded = Session.load(tmp_path)

    assert loaded == session
    environment = loaded.environment()
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert environment["AWS_DEFAULT_REGION"] == "eu-west-1"
    Session.remove(tmp_path)
    with pytest.raises(NoSessionError, match="pipeline local up"):
        Session.load(tmp_path)
