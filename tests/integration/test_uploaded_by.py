"""Who landed a file reaches the lake copy, the table, the curated zone, the rejects and the manifests."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
import requests
from tests.integration.conftest import LANDING, PART_BYTES, Stack

from pipeline.ingest.auth import Caller
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.uploads import UploadRequest, presign

SUB = "8a4e2f5c-0b1d-4c3e-9f6a-7d2b1c0e9f8a"
HEADER = "user_id,first_name,last_name,email,gender,age\n"


def users_csv(ids: range, bad: frozenset[int] = frozenset()) -> bytes:
    rows = [
        f"u{i:05},Ada,Last{i},{'not-an-email' if i in bad else f'u{i}@example.com'},female,{20 + i % 50}\n"
        for i in ids
    ]
    return (HEADER + "".join(rows)).encode()


def lake_metadata(stack: Stack, source_key: str) -> dict[str, str]:
    lake_key = stack.manifests("datalake")[source_key].lake_key
    assert lake_key is not None
    metadata: dict[str, str] = stack.s3.head_object(Bucket=stack.lake_bucket, Key=lake_key)["Metadata"]
    return metadata


def test_a_file_landed_with_uploaded_by_carries_it_everywhere(stack: Any) -> None:
    version = stack.put("incoming/users.csv", users_csv(range(30), bad=frozenset({7})), {"uploaded-by": SUB})
    stack.run_all()

    metadata = lake_metadata(stack, "incoming/users.csv")
    assert metadata["uploaded-by"] == SUB
    assert metadata["source-version"] == version  # beside the rest of the lineage
    table = stack.table()
    assert len(table) == 29
    assert {item["uploaded_by"]["S"] for item in table.values()} == {SUB}
    curated = stack.curated("users")
    assert curated.column("uploaded_by").to_pylist() == [SUB] * 29
    for stage in ("datalake", "database"):
        manifest = stack.manifests(stage)["incoming/users.csv"]
        assert (manifest.uploaded_by, manifest.lineage_notes) == (SUB, [])
    manifest = stack.manifests("database")["incoming/users.csv"]
    assert (manifest.status, manifest.records_loaded, manifest.records_rejected) == ("partial", 29, 1)
    [reject] = stack.rejects(manifest.rejects_key or "")
    assert reject["uploaded_by"] == SUB


def test_a_file_dropped_without_it_loads_unchanged(stack: Any) -> None:
    stack.put("users.csv", users_csv(range(10)))
    stack.run_all()

    assert "uploaded-by" not in lake_metadata(stack, "users.csv")
    table = stack.table()
    assert len(table) == 10
    assert all("uploaded_by" not in item for item in table.values())
    assert stack.curated("users").column("uploaded_by").to_pylist() == [None] * 10
    for stage in ("datalake", "database"):
        manifest = stack.manifests(stage)["users.csv"]
        assert (manifest.status, manifest.uploaded_by, manifest.lineage_notes) == ("loaded", None, [])


@pytest.mark.parametrize(
    "value",
    ["x" * 129, "alice bob", "<script>alert(1)</script>", "a;DROP TABLE users", "../../etc/passwd"],
)
def test_a_bad_value_is_dropped_and_noted_and_the_file_still_loads(stack: Any, value: str) -> None:
    stack.put("users.csv", users_csv(range(5)), {"uploaded-by": value})
    stack.run_all()

    assert "uploaded-by" not in lake_metadata(stack, "users.csv")
    table = stack.table()
    assert len(table) == 5
    assert all("uploaded_by" not in item for item in table.values())
    assert stack.curated("users").column("uploaded_by").to_pylist() == [None] * 5
    for stage in ("datalake", "database"):
        manifest = stack.manifests(stage)["users.csv"]
        assert manifest.status == "loaded"
        assert manifest.uploaded_by is None
        [note] = manifest.lineage_notes
        assert note.startswith("uploaded-by metadata ignored: ")
        assert value not in note  # said, not repeated


def test_an_events_file_without_a_table_is_curated_with_it(stack: Any) -> None:
    body = b"".join(
        f'{{"event_id": "e{i}", "type": "click", "timestamp": "2026-12-03T10:00:0{i}Z"}}\n'.encode()
        for i in range(3)
    )
    stack.put("events-1.jsonl", body, {"uploaded-by": SUB})
    stack.run_all()
    assert stack.curated("events").column("uploaded_by").to_pylist() == [SUB] * 3
    assert stack.manifests("database")["events-1.jsonl"].uploaded_by == SUB
    assert lake_metadata(stack, "events-1.jsonl")["uploaded-by"] == SUB


def test_the_later_version_wins_with_its_uploader_and_a_replay_writes_nothing(stack: Any) -> None:
    stack.put("users.csv", users_csv(range(5)), {"uploaded-by": "alice"})
    stack.run_all()
    stack.put("users.csv", users_csv(range(5)), {"uploaded-by": "bob"})
    messages = {function: stack.receive(function) for function in ("datalake", "database")}
    for function, batch in messages.items():
        assert stack.invoke(function, batch) == {"batchItemFailures": []}
    assert {item["uploaded_by"]["S"] for item in stack.table().values()} == {"bob"}
    assert lake_metadata(stack, "users.csv")["uploaded-by"] == "bob"
    table_once, curated_once = stack.table(), stack.curated_keys("users")
    for function, batch in messages.items():  # the same messages delivered again
        assert stack.invoke(function, batch) == {"batchItemFailures": []}
    assert stack.table() == table_once
    assert stack.curated_keys("users") == curated_once
    # The curated zone keeps both versions' rows, each with its own uploader.
    assert sorted(set(stack.curated("users").column("uploaded_by").to_pylist())) == ["alice", "bob"]


def test_every_part_of_a_big_file_carries_it(parts_stack: Stack) -> None:
    body = users_csv(range(400))
    assert len(body) > 4 * PART_BYTES
    parts_stack.put("big/users.csv", body, {"uploaded-by": SUB})
    parts_stack.run_all()
    messages = parts_stack.receive("parts")
    assert len(messages) >= 4
    assert parts_stack.invoke("parts", messages) == {"batchItemFailures": []}

    table = parts_stack.table()
    assert len(table) == 400
    assert {item["uploaded_by"]["S"] for item in table.values()} == {SUB}
    curated = parts_stack.curated("users")
    assert curated.num_rows == 400
    assert set(curated.column("uploaded_by").to_pylist()) == {SUB}
    manifest = parts_stack.manifests("database")["big/users.csv"]
    assert (manifest.status, manifest.parts_total, manifest.uploaded_by) == ("loaded", len(messages), SUB)


def test_a_big_gzip_file_staged_first_carries_it_through_its_parts(parts_stack: Stack) -> None:
    # Its parts are ranges of the staged plain copy, which has no metadata: the message carries it.
    parts_stack.put("big/users.csv.gz", gzip.compress(users_csv(range(400)), mtime=0), {"uploaded-by": SUB})
    parts_stack.run_all()
    assert parts_stack.run("parts") == []
    table = parts_stack.table()
    assert len(table) == 400
    assert {item["uploaded_by"]["S"] for item in table.values()} == {SUB}
    manifest = parts_stack.manifests("database")["big/users.csv.gz"]
    assert (manifest.status, manifest.uploaded_by) == ("loaded", SUB)
    assert manifest.parts_total > 1


def test_a_big_file_with_a_bad_value_notes_it_in_its_one_manifest(parts_stack: Stack) -> None:
    parts_stack.put("big/users.csv", users_csv(range(400)), {"uploaded-by": "no spaces please"})
    parts_stack.run_all()
    assert parts_stack.run("parts") == []
    assert all("uploaded_by" not in item for item in parts_stack.table().values())
    manifest = parts_stack.manifests("database")["big/users.csv"]
    assert manifest.status == "loaded"
    assert manifest.uploaded_by is None
    assert len(manifest.lineage_notes) == 1


def test_a_file_uploaded_with_the_ingest_apis_form_names_the_caller(stack: Any) -> None:
    settings = IngestSettings(landing_bucket=LANDING, quarantine_bucket=stack.quarantine_bucket)
    body = users_csv(range(3))
    request = UploadRequest(file_name="users.csv", content_type="text/csv", size=len(body))
    form = presign(stack.s3, settings, Caller(sub=SUB), request)
    posted = requests.post(form.url, data=form.fields, files={"file": ("users.csv", body)}, timeout=10)
    assert posted.status_code in (200, 204), posted.text
    stack.run_all()

    assert {item["uploaded_by"]["S"] for item in stack.table().values()} == {SUB}
    assert stack.manifests("database")[form.key].uploaded_by == SUB
    assert lake_metadata(stack, form.key)["uploaded-by"] == SUB
