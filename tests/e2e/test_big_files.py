"""End to end: a file big enough to need several parts, its re-upload, its replay, and its batch-mates.

The session stack's part size is small (``part_bytes`` in the embedded variables), so a file of a few hundred
KB takes the same path a multi-GB file takes on AWS: planned by the database loader, loaded in parts by the
part loader, added up into one manifest.
"""

from __future__ import annotations

import gzip
import json
import time

import pytest
from tests.e2e.support import Pipeline, unique

from pipeline_toolkit import recovery
from pipeline_toolkit.runtime import LocalRuntime
from pipeline_toolkit.s3_events import s3_event, s3_record, sns_notification

pytestmark = pytest.mark.e2e

ROWS = 6_000  # about 400 KB: two or more parts of 256 KiB


def big_csv(run: str, rows: int, note: str = "first") -> bytes:
    # Every tenth note is a quoted field holding a newline: a cut must never fall inside it.
    lines = ["UserId,FirstName,LastName,Email,Gender,Age"]
    for n in range(rows):
        last = f'"Last\n{n}"' if n % 10 == 0 else f"Last{n}"
        lines.append(f"{run}-{n},{note}{n},{last},user{n}@example.com,female,{20 + n % 60}")
    lines.append(f"{run}-bad,Bad,Row,not-an-email,female,200")
    return ("\n".join(lines) + "\n").encode()


