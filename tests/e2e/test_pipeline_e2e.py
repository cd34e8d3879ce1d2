"""End to end: files dropped in the landing bucket, through S3 -> SNS -> SQS -> the deployed functions.

Every test drops files with boto3 and asserts only on what the stack holds afterwards: the data lake, the
table, the quarantine bucket and the dead-letter queues. Times are printed in the terminal summary.
"""

from __future__ import annotations

import json
import time

import pytest
from tests.e2e.support import Pipeline, csv_users, unique

from pipeline_toolkit.project import load_functions

pytestmark = pytest.mark.e2e

DATA_FIELDS = ("user_id", "first_name", "last_name", "email", "gender", "age")


def data_of(record: dict[str, object] | None) -> dict[str, object]:
    """A table item without its lineage attributes."""
    assert record is not None
    return {name: record.get(name) for name in DATA_FIELDS}


def test_csv_users_are_loaded_with_lineage_and_copied_to_the_lake(pipeline: Pipeline) -> None:
    run = unique()
    body = csv_users(run, [("1", "ada@example.com", 36), ("2", "alan@example.com", 41)])
    key = f"{run}/users.csv"

    file = pipeline.process(key, body)

    assert file.outcome == "loaded"
    assert file.database is not None
    assert (file.database.records_read, file.database.records_loaded, file.database.records_rejected) == (
        2,
        2,
        0,
    )
    ada = pipeline.user(f"{run}-1")
    assert ada is not None
    assert data_of(ada) == {
        "user_id": f"{run}-1",
        "first_name": "First1",
        "last_name": "Last1",
        "email": "ada@example.com",
        "gender": "female",
        "age": 36,
    }
    assert ada["source_key"] == key
    assert ada["source_version"] == file.version
    assert file.lake_key is not None
    assert file.lake_key.startswith("dataset=users/")
    assert pipeline.lake_object(file.lake_key) == body


def test_json_lines_users_are_loaded(pipeline: Pipeline) -> None:
    run = unique()
    records = [
        {"user_id": f"{run}-a", "email": "a@example.com", "age": 20},
        {"user_id": f"{run}-b", "email": "b@example.com", "first_name": "Bea"},
    ]
    body = "".join(json.dumps(record) + "\n" for record in records).encode()

    file = pipeline.process(f"{run}/users.jsonl", body)

    assert file.outcome == "loaded"
    assert set(pipeline.users_with_prefix(run)) == {f"{run}-a", f"{run}-b"}
    beatrice = pipeline.user(f"{run}-b")
    assert beatrice is not None
    assert beatrice["first_name"] == "Bea"


def test_bad_rows_are_rejected_with_reasons_and_the_good_ones_loaded(pipeline: Pipeline) -> None:
    run = unique()
    body = (
        "UserId,FirstName,LastName,Email,Gender,Age\n"
        f"{run}-ok,Good,Row,good@example.com,female,30\n"
        f"{run}-noemail,No,Email,,male,40\n"
        f"{run}-badage,Bad,Age,bad.age@example.com,male,abc\n"
    ).encode()

    file = pipeline.process(f"{run}/users-with-bad-rows.csv", body)

    assert file.outcome == "partial"
    assert set(pipeline.users_with_prefix(run)) == {f"{run}-ok"}
    database = file.database
    assert database is not None
    assert (database.records_loaded, database.records_rejected) == (1, 2)
    reasons = {error.line: " ".join(error.reasons) for error in database.first_errors}
    assert "email" in reasons[3]
    assert "age" in reasons[4]
    assert database.rejects_key is not None
    rejects = [json.loads(line) for line in pipeline.quarantine_object(database.rejects_key).splitlines()]
    assert sorted(reject["line"] for reject in rejects) == [3, 4]
    assert all(reject["reasons"] and reject["source_version"] == file.version for reject in rejects)


def test_a_broken_file_is_quarantined_whole(pipeline: Pipeline) -> None:
    run = unique()
    body = b"PK\x03\x04" + bytes(range(256)) * 4

    file = pipeline.process(f"{run}/users-broken.csv", body)

    assert file.outcome == "quarantined"
    database = file.database
    assert database is not None
    assert database.error
    assert database.records_loaded == 0
    assert database.quarantined_file_key is not None
    assert pipeline.quarantine_object(database.quarantined_file_key) == body
    assert file.datalake is not None  # the lake keeps an untouched copy of every file, readable or not


def test_a_dataset_without_a_table_goes_to_the_lake_and_is_validated(pipeline: Pipeline) -> None:
    run = unique()
    body = (
        b'{"event_id": "e-1", "type": "click", "timestamp": "2024-05-01T10:00:00Z"}\n'
        b'{"event_id": "e-2", "type": "click"}\n'
    )

    file = pipeline.process(f"{run}/events.jsonl", body)

    assert file.dataset == "events"
    assert file.loads_database  # validated by the database loader; its valid records go to the curated zone
    assert file.lake_key is not None
    assert file.lake_key.startswith("dataset=events/")
    assert pipeline.lake_object(file.lake_key) == body
    assert file.database is not None
    assert (file.database.status, file.database.records_loaded, file.database.records_rejected) == (
        "partial",
        1,
        1,
    )


