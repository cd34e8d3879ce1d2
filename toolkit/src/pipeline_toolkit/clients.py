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
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

DEFAULT_REGION = "us-east-1"

# Fake credentials for an emulator. They must never reach real AWS: the endpoint always goes with them.
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


def emulator_environment(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Environment variables that aim boto3 and Terraform's AWS provider at an emulator's endpoint.

    An empty value means "unset": never read a developer's real profile or session token while pointed at
    an emulator. Kept apart from :mod:`.emulator` so that using a running stack never imports moto.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **EMULATOR_CREDENTIALS,
        "AWS_PROFILE": "",
        "AWS_SESSION_TOKEN": "",
    }


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
    def sns(self) -> SNSClient:
        return self.session.client("sns", endpoint_url=self.endpoint_url, config=self._config)

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self.session.client("dynamodb", endpoint_url=self.endpoint_url, config=self._config)
