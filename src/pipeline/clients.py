"""AWS clients with the SDK's own retry policy (throttling included), held to the invocation's time budget.

Created once per process. No endpoint plumbing: boto3 honours ``AWS_ENDPOINT_URL``, which is how the embedded
emulator and LocalStack are reached.

Two things keep a call from outliving its invocation (see :mod:`pipeline.budget`):

- socket timeouts per attempt are a fraction of the function's timeout, not the SDK's 60 s;
- the SDK's "standard" retry decision is kept, but a retry whose backoff plus one attempt's worst case would
  not fit in the time left is not made: the call raises :class:`~pipeline.budget.OutOfTime` and the message
  is handed back (its work so far is idempotent), instead of sleeping into the timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.retries import standard

from pipeline import budget

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# "standard" retries transient errors and throttling with backoff; 10 attempts ride out a burst when the
# invocation has the time (the budget cuts them short when it has not).
MAX_ATTEMPTS = 10


def config(timeouts: budget.AttemptTimeouts = budget.ATTEMPT) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=timeouts.connect_s,
        read_timeout=timeouts.read_s,
        max_pool_connections=32,
    )


def bound_retries(client: BaseClient) -> None:
    """Keep the SDK's standard retry decision, and refuse the retries the time budget cannot hold.

    botocore registers its retry handler under a known id; it is replaced by one that asks the same
    handler (a fresh one: its retry quota and backoff are botocore's own), then checks the time left.
    """
    service = client.meta.service_model.service_id.hyphenize()
    event, unique_id = f"needs-retry.{service}", f"retry-config-{service}"
    client.meta.events.unregister(event, unique_id=unique_id)
    sdk = standard.register_retry_handler(client, max_attempts=MAX_ATTEMPTS)
    client.meta.events.unregister(event, unique_id=unique_id)

    def needs_retry(**kwargs: Any) -> float | None:
        delay: float | None = sdk.needs_retry(**kwargs)
        if delay is not None and delay is not False:  # a retry after ``delay`` seconds
            budget.retry_fits(delay)
        return delay

    # The stubs type handlers as returning None; needs-retry handlers return the delay (botocore's own do).
    client.meta.events.register(event, needs_retry, unique_id=unique_id)  # type: ignore[arg-type]


def _client(service: str) -> Any:
    client = boto3.client(service, config=config())  # type: ignore[call-overload]
    bound_retries(client)
    return client


def s3() -> S3Client:
    client: S3Client = _client("s3")
    return client


def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


def sqs() -> SQSClient:
    client: SQSClient = _client("sqs")
    return client
