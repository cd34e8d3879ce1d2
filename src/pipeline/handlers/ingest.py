"""Lambda handler: the ingest API behind API Gateway's HTTP API (payload format 2.0, JWT authorizer)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from pipeline import clients
from pipeline.ingest.routes import configure, resolve
from pipeline.ingest.settings import IngestSettings

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME, set by Terraform to the function key
# Validated once, at cold start: a bad deployment fails loudly with the variable's name.
# SigV4 for the presigned POSTs (SigV2 is refused in newer regions and on KMS-encrypted buckets).
s3 = boto3.client("s3", config=clients.config().merge(Config(signature_version="s3v4")))
clients.bound_retries(s3)
configure(IngestSettings.from_env(), s3)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(event, context)
