"""From the SQS records Lambda hands a function to the S3 object versions they announce.

A message body is either an SNS notification wrapping an S3 event (the default fan-out) or, with SNS raw
message delivery, the S3 event itself. Each S3 event may hold several records. ``s3:TestEvent`` messages,
which S3 sends when a notification is configured, announce nothing and are ignored.

The S3 record itself is parsed with Powertools' model, relaxed where emulators (moto, LocalStack) leave out
fields that only real S3 fills in (requester identity, request ids, bucket owner).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import orjson
from aws_lambda_powertools.utilities.parser.models.s3 import (
    S3Bucket,
    S3Identity,
    S3Message,
    S3RecordModel,
    S3RequestParameters,
    S3ResponseElements,
)
from pydantic import BaseModel, ValidationError

from pipeline.objects import ObjectRef

TEST_EVENT = "s3:TestEvent"


class EventError(ValueError):
    """A message that is not an S3 event notification (nor an S3 test event)."""


class _Bucket(S3Bucket):
    ownerIdentity: S3Identity | None = None  # type: ignore[assignment]  # noqa: N815 - AWS field name


class _Message(S3Message):
    bucket: _Bucket


class _Record(S3RecordModel):
    userIdentity: S3Identity | None = None  # type: ignore[assignment]  # noqa: N815 - AWS field name
    requestParameters: S3RequestParameters | None = None  # type: ignore[assignment]  # noqa: N815 - AWS field name
    responseElements: S3ResponseElements | None = None  # type: ignore[assignment]  # noqa: N815 - AWS field name
    s3: _Message


class _Event(BaseModel):
    Records: list[_Record]


def _loads(text: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"{what} is not JSON: {exc}") from None


def unwrap_body(body: str | bytes) -> dict[str, Any] | None:
    """The S3 event inside an SQS message body, or None for an S3 test event."""
    payload = _loads(body, "message body")
    if isinstance(payload, dict) and payload.get("Type") == "Notification" and "Message" in payload:
        payload = _loads(payload["Message"], "SNS Message")
    if not isinstance(payload, dict):
        raise EventError(f"message body is a JSON {type(payload).__name__}, not an S3 event object")
    if payload.get("Event") == TEST_EVENT:
        return None
    if "Records" not in payload:
        raise EventError(f"message is not an S3 event notification (keys: {sorted(payload)[:5]})")
    return payload


def object_refs(body: str | bytes) -> list[ObjectRef]:
    """Every object version an SQS message body announces, keys decoded as S3 encodes them."""
    payload = unwrap_body(body)
    if payload is None:
        return []
    try:
        event = _Event.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise EventError(
            f"malformed S3 event: {first['msg']} at {'.'.join(map(str, first['loc']))}"
        ) from None
    except (AttributeError, TypeError) as exc:
        # Powertools' before-validator assumes the record's shape before checking it.
        raise EventError(f"malformed S3 event: {exc}") from None
    refs: list[ObjectRef] = []
    for record in event.Records:
        obj = record.s3.object
        if obj is None:
            continue
        refs.append(
            ObjectRef(
                bucket=record.s3.bucket.name,
                # S3 URL-encodes event keys: ' ' arrives as '+', ':' as '%3A' (some emulators encode '/').
                key=unquote_plus(obj.key),
                event_time=record.eventTime,
                event_name=record.eventName,
                version_id=obj.versionId,
                etag=obj.eTag,
                size=int(obj.size) if obj.size is not None else None,
                sequencer=obj.sequencer,
            )
        )
    return refs
