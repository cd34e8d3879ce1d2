"""The time budget: no invocation runs into its timeout, and what it could not start comes back at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from pipeline.budget import DEFAULT_MARGIN_MS, Budget, OutOfTime, process_within_budget
from pipeline_toolkit.sqs_event import sqs_event


class Clock:
    """A Lambda context whose remaining time drops by ``step_ms`` each time it is asked."""

    def __init__(self, remaining_ms: int, step_ms: int) -> None:
        self.remaining_ms = remaining_ms
        self.step_ms = step_ms

    def get_remaining_time_in_millis(self) -> int:
        self.remaining_ms -= self.step_ms
        return self.remaining_ms


class Steps:
    """A Lambda context whose remaining time is each of ``values`` in turn, then the last one."""

    def __init__(self, values: list[int]) -> None:
        self.values = values

    def get_remaining_time_in_millis(self) -> int:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


@pytest.fixture
def queue() -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield sqs, url, arn


def receive(sqs: Any, url: str, count: int) -> list[Any]:
    for n in range(count):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    messages: list[Any] = []
    while len(messages) < count:
        messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])[
            "Messages"
        ]
    return messages


def test_messages_not_started_in_time_are_handed_back_and_visible_at_once(
    queue: tuple[Any, str, str],
) -> None:
    sqs, url, arn = queue
    messages = receive(sqs, url, 5)
    done: list[str] = []

    def handle(record: SQSRecord, _budget: Budget) -> None:
        done.append(record.body)

    # 10 s left, each of the first looks at the clock costs 3 s, margin 1.5 s: two messages start, three do
    # not; 1 s is left to release them.
    context = Steps([7_000, 4_000, 1_000])
    response = process_within_budget(
        sqs_event(messages, arn, "us-east-1"),
        handle,
        BatchProcessor(EventType.SQS),
        context,
        sqs,
        margin_ms=DEFAULT_MARGIN_MS,  # not the process's: that depends on the function timeout
    )
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert len(done) == 2
    assert failed == {m["MessageId"] for m in messages if m["Body"] not in done}
    # Visible again now, not after the 300 s visibility timeout.
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in again) == sorted(m["Body"] for m in messages if m["Body"] not in done)


def test_work_that_runs_out_of_time_mid_message_is_handed_back(queue: tuple[Any, str, str]) -> None:
    sqs, url, arn = queue
    messages = receive(sqs, url, 2)

    def handle(record: SQSRecord, budget: Budget) -> None:
        if record.body == "m1":
            budget.check()

    context = Clock(remaining_ms=4_000, step_ms=1_000)  # 3 s at the first look, 2 s, then 1 s < margin
    response = process_within_budget(
        sqs_event(messages, arn, "us-east-1"),
        handle,
        BatchProcessor(EventType.SQS),
        context,
        sqs,
        margin_ms=DEFAULT_MARGIN_MS,  # not the process's: that depends on the function timeout
    )
    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == [
        m["MessageId"] for m in messages if m["Body"] == "m1"
    ]


def test_with_too_little_time_left_handed_back_messages_are_not_released(
    queue: tuple[Any, str, str],
) -> None:
    """Releasing is a shortcut: with less than RELEASE_RESERVE_MS left the invocation returns at once, and the
    message comes back after its visibility timeout instead of the invocation timing out."""
    from pipeline.budget import RELEASE_RESERVE_MS

    sqs, url, arn = queue
    messages = receive(sqs, url, 1)

    def handle(record: SQSRecord, budget: Budget) -> None:
        raise OutOfTime("spent")

    context = Fixed(remaining_ms=RELEASE_RESERVE_MS - 1)
    processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_within_budget(sqs_event(messages, arn, "us-east-1"), handle, processor, context, sqs)
    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == [messages[0]["MessageId"]]
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []  # in flight


def test_the_queue_url_is_looked_up_once_per_environment(queue: tuple[Any, str, str]) -> None:
    from pipeline import budget

    sqs, url, arn = queue
    budget._queue_urls.clear()
    calls: list[str] = []
    original = sqs.get_queue_url

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs["QueueName"])
        return original(**kwargs)

    sqs.get_queue_url = counting
    assert budget.queue_url(arn, sqs) == url
    assert budget.queue_url(arn, sqs) == url
    assert calls == ["work"]
    budget._queue_urls.clear()


def test_without_a_context_there_is_no_deadline() -> None:
    Budget(None).check()
    with pytest.raises(OutOfTime):
        Budget(Clock(100, 0)).check()


def test_a_unit_of_work_starts_only_if_one_as_long_as_the_last_still_fits() -> None:
    budget = Budget(Clock(remaining_ms=5_000, step_ms=0), margin_ms=1_500)
    budget.check(reserve_ms=3_000)
    with pytest.raises(OutOfTime, match="5100 ms"):
        budget.check(reserve_ms=3_600)


class Fixed:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_pace_sizes_each_batch_to_a_quarter_of_the_time_left() -> None:
    from pipeline.loader import INITIAL_MS_PER_RECORD, MIN_BATCH, Pace

    clock = Fixed(remaining_ms=300_000)  # an AWS-sized invocation
    pace = Pace(Budget(clock, margin_ms=1_500), most=1_000)
    assert pace.next_size() == 1_000  # plenty of time: the configured size

    clock.remaining_ms = 3_500  # the embedded target's 5 s, part-way through
    first = pace.next_size()
    assert first == int(2_000 / (4 * INITIAL_MS_PER_RECORD))  # nothing measured yet: pessimistic
    pace.record(records=first, elapsed_ms=first * 10.0)  # a slow emulator: 10 ms per record
    assert pace.next_size() == 50
    assert pace.reserve_ms() == 2 * 50 * 10

    clock.remaining_ms = 1_600
    assert pace.next_size() == MIN_BATCH  # never below one BatchWriteItem
