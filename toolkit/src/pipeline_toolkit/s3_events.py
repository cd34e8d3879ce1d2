"""S3 event notifications as S3 publishes them, for re-announcing a landed version and for tests.

One builder, so the shape a replay sends and the shapes the tests feed the handlers are the same: a record as
real S3 sends it (URL-encoded key, every field present) or as moto sends it (``minimal=True``: no identity,
request or owner fields), optionally wrapped the way SNS delivers it to SQS.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus


def event_time(when: datetime) -> str:
    """S3's event time format: ISO 8601 in UTC with milliseconds."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def s3_record(
    bucket: str,
    key: str,
    *,
    version: str | None = "v1",
    etag: str = "0123456789abcdef",
    size: int = 123,
    time: str | datetime = "2026-11-22T08:20:22.123Z",
    event_name: str = "ObjectCreated:Put",
    region: str = "us-east-1",
    sequencer: str | None = "0055AED6DCD90281E5",
    configuration_id: str = "landing",
    encode_key: bool = True,
    minimal: bool = False,
) -> dict[str, Any]:
    """One S3 event record. ``encode_key`` URL-encodes the key as S3 does (``' '`` -> ``+``)."""
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/") if encode_key else key,
        "size": size,
        "eTag": etag,
    }
    if version is not None:
        obj["versionId"] = version
    if sequencer is not None:
        obj["sequencer"] = sequencer
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time(time) if isinstance(time, datetime) else time,
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }
    if not minimal:
        record["userIdentity"] = {"principalId": "AWS:AIDAEXAMPLE"}
        record["requestParameters"] = {"sourceIPAddress": "203.0.113.7"}
        record["responseElements"] = {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        }
        record["s3"]["bucket"]["ownerIdentity"] = {"principalId": "A3NL1KOZZKExample"}
    return record


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    """An S3 event notification holding ``records``."""
    return {"Records": list(records)}


def sns_notification(
    message: dict[str, Any], topic_arn: str = "arn:aws:sns:us-east-1:123456789012:landing-events"
) -> str:
    """The SQS message body SNS delivers for ``message`` (without raw message delivery)."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Subject": "Amazon S3 Notification",
            "Message": json.dumps(message),
            "Timestamp": event_time(datetime.now(UTC)),
            "SignatureVersion": "1",
        }
    )
