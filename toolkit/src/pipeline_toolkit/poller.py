"""Poll one SQS event source mapping the way Lambda's pollers do, and settle each batch.

Per batch: long-poll ``ReceiveMessage`` (up to the batch size, gathering for the batching window), invoke
the function once with Lambda's SQS event, delete the messages that succeeded and leave the failed ones in
flight, so that they come back after the queue's visibility timeout and the queue's redrive policy moves a
message that keeps failing to its dead-letter queue. A stop request never loses a message: a batch that was
received but not yet handed to the function is released at once (visibility timeout 0), and a batch being
processed is settled before the poller returns.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.invokers import Invocation, Invoker
from pipeline_toolkit.sqs_event import failed_message_ids, sqs_event

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from pipeline_toolkit.deployment import FunctionConfig, MappingConfig

log = logging.getLogger("pipeline_toolkit.poller")

SQS_MAX_MESSAGES_PER_RECEIVE = 10
SQS_MAX_WAIT_SECONDS = 20
SQS_MAX_ENTRIES_PER_BATCH_CALL = 10

# Wrapped around each invocation (e.g. to end the process when the function's timeout passes).
InvocationGuard = Callable[[LocalLambdaContext], AbstractContextManager[object]]


def no_guard(_context: LocalLambdaContext) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What happened to one received batch."""

    received: int
    deleted: int = 0
    failed: int = 0
    released: int = 0
    invocation: Invocation | None = None


class Poller:
    """The poller of one event source mapping, feeding one function through an :class:`Invoker`."""

    def __init__(
        self,
        sqs: SQSClient,
        function: FunctionConfig,
        mapping: MappingConfig,
        invoker: Invoker,
        stop: threading.Event,
        *,
        wait_seconds: int = 5,
        guard: InvocationGuard = no_guard,
        retry_after_seconds: int | None = None,
    ) -> None:
        self.sqs = sqs
        self.function = function
        self.mapping = mapping
        self.invoker = invoker
        self.stop = stop
        self.wait_seconds = max(0, min(wait_seconds, SQS_MAX_WAIT_SECONDS))
        self.guard = guard
        # None: a failed message comes back after the queue's visibility timeout, as with Lambda. A number: a
        # local shortcut that makes failed messages visible again after that many seconds instead.
        self.retry_after_seconds = retry_after_seconds

    # -- the loop ----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Poll until :attr:`stop` is set; the batch in hand is settled before returning."""
        log.info(
            "polling %s for %s (batch size %d, window %ds, visibility timeout %ds, max receives %s)",
            self.mapping.queue.name,
            self.function.name,
            self.mapping.batch_size,
            self.mapping.batching_window_seconds,
            self.mapping.queue.visibility_timeout,
            self.mapping.queue.max_receive_count,
        )
        while not self.stop.is_set():
            self.poll_once()

    def poll_once(self) -> BatchOutcome | None:
        """Receive one batch and settle it; ``None`` when the queue had nothing."""
        batch = self.collect()
        if not batch:
            return None
        if self.stop.is_set():
            self.release(batch)
            return BatchOutcome(received=len(batch), released=len(batch))
        return self.process(batch)

    # -- receiving ---------------------------------------------------------------------------------------

    def _receive(self, max_messages: int, wait_seconds: int) -> list[MessageTypeDef]:
        response = self.sqs.receive_message(
            QueueUrl=self.mapping.queue.url,
            MaxNumberOfMessages=max(1, min(max_messages, SQS_MAX_MESSAGES_PER_RECEIVE)),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def collect(self) -> list[MessageTypeDef]:
        """Long-poll for a batch: up to the batch size, gathering more until the batching window closes."""
        batch = self._receive(self.mapping.batch_size, self.wait_seconds)
        if not batch:
            return batch
        window_ends = time.monotonic() + self.mapping.batching_window_seconds
        while len(batch) < self.mapping.batch_size and not self.stop.is_set():
            remaining = window_ends - time.monotonic()
            if remaining <= 0:
                break
            wait = min(math.ceil(remaining), SQS_MAX_WAIT_SECONDS, max(self.wait_seconds, 1))
            batch.extend(self._receive(self.mapping.batch_size - len(batch), wait))
        return batch

    # -- settling ----------------------------------------------------------------------------------------

    def process(self, batch: Sequence[MessageTypeDef]) -> BatchOutcome:
        """Invoke the function with the batch, delete what succeeded, leave the rest for redelivery."""
        context = LocalLambdaContext(
            function_name=self.function.name,
            invoked_function_arn=self.function.arn,
            memory_limit_in_mb=self.function.memory_mb,
            timeout_seconds=self.function.timeout_seconds,
        )
        event = sqs_event(batch, self.mapping.queue.arn, self.function.region)
        request_id = context.aws_request_id
        log.info("START RequestId: %s Version: $LATEST (%d messages)", request_id, len(batch))
        started = time.monotonic()
        with self.guard(context):
            invocation = self.invoker.invoke(event, context)
        duration_ms = (time.monotonic() - started) * 1000

        ids = [message["MessageId"] for message in batch]
        if not invocation.ok:
            failed = set(ids)
            log.warning(
                "RequestId: %s failed: %s: %s", request_id, invocation.error_type, invocation.error_message
            )
        elif self.mapping.report_batch_item_failures:
            failed = failed_message_ids(invocation.payload, ids)
        else:
            failed = set()
        succeeded = [message for message in batch if message["MessageId"] not in failed]
        deleted = self.delete(succeeded)
        if failed and self.retry_after_seconds is not None:
            self.change_visibility(
                [message for message in batch if message["MessageId"] in failed], self.retry_after_seconds
            )
        log.info("END RequestId: %s", request_id)
        log.info(
            "REPORT RequestId: %s Duration: %.2f ms Messages: %d Deleted: %d Failed: %d",
            request_id,
            duration_ms,
            len(batch),
            deleted,
            len(failed),
        )
        return BatchOutcome(received=len(batch), deleted=deleted, failed=len(failed), invocation=invocation)

    def delete(self, messages: Sequence[MessageTypeDef]) -> int:
        """Delete settled messages; returns how many the queue accepted."""
        deleted = 0
        for start in range(0, len(messages), SQS_MAX_ENTRIES_PER_BATCH_CALL):
            chunk = messages[start : start + SQS_MAX_ENTRIES_PER_BATCH_CALL]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.mapping.queue.url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(chunk)
                ],
            )
            deleted += len(response.get("Successful", []))
            for failure in response.get("Failed", []):
                log.warning("could not delete a message: %s %s", failure.get("Code"), failure.get("Message"))
        return deleted

    def change_visibility(self, messages: Sequence[MessageTypeDef], seconds: int) -> None:
        for start in range(0, len(messages), SQS_MAX_ENTRIES_PER_BATCH_CALL):
            chunk = messages[start : start + SQS_MAX_ENTRIES_PER_BATCH_CALL]
            response = self.sqs.change_message_visibility_batch(
                QueueUrl=self.mapping.queue.url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": message["ReceiptHandle"],
                        "VisibilityTimeout": seconds,
                    }
                    for index, message in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                log.warning("could not change a message's visibility: %s", failure.get("Message"))

    def release(self, messages: Sequence[MessageTypeDef]) -> None:
        """Make received but unprocessed messages visible again at once (used when stopping)."""
        self.change_visibility(messages, 0)
        log.info("released %d unprocessed message(s) back to %s", len(messages), self.mapping.queue.name)
