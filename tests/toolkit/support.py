"""Helpers shared by the runtime tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_toolkit.clients import Clients

HERE = Path(__file__).parent
TEST_HANDLER = "local_test_handlers.handler"


@dataclass
class TestFunction:
    __test__ = False  # not a test class, whatever pytest thinks of its name

    name: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    record_dir: Path


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    """Poll until ``predicate`` returns something truthy; fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def queue_depth(clients: Clients, url: str) -> int:
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def invocations(record_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(record_dir.glob("*.json"))]
