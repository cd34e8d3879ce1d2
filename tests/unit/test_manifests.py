"""Keys derived from a source key (manifests, rejects, quarantined files, work) fit S3's 1,024 bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline import manifests, parts, staging
from pipeline.objects import ObjectRef

WHEN = datetime(2026, 11, 22, tzinfo=UTC)
LONG = {
    "ascii": "in/" + "a" * 1011 + "/users.csv",
    "cjk": "in/" + "用户数据" * 84 + "/users-yy.csv",
}


def _derived(ref: ObjectRef) -> list[str]:
    return [
        manifests.manifest_key("datalake", ref),
        manifests.manifest_key("database", ref),
        manifests.rejects_key(ref),
        manifests.part_rejects_key(ref, 99_999),
        manifests.quarantined_file_key(ref),
        parts.result_key(ref, 99_999),
        staging.record_key(ref),
        manifests.work_prefix(ref) + "staged.jsonl",
    ]


def test_short_keys_keep_their_readable_layout() -> None:
    ref = ObjectRef(bucket="b", key="in/users.csv", event_time=WHEN, version_id="v1")
    assert manifests.manifest_key("database", ref) == "manifests/database/in/users.csv@v1.json"
    assert manifests.rejects_key(ref) == "rejects/in/users.csv@v1.jsonl"


@pytest.mark.parametrize("key", LONG.values(), ids=LONG.keys())
@pytest.mark.parametrize(
    "version", [None, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", "v" * 1024], ids=["null", "aws-like", "1024-bytes"]
)
def test_every_derived_key_fits_s3_for_a_source_key_as_long_as_s3_allows(
    key: str, version: str | None
) -> None:
    assert len(key.encode()) == 1024
    ref = ObjectRef(bucket="b", key=key, event_time=WHEN, version_id=version)
    derived = _derived(ref)
    assert all(len(k.encode()) <= 1024 for k in derived), [len(k.encode()) for k in derived]
    assert manifests.manifest_key("database", ref).startswith("manifests/database/in/")
    if version and len(version) < 100:
        assert manifests.manifest_key("database", ref).endswith(f"@{version}.json")


def test_long_keys_that_share_their_start_stay_distinct() -> None:
    one = ObjectRef(bucket="b", key=LONG["ascii"], event_time=WHEN, version_id="v1")
    other = ObjectRef(bucket="b", key=LONG["ascii"].replace("a", "b", 1), event_time=WHEN, version_id="v1")
    later = ObjectRef(bucket="b", key=LONG["ascii"], event_time=WHEN, version_id="v2")
    keys = {manifests.manifest_key("database", ref) for ref in (one, other, later)}
    assert len(keys) == 3
