"""``pipeline send DATASET FILE|-``: records from JSON Lines or a JSON array, through the tracker, to the API.

The command is a user of :class:`pipeline_tracker.Tracker` like any app, with one difference: its batches'
idempotency keys derive from the run id, the dataset, the batch's number and its bytes, not from chance.
The same command run again on the same input (after a crash, a kill, a lost answer) cuts the same batches
under the same keys, so the API answers what landed already as a replay and nothing lands twice; the spool
resends what an interrupted run had sealed. ``--run-id`` sends the same records again on purpose, as new
batches. The tracker's journal (the open batch's records on disk) is off here: the input file is the journal.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ijson  # type: ignore[import-untyped]  # ships no type hints
from botocore.exceptions import BotoCoreError, ClientError

from pipeline_toolkit.outputs import StackOutputs
from pipeline_tracker import BatchOutcome, RetryPolicy, Tracker
from pipeline_tracker.tracker import DEFAULT_MAX_BYTES, DEFAULT_MAX_RECORDS

# Names of environment variables, not secrets.
TOKEN_ENV = "PIPELINE_TOKEN"  # noqa: S105
PASSWORD_ENV = "PIPELINE_PASSWORD"  # noqa: S105


class InputError(ValueError):
    """The input is neither JSON Lines nor a JSON array of objects; the message says where."""


class AccessError(RuntimeError):
    """No API address or no way to sign in; the message says what to pass."""


def api_access(
    *,
    url: str | None,
    token: str | None,
    username: str | None,
    gateway_url: str,
    outputs: StackOutputs | None,
    environment: Mapping[str, str],
) -> tuple[str, str]:
    """(API URL, bearer token): ``url``, else the local gateway of the running session, else the stack's
    ``api_endpoint``; ``token`` (or ``$PIPELINE_TOKEN``), else a password sign-in of ``username`` to the
    stack's user pool (the password from ``$PIPELINE_PASSWORD`` or a prompt, never from the command line)."""
    address = url or gateway_url or (outputs.api_endpoint if outputs else "")
    if not address:
        raise AccessError(
            "no API URL: pass --url, run `pipeline local up` (its session records the local gateway), "
            "or pass --outputs FILE of a stack with an api_endpoint"
        )
    bearer = token or os.environ.get(TOKEN_ENV)
    if bearer:
        return address, bearer
    if not username:
        raise AccessError(f"sign in: pass --username (password from ${PASSWORD_ENV} or a prompt) or --token")
    if outputs is None or not outputs.user_pool_client_id:
        raise AccessError(
            "signing in needs the stack's user pool client: run `pipeline local up` or pass --outputs"
        )
    password = os.environ.get(PASSWORD_ENV) or getpass.getpass(f"password of {username}: ")
    from pipeline_toolkit.gateway.local import sign_in  # noqa: PLC0415 - boto3's Cognito client, only here

    try:
        return address, sign_in(environment, outputs, username, password)
    except (ClientError, BotoCoreError) as exc:
        raise AccessError(f"signing in as {username} failed: {exc}") from None


