"""The SDK held to the time budget: socket timeouts from the function's timeout, retries only when they fit.

Against a real HTTP server on 127.0.0.1 answering DynamoDB's throttling error, so the requests, the SDK's own
retry decision and its backoff are botocore's; only the sleep between attempts is recorded instead of slept.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.exceptions import ClientError

from pipeline import budget, clients
from pipeline.budget import AttemptTimeouts, Budget, OutOfTime
from pipeline.database import TableWriter


class Fixed:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Throttling(BaseHTTPRequestHandler):
    """Answers the first ``failures`` requests with DynamoDB's throttling error, the rest with an empty
    successful ListTables."""

    failures = 0
    seen = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen += 1
        if type(self).seen <= type(self).failures:
            status = 400
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "slow down",
            }
        else:
            status, body = 200, {"TableNames": []}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Throttling.failures = Throttling.seen = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    class Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            recorded.append(seconds)

    monkeypatch.setattr(botocore.endpoint, "time", Time)
    return recorded


def dynamodb(endpoint: str) -> Any:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=clients.config(),
    )
    clients.bound_retries(client)
    return client


def test_attempt_timeouts_are_a_fraction_of_the_function_timeout() -> None:
    embedded = AttemptTimeouts.for_function(5)
    assert (embedded.connect_s, embedded.read_s, embedded.worst_ms) == (0.5, 1.0, 1_500)
    long = AttemptTimeouts.for_function(300)
    assert (long.connect_s, long.read_s) == (2.0, 10.0)  # capped: a healthy service never needs more
    assert AttemptTimeouts.for_function(None) == AttemptTimeouts()


def test_the_function_timeout_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.FUNCTION_TIMEOUT_ENV, "5")
    assert AttemptTimeouts.from_env().worst_ms == 1_500
    monkeypatch.setenv(budget.FUNCTION_TIMEOUT_ENV, "five")
    with pytest.raises(ValueError, match="PIPELINE_FUNCTION_TIMEOUT_SECONDS must be a number"):
        AttemptTimeouts.from_env()
    monkeypatch.delenv(budget.FUNCTION_TIMEOUT_ENV)
    assert AttemptTimeouts.from_env() == AttemptTimeouts()


def test_clients_carry_the_attempt_timeouts() -> None:
    config = clients.config(AttemptTimeouts.for_function(5))
    assert (config.connect_timeout, config.read_timeout) == (0.5, 1.0)
    assert config.retries == {"mode": "standard", "total_max_attempts": clients.MAX_ATTEMPTS}


def test_with_time_to_spare_the_sdk_retries_as_it_always_did(server: str, sleeps: list[float]) -> None:
    Throttling.failures = 3
    with budget.active(Budget(Fixed(600_000))):
        assert dynamodb(server).list_tables()["TableNames"] == []
    assert Throttling.seen == 4
    assert len(sleeps) == 3


def test_without_a_budget_the_sdk_gives_up_after_its_attempts(server: str, sleeps: list[float]) -> None:
    Throttling.failures = 100
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        dynamodb(server).list_tables()
    assert Throttling.seen == clients.MAX_ATTEMPTS


def test_a_retry_that_would_not_fit_is_not_made(server: str, sleeps: list[float]) -> None:
    Throttling.failures = 100
    # Less than one attempt's worst case (here the caps: 12 s) is left: no retry, no sleep.
    with budget.active(Budget(Fixed(budget.ATTEMPT.worst_ms - 1))), pytest.raises(OutOfTime, match="no time"):
        dynamodb(server).list_tables()
    assert Throttling.seen == 1
    assert sleeps == []


def test_the_budget_is_only_active_for_its_invocation() -> None:
    with budget.active(Budget(Fixed(1))):
        assert budget.current() is not None
    assert budget.current() is None
    budget.retry_fits(60.0)  # no invocation: nothing to refuse


def test_the_table_writers_own_backoff_never_sleeps_into_the_timeout() -> None:
    slept: list[float] = []
    writer = TableWriter(client=None, table="t", key_field="k", sleep=slept.append)  # type: ignore[arg-type]
    with budget.active(Budget(Fixed(budget.ATTEMPT.worst_ms - 1))), pytest.raises(OutOfTime):
        writer._backoff(3)
    assert slept == []
    with budget.active(Budget(Fixed(600_000))):
        writer._backoff(3)
    assert len(slept) == 1
