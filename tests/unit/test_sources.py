"""Pinning the announced object version when an event leaves versionId out (as emulators do)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline.objects import ObjectRef
from pipeline.sources import SourceGoneError, open_source, pin_version

BUCKET = "src-landing"
WHEN = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def announce(s3: Any, body: bytes) -> ObjectRef:
    etag = s3.put_object(Bucket=BUCKET, Key="users.csv", Body=body)["ETag"].strip('"')
    return ObjectRef(bucket=BUCKET, key="users.csv", event_time=WHEN, etag=etag)


def test_versioned_bucket_pins_the_current_version(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ref = announce(s3, b"one\n")
    pinned = pin_version(s3, ref)
    assert pinned.version_id is not None
    assert open_source(s3, pinned).read() == b"one\n"


def test_overwritten_object_is_found_among_older_versions(s3: Any) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = announce(s3, b"first\n")
    announce(s3, b"second\n")
    pinned = pin_version(s3, first)
    assert open_source(s3, pinned).read() == b"first\n"


def test_unversioned_bucket_keeps_no_version_and_reads_by_etag(s3: Any) -> None:
    ref = announce(s3, b"only\n")
    pinned = pin_version(s3, ref)
    assert pinned.version_label == "null"
    assert open_source(s3, pinned).read() == b"only\n"


def test_bytes_that_are_gone_fail_clearly(s3: Any) -> None:
    ref = announce(s3, b"gone\n")
    announce(s3, b"replaced\n")  # unversioned: the announced bytes no longer exist anywhere
    with pytest.raises(SourceGoneError, match="no longer exists"):
        pin_version(s3, ref)


def test_event_with_version_is_left_alone(s3: Any) -> None:
    ref = ObjectRef(bucket=BUCKET, key="users.csv", event_time=WHEN, version_id="abc", etag="x")
    assert pin_version(s3, ref) is ref