def test_a_file_of_many_parts_loads_every_record_once(pipeline: Pipeline) -> None:
    run = unique("big")
    key = f"{run}/users.csv"
    file = pipeline.process(key, big_csv(run, ROWS))

    manifest = file.database
    assert manifest is not None
    assert manifest.parts_total >= 2
    assert manifest.parts_done == manifest.parts_total
    assert (manifest.records_read, manifest.records_loaded, manifest.records_rejected) == (ROWS + 1, ROWS, 1)
    assert manifest.status == "partial"
    # The reject keeps the original file's line number: the header, 6,000 records of which 600 take two lines.
    assert [error.line for error in manifest.first_errors] == [1 + ROWS + ROWS // 10 + 1]
    users = pipeline.users_with_prefix(f"{run}-")
    assert len(users) == ROWS
    assert users[f"{run}-10"]["last_name"] == "Last\n10"
    assert not pipeline.dead_letters("database-loader")
    assert not pipeline.dead_letters("part-loader")


def test_a_re_upload_updates_every_record_and_a_replay_writes_nothing(pipeline: Pipeline) -> None:
    run = unique("again")
    key = f"{run}/users.csv"
    pipeline.process(key, big_csv(run, ROWS))
    second = pipeline.process(key, big_csv(run, ROWS, note="second"))

    assert second.database is not None
    assert second.database.records_loaded == ROWS
    assert pipeline.users_with_prefix(f"{run}-")[f"{run}-7"]["first_name"] == "second7"

    # The very same version announced again, as a duplicate delivery would: skipped on its manifest, which
    # is therefore not even rewritten.
    manifest_key = f"manifests/database/{key}@{second.version}"
    s3 = pipeline.clients.s3
    before = s3.head_object(Bucket=pipeline.outputs.quarantine_bucket, Key=f"{manifest_key}.json")
    record = s3_record(pipeline.outputs.landing_bucket, key, version=second.version, minimal=True)
    queue = pipeline.outputs.queues["database-loader"].url
    pipeline.clients.sqs.send_message(QueueUrl=queue, MessageBody=sns_notification(s3_event(record)))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        attributes = pipeline.clients.sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if not any(int(value) for value in attributes.values()):
            break
        time.sleep(0.5)
    after = s3.head_object(Bucket=pipeline.outputs.quarantine_bucket, Key=f"{manifest_key}.json")
    assert after["LastModified"] == before["LastModified"]
    assert json.loads(pipeline.quarantine_object(f"{manifest_key}.json"))["status"] == "partial"


def test_small_files_sharing_a_batch_with_a_big_one_all_finish(pipeline: Pipeline) -> None:
    run = unique("mix")
    big = pipeline.drop(f"{run}/users-big.csv", big_csv(run, ROWS))
    small = [
        pipeline.drop(f"{run}/users-{n}.csv", f"UserId,Email\n{run}-s{n},s{n}@example.com\n".encode())
        for n in range(9)
    ]
    for key, version, dropped in [big, *small]:
        file = pipeline.wait(key, version, dropped)
        assert file.outcome in {"loaded", "partial"}, f"{key}: {file.outcome}"
    assert len(pipeline.users_with_prefix(f"{run}-s")) == 9
    assert not pipeline.dead_letters("database-loader")


def test_pipeline_replay_reaches_both_loaders_and_changes_nothing_twice(pipeline: Pipeline) -> None:
    run = unique("replay")
    key = f"{run}/users.csv"
    file = pipeline.process(key, b"UserId,Email,Age\n" + f"{run}-1,a@example.com,30\n".encode())
    bucket = pipeline.outputs.quarantine_bucket
    s3 = pipeline.clients.s3
    database = s3.head_object(Bucket=bucket, Key=f"manifests/database/{key}@{file.version}.json")
    lake = s3.head_object(Bucket=bucket, Key=f"manifests/datalake/{key}@{file.version}.json")
    user = pipeline.user(f"{run}-1")
    for _ in range(2):
        recovery.replay(
            s3,
            pipeline.clients.sns,
            landing_bucket=pipeline.outputs.landing_bucket,
            quarantine_bucket=bucket,
            topic_arn=pipeline.outputs.topic_arn,
            key=key,
            version=file.version,
        )
    # The lake loader saw the replays (its manifest was written again, saying the copy was unchanged)...
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        again = s3.head_object(Bucket=bucket, Key=f"manifests/datalake/{key}@{file.version}.json")
        if again["LastModified"] != lake["LastModified"] or again["ETag"] != lake["ETag"]:
            break
        time.sleep(0.5)
    manifest = json.loads(pipeline.quarantine_object(f"manifests/datalake/{key}@{file.version}.json"))
    assert manifest["lake_status"] == "unchanged"
    # ...the database loader skipped them on its final manifest, and the table holds the same item.
    after = s3.head_object(Bucket=bucket, Key=f"manifests/database/{key}@{file.version}.json")
    assert after["LastModified"] == database["LastModified"]
    assert pipeline.user(f"{run}-1") == user


def users_json_array(run: str, rows: int) -> bytes:
    records: list[object] = [
        {"UserId": f"{run}-{n}", "Email": f"user{n}@example.com", "Age": 20 + n % 60, "FirstName": f"F{n}"}
        for n in range(rows)
    ]
    records.append({"UserId": f"{run}-bad", "Email": "not-an-email"})
    return json.dumps(records, indent=1).encode()


def test_a_big_gzip_file_is_staged_then_loaded_in_parts(pipeline: Pipeline) -> None:
    run = unique("gzip")
    key = f"{run}/users.csv.gz"
    file = pipeline.process(key, gzip.compress(big_csv(run, ROWS)))

    manifest = file.database
    assert manifest is not None
    assert manifest.parts_total >= 2
    assert (manifest.records_read, manifest.records_loaded, manifest.records_rejected) == (ROWS + 1, ROWS, 1)
    assert [error.line for error in manifest.first_errors] == [1 + ROWS + ROWS // 10 + 1]
    assert len(pipeline.users_with_prefix(f"{run}-")) == ROWS
    staged = f"work/{key}@{file.version}/staged.csv"
    assert pipeline.quarantine_object(staged) == big_csv(run, ROWS)
    assert not pipeline.dead_letters("database-loader")
    assert not pipeline.dead_letters("part-loader")


def test_a_big_json_array_is_staged_as_json_lines_then_loaded_in_parts(pipeline: Pipeline) -> None:
    run = unique("array")
    key = f"{run}/users.json"
    body = users_json_array(run, ROWS)
    file = pipeline.process(key, body)

    manifest = file.database
    assert manifest is not None
    assert manifest.parts_total >= 2
    assert (manifest.records_read, manifest.records_loaded, manifest.records_rejected) == (ROWS + 1, ROWS, 1)
    # Numbered by its position in the array, as a whole-file load numbers it.
    assert [error.line for error in manifest.first_errors] == [ROWS + 1]
    users = pipeline.users_with_prefix(f"{run}-")
    assert len(users) == ROWS
    assert users[f"{run}-42"]["age"] == 20 + 42
    assert not pipeline.dead_letters("database-loader")
    assert not pipeline.dead_letters("part-loader")


def test_a_big_gzip_cut_short_loads_what_came_before_and_is_quarantined(pipeline: Pipeline) -> None:
    run = unique("cut")
    rows = 20_000
    packed = gzip.compress(big_csv(run, rows))
    key = f"{run}/users.csv.gz"
    file = pipeline.process(key, packed[: len(packed) // 2], timeout=300)

    manifest = file.database
    assert manifest is not None
    assert manifest.status == "quarantined"
    assert manifest.error is not None
    assert "truncated gzip" in manifest.error
    assert manifest.quarantined_file_key is not None
    # The records before the fault are loaded, exactly once each, and nothing after it.
    loaded = pipeline.users_with_prefix(f"{run}-")
    assert 0 < len(loaded) == manifest.records_loaded < rows
    numbers = sorted(int(user_id.rsplit("-", 1)[1]) for user_id in loaded)
    assert numbers == list(range(len(loaded)))
    assert not pipeline.dead_letters("database-loader")
    assert not pipeline.dead_letters("part-loader")


KILLED_VISIBILITY_SECONDS = 30


def test_a_part_loader_killed_mid_file_loses_nothing_and_counts_nothing_twice(pipeline: Pipeline) -> None:
    runtime = pipeline.runtime
    if runtime is None:
        pytest.skip("this target runs the functions itself: there is no worker process here to kill")
    sqs = pipeline.clients.sqs
    parts_queue = pipeline.outputs.queues["part-loader"].url
    # A killed invocation's message comes back only after the queue's visibility timeout, as on AWS: six
    # times the function timeout on the session's stack, minutes. Shortened for this test (messages
    # received from now on get it), then restored.
    visibility = sqs.get_queue_attributes(QueueUrl=parts_queue, AttributeNames=["VisibilityTimeout"])[
        "Attributes"
    ]["VisibilityTimeout"]
    sqs.set_queue_attributes(
        QueueUrl=parts_queue, Attributes={"VisibilityTimeout": str(KILLED_VISIBILITY_SECONDS)}
    )
    try:
        _kill_part_loaders_mid_file(pipeline, runtime)
    finally:
        sqs.set_queue_attributes(QueueUrl=parts_queue, Attributes={"VisibilityTimeout": visibility})


def _kill_part_loaders_mid_file(pipeline: Pipeline, runtime: LocalRuntime) -> None:
    run = unique("killed")
    rows = 20_000  # about 1.4 MB: six parts or more, each a few seconds of writes on the emulator
    key, version, dropped = pipeline.drop(f"{run}/users.csv", big_csv(run, rows))
    part_loader = pipeline.outputs.functions["part-loader"]
    results = f"work/{key}@{version}/parts/"
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline:
        listing = pipeline.clients.s3.list_objects_v2(
            Bucket=pipeline.outputs.quarantine_bucket, Prefix=results
        )
        done = listing.get("KeyCount", 0)
        if done >= 1:
            break
        time.sleep(0.2)
    assert done >= 1, "no part finished within two minutes"
    # SIGKILL, as Lambda ends a sandbox on timeout or OOM: no handler runs, the batch in hand is unsettled.
    # The sandbox is the worker process in process, the function's container in containers.
    killed = set(runtime.sandboxes(part_loader))
    assert runtime.kill_sandboxes(part_loader) >= 1

    file = pipeline.wait(key, version, dropped, timeout=420)

    manifest = file.database
    assert manifest is not None
    assert manifest.parts_done == manifest.parts_total > done
    assert (manifest.records_read, manifest.records_loaded, manifest.records_rejected) == (rows + 1, rows, 1)
    assert len(pipeline.users_with_prefix(f"{run}-")) == rows
    started_again = set(runtime.sandboxes(part_loader))
    assert started_again  # fresh environments took over
    assert not started_again & killed
    assert not pipeline.dead_letters("database-loader")
    assert not pipeline.dead_letters("part-loader")
