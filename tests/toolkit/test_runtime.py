"""The runtime end to end: worker processes poll the emulator's queues and run the deployed handler."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.toolkit.support import HERE, TestFunction, invocations, queue_depth, wait_for

from pipeline_toolkit.clients import Clients
from pipeline_toolkit.runtime import LocalRuntime


@contextmanager
def runtime_for(clients: Clients, *functions: TestFunction, **options: object) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime.discover(
        clients.environment,
        [fn.name for fn in functions],
        pythonpath=[str(HERE)],
        wait_seconds=1,
        **options,
    )
    with runtime:
        yield runtime


def send(clients: Clients, fn: TestFunction, *bodies: str) -> None:
    for body in bodies:
        clients.sqs.send_message(QueueUrl=fn.queue_url, MessageBody=body)


def bodies_seen(fn: TestFunction) -> list[str]:
    return [record["body"] for call in invocations(fn.record_dir) for record in call["event"]["Records"]]


def test_a_message_reaches_the_deployed_handler_as_a_lambda_event(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(timeout=9)
    with runtime_for(clients, fn):
        send(clients, fn, "hello")
        wait_for(lambda: invocations(fn.record_dir))
        wait_for(lambda: queue_depth(clients, fn.queue_url) == 0)

    (call,) = invocations(fn.record_dir)
    (record,) = call["event"]["Records"]
    assert record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == fn.queue_arn
    assert record["awsRegion"] == clients.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    context = call["context"]
    assert context["function_name"] == fn.name
    assert context["memory_limit_in_mb"] == 256
    assert 0 < context["remaining_ms"] <= 9000
    assert call["pid"] != os.getpid()


def test_each_function_sees_only_its_own_environment(
    clients: Clients, deploy: Callable[..., TestFunction], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_DATALAKE_BUCKET", "must-not-leak-from-the-parent")
    first = deploy(environment={"ONLY_FIRST": "1"})
    second = deploy(environment={"ONLY_SECOND": "2"})
    with runtime_for(clients, first, second):
        send(clients, first, "a")
        send(clients, second, "b")
        wait_for(lambda: invocations(first.record_dir) and invocations(second.record_dir))

    env_first = invocations(first.record_dir)[0]["environ"]
    env_second = invocations(second.record_dir)[0]["environ"]
    assert env_first["ONLY_FIRST"] == "1"
    assert "ONLY_SECOND" not in env_first
    assert env_second["ONLY_SECOND"] == "2"
    assert "ONLY_FIRST" not in env_second
    for env, fn in ((env_first, first), (env_second, second)):
        assert "PIPELINE_DATALAKE_BUCKET" not in env
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == fn.name
        assert env["AWS_ENDPOINT_URL"] == clients.endpoint_url
        assert env["_HANDLER"] == "local_test_handlers.handler"
    assert invocations(first.record_dir)[0]["pid"] != invocations(second.record_dir)[0]["pid"]


def test_a_poison_message_ends_in_the_dlq_while_others_keep_flowing(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(visibility_timeout=1, max_receive_count=3, batch_size=1)
    with runtime_for(clients, fn):
        send(clients, fn, "fail", "ok-1", "ok-2", "ok-3")
        wait_for(lambda: queue_depth(clients, fn.dlq_url) == 1)
        wait_for(lambda: queue_depth(clients, fn.queue_url) == 0)

    seen = bodies_seen(fn)
    assert seen.count("fail") == 3  # maxReceiveCount attempts
    assert sorted(body for body in seen if body.startswith("ok")) == ["ok-1", "ok-2", "ok-3"]
    (dead,) = clients.sqs.receive_message(QueueUrl=fn.dlq_url, WaitTimeSeconds=1)["Messages"]
    assert dead["Body"] == "fail"


def test_a_raising_handler_fails_the_whole_batch(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(visibility_timeout=1, max_receive_count=2, batch_size=10, window=1)
    with runtime_for(clients, fn):
        send(clients, fn, "raise", "innocent")
        wait_for(lambda: queue_depth(clients, fn.dlq_url) == 2)

    assert bodies_seen(fn).count("innocent") == 2  # retried with its batch, never deleted


def test_a_timed_out_invocation_gets_a_fresh_environment(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(timeout=1, visibility_timeout=2, max_receive_count=1, batch_size=1)
    with runtime_for(clients, fn) as runtime:
        send(clients, fn, "sleep:30")
        wait_for(lambda: list(fn.record_dir.glob("*.started")))
        wait_for(lambda: runtime.workers[0].timeouts >= 1)
        send(clients, fn, "after")
        wait_for(lambda: "after" in bodies_seen(fn))
        wait_for(lambda: queue_depth(clients, fn.dlq_url) == 1)

    assert "sleep:30" not in bodies_seen(fn)  # it never completed
    assert runtime.workers[0].starts >= 2


def test_stopping_finishes_the_batch_in_hand(clients: Clients, deploy: Callable[..., TestFunction]) -> None:
    fn = deploy(timeout=10, visibility_timeout=300)
    runtime = LocalRuntime.discover(clients.environment, [fn.name], pythonpath=[str(HERE)], wait_seconds=1)
    runtime.start()
    try:
        send(clients, fn, "sleep:2")
        wait_for(lambda: list(fn.record_dir.glob("*.started")))
    finally:
        runtime.stop()

    assert bodies_seen(fn) == ["sleep:2"]  # completed, not cut short
    assert queue_depth(clients, fn.queue_url) == 0  # and deleted: nothing left in flight for 5 minutes
    assert all(worker.process is not None and worker.process.returncode == 0 for worker in runtime.workers)


def test_a_batch_outlasting_the_stop_deadline_is_killed_and_its_message_comes_back(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(timeout=60, visibility_timeout=3)
    runtime = LocalRuntime.discover(clients.environment, [fn.name], pythonpath=[str(HERE)], wait_seconds=1)
    runtime.start()
    try:
        send(clients, fn, "sleep:30")
        wait_for(lambda: list(fn.record_dir.glob("*.started")))
    finally:
        runtime.stop(deadline_seconds=1)

    assert [worker.process.returncode for worker in runtime.workers if worker.process] == [-signal.SIGKILL]
    assert "sleep:30" not in bodies_seen(fn)  # cut short, so not deleted: it comes back, visible again
    messages = clients.sqs.receive_message(QueueUrl=fn.queue_url, WaitTimeSeconds=10).get("Messages", [])
    assert [message["Body"] for message in messages] == ["sleep:30"]


def test_concurrency_is_capped_by_the_mappings_maximum(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(maximum_concurrency=2)
    with runtime_for(clients, fn, concurrency=3) as runtime:
        assert len(runtime.pids()) == 2
        send(clients, fn, *[f"m{i}" for i in range(6)])
        wait_for(lambda: queue_depth(clients, fn.queue_url) == 0)

    assert sorted(bodies_seen(fn)) == [f"m{i}" for i in range(6)]


def test_enabled_mappings_are_left_to_the_target(
    clients: Clients, deploy: Callable[..., TestFunction]
) -> None:
    fn = deploy(enabled=True)
    runtime = LocalRuntime.discover(clients.environment, [fn.name])

    assert runtime.workers == []


def test_worker_logs_go_to_files_when_asked(
    clients: Clients, deploy: Callable[..., TestFunction], tmp_path: Path
) -> None:
    fn = deploy()
    with runtime_for(clients, fn, log_dir=tmp_path / "logs"):
        send(clients, fn, "hello")
        wait_for(lambda: invocations(fn.record_dir))
        wait_for(lambda: queue_depth(clients, fn.queue_url) == 0)

    (log_file,) = (tmp_path / "logs").glob(f"{fn.name}-*.log")
    text = log_file.read_text()
    assert "START RequestId" in text
    assert "REPORT RequestId" in text
