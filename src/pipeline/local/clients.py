"""boto3 clients for a target described by a standard AWS environment (endpoint, region, credentials).

The CLI talks to the emulator it started (or to LocalStack) without changing its own process environment,
so it builds clients from an explicit mapping of the same variables boto3 reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

DEFAULT_REGION = "us-east-1"


@dataclass
class Clients:
    """Lazily created clients aimed at the target that ``environment`` describes."""

    environment: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def endpoint_url(self) -> str | None:
        return self.environment.get("AWS_ENDPOINT_URL") or None

    @property
    def region(self) -> str:
        return (
            self.environment.get("AWS_REGION") or self.environment.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        )

    @cached_property
    def session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=self.environment.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=self.environment.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_session_token=self.environment.get("AWS_SESSION_TOKEN") or None,
            region_name=self.region,
        )

    @cached_property
    def _config(self) -> Config:
        return Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=20)

    @cached_property
    def s3(self) -> S3Client:
        return self.session.client("s3", endpoint_url=self.endpoint_url, config=self._config)

    @cached_property
    def sqs(self) -> SQSClient:
        return self.session.client("sqs", endpoint_url=self.endpoint_url, config=self._config)

    @cached_property
    def awslambda(self) -> LambdaClient:
        return self.session.client("lambda", endpoint_url=self.endpoint_url, config=self._config)

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self.session.client("dynamodb", endpoint_url=self.endpoint_url, config=self._config)
