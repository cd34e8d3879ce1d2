"""Recovery commands: redrive moves every dead letter back and never drops one; twice is harmless."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline_toolkit import recovery


@pytest.fixture
def queues() -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="work")["QueueUrl"]
        dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
        yield sqs, queue, dlq


def bodies(sqs: Any, url: str) -> list[str]:
    found: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
        "Messages", []
    ):
        found += [message["Body"] for message in messages]
    return sorted(found)


def test_redrive_falls_back_to_copying_where_there_is_no_move_task(queues: tuple[Any, str, str]) -> None:
    sqs, queue, dlq = queues
    for n in range(23):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m{n:02d}")
    result = recovery.redrive(sqs, dlq, queue)
    assert (result.method, result.moved) == ("copy", 23)
    assert bodies(sqs, queue) == [f"m{n:02d}" for n in range(23)]
    assert bodies(sqs, dlq) == []
    assert recovery.redrive(sqs, dlq, queue).moved == 0  # twice: nothing left, nothing lost


def test_a_message_that_cannot_be_sent_stays_in_the_dead_letter_queue(
    queues: tuple[Any, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, queue, dlq = queues
    sqs.send_message(QueueUrl=dlq, MessageBody="a")
    sqs.send_message(QueueUrl=dlq, MessageBody="b")
    real = sqs.send_message_batch

    def half(QueueUrl: str, Entries: list[Any]) -> Any:  # noqa: N803 - boto3's names
        answer = real(QueueUrl=QueueUrl, Entries=Entries[:1])
        answer["Failed"] = [
            {"Id": e["Id"], "Message": "throttled", "SenderFault": False} for e in Entries[1:]
        ]
        return answer

    monkeypatch.setattr(sqs, "send_message_batch", half)
    with pytest.raises(RuntimeError, match="could not be sent"):
        recovery.copy_messages(sqs, dlq, queue, visibility=0)
    monkeypatch.undo()
    assert len(bodies(sqs, queue)) == 1
    assert len(bodies(sqs, dlq)) == 1  # the unsent one was not deleted


def test_an_explicit_move_task_is_not_silently_replaced(queues: tuple[Any, str, str]) -> None:
    sqs, queue, dlq = queues
    with pytest.raises(NotImplementedError):
        recovery.redrive(sqs, dlq, queue, method="move-task")
