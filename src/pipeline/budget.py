"""No invocation runs into its timeout: a handler stops taking new work before the time is up.

Lambda ends an invocation that outlives its timeout and fails its whole batch, so one slow message would
take every batch-mate down with it. Instead the handler watches ``context.get_remaining_time_in_millis()``:

- a message not started once the remaining time falls below the safety margin is handed back untried: it is
  reported as a batch item failure *and* made visible again at once (``ChangeMessageVisibility`` to 0), so
  it is retried by the next invocation instead of after the queue's visibility timeout;
- long work inside one message checks :meth:`Budget.check` between batches and stops with
  :class:`OutOfTime`; that message is handed back the same way, and its writes so far are idempotent.

Messages that finished are deleted by Lambda as usual (partial batch response).

The SDK is held to the same budget (see :mod:`pipeline.clients`): one attempt's socket timeouts are a
fraction of the function's timeout (:class:`AttemptTimeouts`), the margin holds at least one attempt's worst
case, and a retry is made only when it can finish, worst case, before the deadline
(:func:`retry_fits`); otherwise the call raises :class:`OutOfTime` and its message is handed back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

DEFAULT_MARGIN_MS = 1_500
"""Stop taking work when less than this is left: enough to settle the batch and write a manifest."""
RELEASE_RESERVE_MS = 750
"""Release handed-back messages only while this much is left: releasing is a shortcut (the message comes back
after its visibility timeout anyway), never worth running the invocation into its timeout for."""
SQS_BATCH_LIMIT = 10
FUNCTION_TIMEOUT_ENV = "PIPELINE_FUNCTION_TIMEOUT_SECONDS"
"""Set by Terraform on every function: Lambda tells a function its remaining time, not its timeout."""


class OutOfTime(RuntimeError):  # noqa: N818 - reads as what happened
    """The invocation's time budget ran out before this message's work was done; it will be retried."""


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Budget:
    """The time left in one invocation, less a safety margin."""

    context: RemainingTime | None
    margin_ms: int = DEFAULT_MARGIN_MS

    def remaining_ms(self) -> int:
        # Without a context (a direct call, a test) there is no deadline.
        return self.context.get_remaining_time_in_millis() if self.context is not None else 1 << 62

    @property
    def exhausted(self) -> bool:
        return self.remaining_ms() < self.margin_ms

    def check(self, reserve_ms: int = 0) -> None:
        """Raise :class:`OutOfTime` unless the margin plus ``reserve_ms`` (what the next unit of work is
        expected to take, e.g. the last one's duration) is still left. Call between units of work."""
        if self.remaining_ms() < self.margin_ms + reserve_ms:
            raise OutOfTime(f"less than {self.margin_ms + reserve_ms} ms left in this invocation")


@dataclass(frozen=True, slots=True)
class AttemptTimeouts:
    """The socket timeouts of one SDK attempt, a fraction of the function's timeout.

    The SDK's own defaults (60 s each) let one hung connection outlive a whole invocation; here an attempt
    that hangs fails in a fifth of it, and is retried while :func:`retry_fits`. The caps keep a long
    function's attempts at what a healthy AWS service never needs (DynamoDB and S3 answer in milliseconds).
    """

    connect_s: float = 2.0
    read_s: float = 10.0

    @classmethod
    def for_function(cls, timeout_s: float | None) -> AttemptTimeouts:
        if timeout_s is None:  # not in a function (a direct call, a test): the caps
            return cls()
        return cls(connect_s=min(2.0, timeout_s * 0.1), read_s=min(10.0, timeout_s * 0.2))

    @classmethod
    def from_env(cls) -> AttemptTimeouts:
        value = os.environ.get(FUNCTION_TIMEOUT_ENV, "")
        try:
            timeout_s = float(value) if value else None
        except ValueError:
            raise ValueError(f"{FUNCTION_TIMEOUT_ENV} must be a number of seconds, not {value!r}") from None
        return cls.for_function(timeout_s)

    @property
    def worst_ms(self) -> int:
        """The longest one attempt can take before its socket gives up."""
        return int((self.connect_s + self.read_s) * 1000)


ATTEMPT = AttemptTimeouts.from_env()
MARGIN_MS = max(DEFAULT_MARGIN_MS, ATTEMPT.worst_ms)
"""The margin of this process's invocations: an attempt started just before it still ends in time."""

_current: Budget | None = None
"""The budget of the invocation in progress (one at a time per process, as in Lambda); read from the SDK's
retry hook, in whichever thread the call runs."""


def current() -> Budget | None:
    return _current


@contextmanager
def active(budget: Budget) -> Iterator[Budget]:
    """Make ``budget`` the one the SDK's retries answer to, for the length of one invocation."""
    global _current  # noqa: PLW0603 - the SDK's retry hook has no other way to learn the deadline
    _current = budget
    try:
        yield budget
    finally:
        _current = None


def retry_fits(delay_s: float, budget: Budget | None = None) -> None:
    """Raise :class:`OutOfTime` unless a retry after ``delay_s`` can finish, worst case, in time."""
    budget = budget if budget is not None else _current
    if budget is None:
        return
    left_ms = budget.remaining_ms() - int(delay_s * 1000)
    if left_ms < ATTEMPT.worst_ms:
        raise OutOfTime(
            f"no time for a retry: {left_ms} ms would be left after its {delay_s:.2f} s backoff,"
            f" one attempt may take {ATTEMPT.worst_ms} ms"
        )


_queue_urls: dict[str, str] = {}


def queue_url(arn: str, sqs: SQSClient) -> str:
    """The URL of the queue an event source ARN names (``arn:aws:sqs:<region>:<account>:<name>``), looked up
    once per execution environment (a warm invocation's hand-back then costs one request, not two)."""
    if arn not in _queue_urls:
        _, _, _, _, account, name = arn.split(":", 5)
        _queue_urls[arn] = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    return _queue_urls[arn]


def release(sqs: SQSClient, records: Sequence[SQSRecord]) -> None:
    """Make handed-back messages visible again at once (they are retried by the next invocation)."""
    try:
        _release(sqs, records)
    except OutOfTime:
        # A retry would not fit: the messages still come back, after the queue's visibility timeout.
        log.warning("no time left to release %d message(s)", len(records))


def _release(sqs: SQSClient, records: Sequence[SQSRecord]) -> None:
    by_queue: dict[str, list[SQSRecord]] = {}
    for record in records:
        by_queue.setdefault(record.event_source_arn, []).append(record)
    for arn, queued in by_queue.items():
        url = queue_url(arn, sqs)
        for start in range(0, len(queued), SQS_BATCH_LIMIT):
            chunk = queued[start : start + SQS_BATCH_LIMIT]
            response = sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": record.receipt_handle, "VisibilityTimeout": 0}
                    for index, record in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                # Not fatal: the message still comes back, after the queue's visibility timeout.
                log.warning("could not release a message: %s", failure.get("Message"))


def process_within_budget(
    event: dict[str, Any],
    record_handler: Callable[[SQSRecord, Budget], None],
    processor: BatchProcessor,
    context: Any,
    sqs: SQSClient,
    *,
    margin_ms: int = MARGIN_MS,
) -> dict[str, Any]:
    """Powertools' partial batch processing, within the invocation's time budget (see the module)."""
    with active(Budget(context, margin_ms)) as budget:
        return _process(event, record_handler, processor, context, sqs=sqs, budget=budget)


def _process(
    event: dict[str, Any],
    record_handler: Callable[[SQSRecord, Budget], None],
    processor: BatchProcessor,
    context: Any,
    *,
    sqs: SQSClient,
    budget: Budget,
) -> dict[str, Any]:
    handed_back: list[SQSRecord] = []

    def guarded(record: SQSRecord) -> None:
        if budget.exhausted:
            handed_back.append(record)
            raise OutOfTime("not started: the invocation's time budget is spent")
        try:
            record_handler(record, budget)
        except OutOfTime:
            handed_back.append(record)
            raise

    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=guarded, processor=processor, context=context
    )
    if handed_back:
        if budget.remaining_ms() >= RELEASE_RESERVE_MS:
            log.warning("handing back %d message(s) for the time budget", len(handed_back))
            release(sqs, handed_back)
        else:
            log.warning(
                "handing back %d message(s) for the time budget; too little time left to release them: "
                "they come back after their visibility timeout",
                len(handed_back),
            )
    return response
