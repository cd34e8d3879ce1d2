"""Parsing SQS message bodies into S3 object versions: SNS-wrapped, raw, test events, encoded keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.events import EventError, object_refs, unwrap_body
from pipeline_toolkit.s3_events import s3_record as build_record
from pipeline_toolkit.s3_events import sns_notification as sns_wrap


def s3_record(
    key: str, *, version: str | None = "v1", time: str = "2026-11-22T08:20:22.123Z"
) -> dict[str, Any]:
    """An S3 event record as real S3 sends it (all fields present); ``key`` is given already URL-encoded."""
    return build_record("landing", key, version=version, time=time, encode_key=False)


def test_sns_wrapped_event_gives_each_record() -> None:
    body = sns_wrap({"Records": [s3_record("a/users.csv"), s3_record("b/users.jsonl", version="v2")]})
    refs = object_refs(body)
    assert [(r.key, r.version_id) for r in refs] == [("a/users.csv", "v1"), ("b/users.jsonl", "v2")]
    assert refs[0].event_time == datetime(2026, 11, 22, 8, 20, 22, 123000, tzinfo=UTC)
    assert refs[0].etag == "0123456789abcdef"
    assert refs[0].size == 123
    assert refs[0].bucket == "landing"


def test_raw_message_delivery_body_is_the_s3_event() -> None:
    refs = object_refs(json.dumps({"Records": [s3_record("users.csv")]}))
    assert [r.key for r in refs] == ["users.csv"]


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("my+folder/users+2026.csv", "my folder/users 2026.csv"),
        ("time%3A2026-11-22T08%3A00/users.csv", "time:2026-11-22T08:00/users.csv"),
        ("a%2Bb/users.csv", "a+b/users.csv"),
        ("caf%C3%A9/%E7%94%A8%E6%88%B7-users.csv", "café/用户-users.csv"),
        ("nested%2Fslash%2Fusers.csv", "nested/slash/users.csv"),
    ],
)
def test_keys_are_decoded_as_s3_encodes_them(encoded: str, decoded: str) -> None:
    assert object_refs(sns_wrap({"Records": [s3_record(encoded)]}))[0].key == decoded


def test_s3_test_event_is_ignored_wrapped_or_raw() -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-22T08:00:00.000Z",
        "Bucket": "landing",
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    assert object_refs(sns_wrap(test_event)) == []
    assert object_refs(json.dumps(test_event)) == []
    assert unwrap_body(json.dumps(test_event)) is None


def test_emulator_event_without_identity_fields_is_accepted() -> None:
    record = s3_record("users.csv", version=None)
    for field in ("userIdentity", "requestParameters", "responseElements"):
        del record[field]
    del record["s3"]["bucket"]["ownerIdentity"]
    ref = object_refs(json.dumps({"Records": [record]}))[0]
    assert ref.version_id is None
    assert ref.version_label == "null"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "message body is not JSON"),
        ("[1, 2]", "not an S3 event object"),
        ('{"hello": "world"}', "not an S3 event notification"),
        ('{"Type": "Notification", "Message": "oops"}', "SNS Message is not JSON"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "malformed S3 event"),
    ],
)
def test_messages_that_are_not_s3_events_fail_clearly(body: str, message: str) -> None:
    with pytest.raises(EventError, match=message):
        object_refs(body)


def test_order_token_sorts_by_event_time_first() -> None:
    early = object_refs(json.dumps({"Records": [s3_record("z.csv", time="2026-11-22T08:00:00.000Z")]}))[0]
    late = object_refs(json.dumps({"Records": [s3_record("a.csv", time="2026-11-22T09:00:00.000Z")]}))[0]
    assert early.order_token < late.order_token