def test_the_same_file_uploaded_twice_leaves_the_table_unchanged(pipeline: Pipeline) -> None:
    run = unique()
    body = csv_users(run, [("1", "one@example.com", 31), ("2", "two@example.com", 32)])
    key = f"{run}/users.csv"
    first = pipeline.process(key, body)
    before = {user_id: data_of(record) for user_id, record in pipeline.users_with_prefix(run).items()}

    second = pipeline.process(key, body)

    assert second.version != first.version
    after = {user_id: data_of(record) for user_id, record in pipeline.users_with_prefix(run).items()}
    assert after == before
    assert len(after) == 2
    assert second.lake_key == first.lake_key
    assert second.lake_key is not None
    assert pipeline.lake_object(second.lake_key) == body


def test_an_updated_file_updates_its_rows(pipeline: Pipeline) -> None:
    run = unique()
    key = f"{run}/users.csv"
    pipeline.process(key, csv_users(run, [("1", "old@example.com", 50), ("2", "same@example.com", 60)]))

    updated = pipeline.process(
        key,
        csv_users(
            run, [("1", "new@example.com", 51), ("2", "same@example.com", 60), ("3", "added@example.com", 7)]
        ),
    )

    users = pipeline.users_with_prefix(run)
    assert set(users) == {f"{run}-1", f"{run}-2", f"{run}-3"}
    assert (users[f"{run}-1"]["email"], users[f"{run}-1"]["age"]) == ("new@example.com", 51)
    assert users[f"{run}-1"]["source_version"] == updated.version
    assert users[f"{run}-2"]["email"] == "same@example.com"
    assert users[f"{run}-3"]["email"] == "added@example.com"


@pytest.mark.parametrize(
    "name",
    ["drop zone/users 2024 batch.csv", "users:2024-05-01T10:00:00.csv", "ünïcødé/users-naïve-日本語 ✓.csv"],
    ids=["spaces", "colons", "unicode"],
)
def test_keys_with_spaces_colons_and_unicode(pipeline: Pipeline, name: str) -> None:
    run = unique()
    key = f"{run}/{name}"

    file = pipeline.process(key, csv_users(run, [("1", "k@example.com", 1)]))

    assert file.outcome == "loaded"
    assert file.database is not None
    assert file.database.source_key == key
    assert file.lake_key is not None
    assert file.lake_key.endswith(name.rsplit("/", 1)[-1])
    record = pipeline.user(f"{run}-1")
    assert record is not None
    assert record["source_key"] == key


def test_a_poison_message_ends_in_each_dlq_while_other_files_keep_flowing(pipeline: Pipeline) -> None:
    run = unique()
    poison = f"not an S3 event notification ({run})"
    # The queues the topic delivers to (the part loader's work queue gets no S3 events).
    subscribed = [key for key, f in load_functions().items() if f.trigger == "landing-events"]
    before = {key: len(pipeline.dead_letters(key)) for key in subscribed}
    try:
        # Through the real fan-out: the topic delivers it to both queues, as it would a bad S3 event.
        pipeline.clients.session.client("sns", endpoint_url=pipeline.clients.endpoint_url).publish(
            TopicArn=pipeline.outputs.topic_arn, Message=poison
        )

        # Meanwhile other files are processed as usual.
        for index in range(2):
            file = pipeline.process(
                f"{run}/users-{index}.csv", csv_users(f"{run}-{index}", [("1", "x@example.com", 9)])
            )
            assert file.outcome == "loaded"

        deadline = time.monotonic() + 300
        dead: dict[str, list[dict[str, object]]] = {}
        while time.monotonic() < deadline:
            dead = {
                key: [m for m in pipeline.dead_letters(key) if poison in str(m.get("Body", ""))]
                for key in subscribed
            }
            if all(dead.values()):
                break
            time.sleep(1)
        assert all(len(messages) == 1 for messages in dead.values()), dead
        for key, messages in dead.items():
            attributes = messages[0]["Attributes"]
            assert isinstance(attributes, dict)
            # Received (and failed) maxReceiveCount times before the redrive moved it (peeks add to it).
            assert int(attributes["ApproximateReceiveCount"]) >= pipeline.max_receive_count(key)
            assert len(pipeline.dead_letters(key)) == before[key] + 1
    finally:
        # The poison stays only as long as this test: the other tests assert their DLQs are empty.
        for key in subscribed:
            pipeline.remove_dead_letters(key, poison)
