"""The poller against the emulator's queues, with a scripted invoker (no worker process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from tests.toolkit.support import TestFunction, queue_depth, wait_for

from pipeline_toolkit.clients import Clients
from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.deployment import read_deployment
from pipeline_toolkit.invokers import Invocation
from pipeline_toolkit.poller import Poller


class ScriptedInvoker:
    """Records every event; answers with what ``answer`` returns for it."""

    def __init__(self, answer: Callable[[dict[str, Any]], Invocation] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[LocalLambdaContext] = []
        self.answer = answer or (lambda _event: Invocation(ok=True, payload=None))

    def invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> Invocation:
        self.events.append(event)
        self.contexts.append(context)
        return self.answer(event)


def poller_for(
    clients: Clients, fn: TestFunction, invoker: ScriptedInvoker, stop: threading.Event | None = None
) -> Poller:
    (function,) = read_deployment(clients.awslambda, clients.sqs, [fn.name])
    return Poller(
        clients.sqs, function, function.mappings[0], invoker, stop or threading.Event(), wait_seconds=1
    )


def send(clients: Clients, fn: TestFunction, *bodies: str) -> None:
    for body in bodies:
        clients.sqs.send_message(QueueUrl=fn.queue_url, MessageBody=body)


def test_a_successful_batch_is_deleted(clients: Clients, deploy: Callable[..., TestFunction]) -> None:
    fn = deploy()
    send(clients, fn, "one", "two", "three")
    invoker = ScriptedInvoker()

    outcome = poller_for(clients, fn, invoker).poll_once()

    assert outcome is not None
    assert (outcome.received, outcome.deleted, outcome.failed) == (3, 3, 0)
    assert sorted(record["body"] for record in invoker.events[0]["Records"]) == ["one", "three", "two"]
    assert invoker.events[0]["Records"][0]["eventSourceARN"] == fn.queue_arn
    assert queue_depth(clients, fn.queue_url) == 0


def test_the_context_carries_the_deployed_function(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(timeout=7)
    send(clients, fn, "x")
    invoker = ScriptedInvoker()

    poller_for(clients, fn, invoker).poll_once()

    (context,) = invoker.contexts
    assert context.function_name == fn.name
    assert context.invoked_function_arn.endswith(f":function:{fn.name}")
    assert context.memory_limit_in_mb == 256
    assert 0 < context.get_remaining_time_in_millis() <= 7000


def test_reported_failures_stay_and_the_rest_is_deleted(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(visibility_timeout=60)
    send(clients, fn, "good", "bad")

    def fail_bad(event: dict[str, Any]) -> Invocation:
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]
        return Invocation(ok=True, payload={"batchItemFailures": failures})

    outcome = poller_for(clients, fn, ScriptedInvoker(fail_bad)).poll_once()

    assert outcome is not None
    assert (outcome.deleted, outcome.failed) == (1, 1)
    assert queue_depth(clients, fn.queue_url) == 1  # the failed one, in flight until its timeout


def test_without_report_batch_item_failures_the_answer_is_ignored(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(report_failures=False)
    send(clients, fn, "a", "b")

    def fail_all(event: dict[str, Any]) -> Invocation:
        return Invocation(
            ok=True,
            payload={"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]},
        )

    outcome = poller_for(clients, fn, ScriptedInvoker(fail_all)).poll_once()

    assert outcome is not None
    assert outcome.deleted == 2
    assert queue_depth(clients, fn.queue_url) == 0


def test_a_failed_invocation_fails_the_whole_batch(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy()
    send(clients, fn, "a", "b")

    outcome = poller_for(
        clients, fn, ScriptedInvoker(lambda _e: Invocation(ok=False, error_type="E"))
    ).poll_once()

    assert outcome is not None
    assert (outcome.deleted, outcome.failed) == (0, 2)
    assert queue_depth(clients, fn.queue_url) == 2


def test_repeated_failures_end_in_the_dead_letter_queue(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(visibility_timeout=1, max_receive_count=2)
    send(clients, fn, "poison")
    invoker = ScriptedInvoker(lambda _e: Invocation(ok=False, error_type="E"))
    poller = poller_for(clients, fn, invoker)

    wait_for(lambda: (poller.poll_once(), queue_depth(clients, fn.dlq_url) == 1)[1], timeout=30)

    assert len(invoker.events) == 2  # maxReceiveCount attempts, then the queue's redrive
    assert [e["Records"][0]["attributes"]["ApproximateReceiveCount"] for e in invoker.events] == ["1", "2"]
    assert queue_depth(clients, fn.queue_url) == 0


def test_a_batch_received_while_stopping_is_released_not_invoked(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(visibility_timeout=300)
    send(clients, fn, "late")
    stop = threading.Event()
    stop.set()
    invoker = ScriptedInvoker()

    outcome = poller_for(clients, fn, invoker, stop).poll_once()

    assert outcome is not None
    assert outcome.released == 1
    assert invoker.events == []
    # Visible again at once, although the queue's visibility timeout is five minutes.
    again = clients.sqs.receive_message(QueueUrl=fn.queue_url, WaitTimeSeconds=0)["Messages"]
    assert [message["Body"] for message in again] == ["late"]


def test_batches_larger_than_one_receive_are_gathered_within_the_window(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(batch_size=25, window=2)
    send(clients, fn, *[f"m{i}" for i in range(25)])
    invoker = ScriptedInvoker()

    outcome = poller_for(clients, fn, invoker).poll_once()

    assert outcome is not None
    assert outcome.received == 25
    assert len(invoker.events[0]["Records"]) == 25


def test_the_window_gathers_messages_that_arrive_during_it(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(batch_size=3, window=5)
    send(clients, fn, "first")

    def send_later() -> None:
        time.sleep(0.5)
        send(clients, fn, "second", "third")

    sender = threading.Thread(target=send_later)
    sender.start()
    invoker = ScriptedInvoker()
    outcome = poller_for(clients, fn, invoker).poll_once()
    sender.join()

    assert outcome is not None
    assert sorted(r["body"] for r in invoker.events[0]["Records"]) == ["first", "second", "third"]


def test_without_a_window_one_receive_makes_the_batch(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(batch_size=5, window=0)
    send(clients, fn, "only")
    invoker = ScriptedInvoker()

    outcome = poller_for(clients, fn, invoker).poll_once()

    assert outcome is not None
    assert outcome.received == 1


def test_retry_after_brings_a_failed_message_back_before_the_visibility_timeout(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(visibility_timeout=300, max_receive_count=5)
    send(clients, fn, "flaky")
    invoker = ScriptedInvoker(lambda _e: Invocation(ok=False, error_type="E"))
    (function,) = read_deployment(clients.awslambda, clients.sqs, [fn.name])
    poller = Poller(
        clients.sqs,
        function,
        function.mappings[0],
        invoker,
        threading.Event(),
        wait_seconds=1,
        retry_after_seconds=1,
    )

    wait_for(lambda: (poller.poll_once(), len(invoker.events) >= 2)[1], timeout=30)

    receive_counts = [
        event["Records"][0]["attributes"]["ApproximateReceiveCount"] for event in invoker.events
    ]
    assert receive_counts[:2] == ["1", "2"]
