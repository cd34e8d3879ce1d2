"""The ingest function's configuration: environment variables set by Terraform, validated at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.config import BUCKET_NAME, positive_int, require

DEFAULT_UPLOAD_MAX_BYTES = 100 << 20
DEFAULT_UPLOAD_EXPIRY_SECONDS = 300
DEFAULT_EVENTS_MAX_BYTES = 1 << 20
# A presigned POST is signed with the function's own (temporary) credentials: it cannot outlive them, and a
# short expiry keeps a leaked form useless soon.
MAX_UPLOAD_EXPIRY_SECONDS = 3600
# API Gateway's HTTP API takes at most 10 MB of payload; a synchronous invocation 6 MB (base64 adds 1/3).
MAX_EVENTS_BYTES = 4 << 20
MAX_UPLOAD_BYTES = 5 << 30  # S3's limit for a single POST upload


@dataclass(frozen=True, slots=True)
class IngestSettings:
    landing_bucket: str
    quarantine_bucket: str
    upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    upload_expiry_seconds: int = DEFAULT_UPLOAD_EXPIRY_SECONDS
    events_max_bytes: int = DEFAULT_EVENTS_MAX_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestSettings:
        env = os.environ if env is None else env
        return cls(
            landing_bucket=require(env, "PIPELINE_LANDING_BUCKET", BUCKET_NAME, "landing S3 bucket"),
            quarantine_bucket=require(env, "PIPELINE_QUARANTINE_BUCKET", BUCKET_NAME, "quarantine S3 bucket"),
            upload_max_bytes=positive_int(
                env, "PIPELINE_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_MAX_BYTES, MAX_UPLOAD_BYTES
            ),
            upload_expiry_seconds=positive_int(
                env,
                "PIPELINE_UPLOAD_EXPIRY_SECONDS",
                DEFAULT_UPLOAD_EXPIRY_SECONDS,
                MAX_UPLOAD_EXPIRY_SECONDS,
            ),
            events_max_bytes=positive_int(
                env, "PIPELINE_EVENTS_MAX_BYTES", DEFAULT_EVENTS_MAX_BYTES, MAX_EVENTS_BYTES
            ),
        )
