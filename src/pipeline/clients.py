"""AWS clients with the SDK's own retry policy (throttling included), created once per process.

No endpoint plumbing: boto3 honours ``AWS_ENDPOINT_URL``, which is how the embedded emulator and
LocalStack are reached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# "standard" retries transient errors and throttling with backoff; 10 attempts rides out a burst.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=32)


def s3() -> S3Client:
    return boto3.client("s3", config=RETRY_CONFIG)


def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=RETRY_CONFIG)


def sqs() -> SQSClient:
    return boto3.client("sqs", config=RETRY_CONFIG)