def read_records(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    """The records of a JSON array (streamed: ijson) or of JSON Lines (one object per non-blank line)."""
    first = b""
    while True:
        chunk = stream.read(1)
        if not chunk:
            return
        if not chunk.isspace():
            first = chunk
            break
    if first == b"[":
        position = 0
        try:
            for position, value in enumerate(ijson.items(_Prepended(first, stream), "item", use_float=True)):
                if not isinstance(value, dict):
                    raise InputError(f"array element {position}: a record is a JSON object")
                yield value
        except ijson.JSONError as exc:
            raise InputError(f"not a JSON array (after element {position}): {exc}") from None
        return
    for number, line in enumerate(_lines(first, stream), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise InputError(f"line {number}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise InputError(f"line {number}: a record is a JSON object")
        yield value


class _Prepended:
    """A binary stream with one byte already read put back in front (for ijson)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes the stream's type with read(0): the byte stays put
            return b""
        head, self._head = self._head, b""
        if size < 0:
            return head + self._rest.read()
        return head + self._rest.read(max(size - len(head), 0))


def _lines(first: bytes, stream: IO[bytes]) -> Iterator[bytes]:
    head = first + stream.readline()
    yield head
    yield from stream


def batch_key(run_id: str, dataset: str, sequence: int, body: bytes) -> str:
    """The same batch of the same run: the same key, whatever process sends it."""
    digest = hashlib.sha256(f"{run_id}\n{dataset}\n{sequence}\n".encode() + body).hexdigest()
    return f"send-{digest[:40]}"


@dataclass
class SendReport:
    records: int = 0
    outcomes: list[BatchOutcome] = field(default_factory=list)
    input_error: str | None = None

    @property
    def accepted(self) -> int:
        return sum(o.accepted for o in self.outcomes if o.state == "delivered")

    @property
    def rejected(self) -> int:
        return sum(len(o.rejected) for o in self.outcomes if o.state == "delivered") + sum(
            o.records for o in self.outcomes if o.state == "refused"
        )

    @property
    def unsent(self) -> int:
        return sum(o.records for o in self.outcomes if o.state == "unsent")

    @property
    def replayed(self) -> int:
        return sum(1 for o in self.outcomes if o.replayed)

    @property
    def ok(self) -> bool:
        # An empty input is no failure: nothing was asked for.
        return self.input_error is None and all(
            o.state == "delivered" and not o.rejected for o in self.outcomes
        )


def send_records(
    records: Iterable[dict[str, Any]],
    *,
    url: str,
    token: str,
    dataset: str,
    spool_dir: Path | None,
    run_id: str = "",
    max_batch_records: int = DEFAULT_MAX_RECORDS,
    max_batch_bytes: int = DEFAULT_MAX_BYTES,
    retry: RetryPolicy | None = None,
) -> SendReport:
    """Send every record; the outcome of every batch, those an earlier run left in the spool included."""
    report = SendReport()
    tracker = Tracker(
        url,
        token,
        dataset=dataset,
        spool_dir=spool_dir,
        max_batch_records=max_batch_records,
        max_batch_bytes=max_batch_bytes,
        linger_seconds=None,  # a file is sent as fast as it is read: batches fill, flush() sends the rest
        retry=retry,
        key_factory=lambda name, sequence, body: batch_key(run_id, name, sequence, body),
        journal=False,
    )
    try:
        for record in records:
            tracker.track(record)
            report.records += 1
    except (InputError, TypeError, ValueError) as exc:  # a bad line, or a record too big for any batch
        report.input_error = (
            f"record {report.records + 1}: {exc}" if not isinstance(exc, InputError) else str(exc)
        )
    finally:
        # Even when the input turns out bad halfway: what was read is sent (and keyed as a rerun will key it).
        outcomes = tracker.close()
    # After an interrupted run a batch can go twice, from the spool and cut again from the input, under one
    # key: count it once, by the answer that landed it (a replay only if it had landed in an earlier run).
    by_key: dict[str, BatchOutcome] = {}
    for outcome in outcomes:
        kept = by_key.get(outcome.idempotency_key)
        if kept is None or not (kept.state == "delivered" and not kept.replayed):
            by_key[outcome.idempotency_key] = outcome
    report.outcomes.extend(by_key.values())
    return report


def describe(report: SendReport, dataset: str, url: str, spool_dir: Path | None) -> list[str]:
    """The report as lines for the terminal: the counts, then every rejected record and failed batch."""
    lines = [
        f"{report.records} record(s) of {dataset} read, {len(report.outcomes)} batch(es) to {url}: "
        f"{report.accepted} accepted, {report.rejected} rejected, {report.unsent} not sent"
        + (f" ({report.replayed} batch(es) had landed before: replayed)" if report.replayed else "")
    ]
    if report.input_error:
        lines.append(f"  input stopped: {report.input_error} (the records before it were sent)")
    for outcome in report.outcomes:
        for rejected in outcome.rejected:
            lines.append(f"  rejected {_short(rejected.record)}: {'; '.join(rejected.reasons)}")
        if outcome.state == "refused":
            where = f", kept in {outcome.failed_path}" if outcome.failed_path else ""
            lines.append(f"  batch {outcome.idempotency_key} refused: {outcome.error}{where}")
        elif outcome.state == "unsent":
            kept = f"kept in {spool_dir}, sent by the next run" if spool_dir else "lost (no --spool-dir)"
            lines.append(f"  batch {outcome.idempotency_key} not sent ({outcome.error}): {kept}")
    return lines


def _short(record: str, width: int = 100) -> str:
    return record if len(record) <= width else record[: width - 3] + "..."
