"""The tracker: records in, batches to ``POST /events/{dataset}`` out, each landing exactly once.

``track()`` only buffers (and journals, with a spool): one background thread sends sealed batches in order.
A batch gets its idempotency key when it is sealed and keeps it for every attempt, in this process or, through
the spool, in the next one, so a retry whose first attempt did land is answered as a replay and lands
nothing twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random as random_module
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import urllib3

from pipeline_tracker.retry import AUTH_STATUSES, RetryPolicy, is_retryable, parse_retry_after
from pipeline_tracker.spool import Batch, Journal, Spool

log = logging.getLogger("pipeline_tracker")

#: The API's own bounds: 10,000 records and (by default, ``events_max_bytes``) 1 MiB per request body.
API_MAX_RECORDS = 10_000
API_DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_RECORDS = 500
DEFAULT_MAX_BYTES = 512 << 10  # half the API's default limit: room for a deployment that lowers it a little
MAX_KEY_LENGTH = 128  # the API's Idempotency-Key: 8-128 of [A-Za-z0-9._:-]
DEFAULT_TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)
USER_AGENT = "pipeline-tracker/0.1"

State = Literal["delivered", "refused", "unsent"]
TokenSource = str | Callable[[], str]
KeyFactory = Callable[[str, int, bytes], str]


class TrackerClosedError(RuntimeError):
    """``track()`` after ``close()``."""


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    index: int  # 0-based position in its batch, as the API numbers it
    reasons: list[str]
    record: str  # the record's JSON line as it was sent


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of one batch.

    ``delivered``: a 2xx (``accepted`` records landed; ``rejected`` ones, with the API's reasons, did not).
    ``refused``: a 4xx that retrying cannot change (``status``, ``error``, and for a 422 of the records every
    rejected one); the batch was moved to the spool's ``failed/``. (A 413 of several records is none of
    these: they are sent as two halves instead, with an outcome each.) ``unsent``: no 2xx after every attempt,
    or 401/403 (the credentials, not the batch): it stays pending and is sent again at the next ``flush()``,
    or by the next process using the spool.
    """

    state: State
    dataset: str
    idempotency_key: str
    records: int
    attempts: int
    status: int | None = None
    accepted: int = 0
    rejected: tuple[RejectedRecord, ...] = ()
    replayed: bool = False
    key: str | None = None
    error: str | None = None
    failed_path: Path | None = None


@dataclass
class _Buffer:
    dataset: str
    started: float
    journal: Journal | None
    lines: list[bytes] = field(default_factory=list)
    size: int = 0


def encode(record: Mapping[str, Any]) -> bytes:
    """One record as its NDJSON line (without the newline). JSON escapes newlines inside strings."""
    if not isinstance(record, Mapping):
        raise TypeError(f"a record is a JSON object (a mapping), not {type(record).__name__}")
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def random_key(_dataset: str, _sequence: int, _body: bytes) -> str:
    return str(uuid.uuid4())


class Tracker:
    """Send records to the ingest API; see the package README for the guarantees.

    ``token`` is a string or a callable returning a fresh one (called for every attempt). ``spool_dir``
    makes it durable: sealed batches and the open batch's records are on disk until the API took them.
    ``sleep`` and ``random`` are the backoff's clock and dice (tests inject them).
    """

    def __init__(
        self,
        url: str,
        token: TokenSource,
        *,
        dataset: str | None = None,
        spool_dir: Path | str | None = None,
        max_batch_records: int = DEFAULT_MAX_RECORDS,
        max_batch_bytes: int = DEFAULT_MAX_BYTES,
        linger_seconds: float | None = 5.0,
        retry: RetryPolicy | None = None,
        timeout: urllib3.Timeout | float = DEFAULT_TIMEOUT,
        on_outcome: Callable[[BatchOutcome], None] | None = None,
        key_factory: KeyFactory = random_key,
        journal: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random_module.random,
        http: urllib3.PoolManager | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the API URL must be http(s): {url!r}")
        if not 1 <= max_batch_records <= API_MAX_RECORDS:
            raise ValueError(f"max_batch_records must be 1-{API_MAX_RECORDS}")
        if max_batch_bytes < 2:
            raise ValueError("max_batch_bytes is too small for any record")
        self._url = url.rstrip("/")
        self._token = token
        self._dataset = dataset
        self._max_records = max_batch_records
        self._max_bytes = max_batch_bytes
        self._linger = linger_seconds
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._on_outcome = on_outcome
        self._key_factory = key_factory
        self._sleep = sleep
        self._random = random
        self._http = http or urllib3.PoolManager(maxsize=2)
        self._owns_http = http is None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._buffers: dict[str, _Buffer] = {}
        self._queue: deque[Batch] = deque()
        self._unsent: list[Batch] = []
        self._outcomes: list[BatchOutcome] = []
        self._in_flight = 0
        self._sealed = 0
        self._accepting = True  # False from close() on: track() refuses
        self._closing = False  # True once close() has flushed: the sender ends
        self._closed = False
        self._spool = Spool(Path(spool_dir)) if spool_dir is not None else None
        self._journal = journal and self._spool is not None
        if self._spool is not None:
            self._resume(self._spool)
        self._sender = threading.Thread(target=self._run, name="pipeline-tracker-sender", daemon=True)
        self._sender.start()

    # -- the caller's side -------------------------------------------------------------------------------

    def track(self, record: Mapping[str, Any], dataset: str | None = None) -> None:
        """Buffer one record of ``dataset`` (default: the tracker's). Raises at once for what can never be
        sent: not a JSON object, not serialisable, bigger alone than a batch may be."""
        name = dataset or self._dataset
        if not name:
            raise ValueError("no dataset: pass one to track() or to Tracker(dataset=...)")
        line = encode(record)
        if len(line) + 1 > self._max_bytes:
            raise ValueError(f"a record of {len(line)} bytes does not fit a batch of {self._max_bytes} bytes")
        with self._lock:
            if not self._accepting:
                raise TrackerClosedError("the tracker is closed")
            buffer = self._buffers.get(name)
            if buffer is not None and buffer.size + len(line) + 1 > self._max_bytes:
                self._seal(buffer)
                buffer = None
            if buffer is None:
                journal = (
                    self._spool.open_journal(name) if self._spool is not None and self._journal else None
                )
                buffer = self._buffers[name] = _Buffer(name, time.monotonic(), journal)
            if buffer.journal is not None:
                buffer.journal.append(line)
            buffer.lines.append(line)
            buffer.size += len(line) + 1
            if len(buffer.lines) >= self._max_records:
                self._seal(buffer)
            elif len(buffer.lines) == 1:
                self._changed.notify_all()  # the sender times the linger from the first record

    def flush(self, timeout: float | None = None) -> list[BatchOutcome]:
        """Seal what is buffered, send it and every batch still unsent (one more round of attempts for
        those), and wait; returns the outcomes of every batch finished since the last flush."""
        if threading.current_thread() is self._sender:
            raise RuntimeError("flush() from on_outcome would wait for itself")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            for buffer in list(self._buffers.values()):
                self._seal(buffer)
            self._queue.extend(self._unsent)
            self._unsent.clear()
            self._changed.notify_all()
            while (self._queue or self._in_flight) and self._sender.is_alive():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._changed.wait(remaining)
            outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def close(self, timeout: float | None = None) -> list[BatchOutcome]:
        """Flush, then stop the sender. Batches still unsent stay in the spool for the next process (without
        a spool they are lost, and their outcomes say ``unsent``)."""
        if self._closed:
            return []
        with self._lock:
            # No record may slip in between the last flush and the sender's end, where nothing would send it.
            self._accepting = False
        outcomes = self.flush(timeout)
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        self._sender.join(timeout)
        with self._lock:
            outcomes.extend(self._outcomes)
            self._outcomes = []
        if self._spool is not None:
            self._spool.close()
        if self._owns_http:
            self._http.clear()
        self._closed = True
        return outcomes

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Batches sealed but not finished, and records still buffered (as batches to be)."""
        with self._lock:
            return len(self._queue) + self._in_flight + len(self._unsent) + len(self._buffers)

    # -- batches -----------------------------------------------------------------------------------------

    def _resume(self, spool: Spool) -> None:
        """What an earlier process left: its sealed batches first, then its open batches' journals."""
        pending = spool.pending()
        sealed = {batch.journal_id for batch in pending if batch.journal_id}
        self._queue.extend(pending)
        for journal_id, dataset, lines in spool.orphaned_journals(sealed):
            if lines:
                body = b"".join(line + b"\n" for line in lines)
                batch = Batch(dataset, self._new_key(dataset, body), body, len(lines), journal_id)
                spool.save(batch)
                self._queue.append(batch)
            spool.journal_path(journal_id).unlink(missing_ok=True)
        if self._queue:
            log.info("resending %d batch(es) from the spool %s", len(self._queue), spool.directory)

    def _new_key(self, dataset: str, body: bytes) -> str:
        key = self._key_factory(dataset, self._sealed, body)
        self._sealed += 1
        return key

    def _seal(self, buffer: _Buffer) -> None:
        """Under the lock: the buffer becomes a batch with its key, on disk before its journal goes. If the
        spool cannot take it (a full disk), the buffer stays as it is and the error goes to the caller."""
        if not buffer.lines:
            del self._buffers[buffer.dataset]
            if buffer.journal is not None:
                buffer.journal.discard()
            return
        body = b"".join(line + b"\n" for line in buffer.lines)
        journal_id = buffer.journal.journal_id if buffer.journal is not None else None
        batch = Batch(
            buffer.dataset, self._new_key(buffer.dataset, body), body, len(buffer.lines), journal_id
        )
        if self._spool is not None:
            self._spool.save(batch)
        del self._buffers[buffer.dataset]
        if buffer.journal is not None:
            buffer.journal.discard()
        self._queue.append(batch)
        self._changed.notify_all()

    # -- the sender's side -------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                batch = self._next_batch()
                if batch is None:
                    return
                self._in_flight = 1
            try:
                outcome = self._deliver(batch)
            except Exception as exc:  # a bug must not leave flush() waiting forever: the batch stays unsent
                log.exception("sending batch %s failed", batch.idempotency_key)
                outcome = self._outcome("unsent", batch, 0, error=f"{type(exc).__name__}: {exc}")
            with self._lock:
                if outcome.status == 413 and batch.records > 1:
                    # Bigger than this deployment takes (it may limit bodies below our batch size): nothing
                    # landed, so the halves go instead, under keys derived from this one.
                    self._split(batch)
                    self._in_flight = 0
                    self._changed.notify_all()
                    continue
                outcome = self._settle(batch, outcome)
                self._outcomes.append(outcome)
                self._in_flight = 0
                self._changed.notify_all()
            if self._on_outcome is not None:
                try:
                    self._on_outcome(outcome)
                except Exception:
                    log.exception("on_outcome raised")

    def _next_batch(self) -> Batch | None:
        """Under the lock: the next batch to send, sealing buffers that lingered long enough; None: stop."""
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._closing:
                return None
            wait: float | None = None
            if self._linger is not None and self._buffers:
                now = time.monotonic()
                for buffer in list(self._buffers.values()):
                    if now - buffer.started >= self._linger:
                        self._seal(buffer)
                if self._queue:
                    continue
                wait = min(self._linger - (now - buffer.started) for buffer in self._buffers.values())
            self._changed.wait(wait)

    def _split(self, batch: Batch) -> None:
        """Under the lock: ``batch`` becomes its two halves, first in the queue, on disk before it goes.

        The halves' keys derive from the batch's (``<key>.1``, ``<key>.2``): a process that dies between
        the two steps resends the whole batch, gets the same 413 and the same halves, which the API then
        answers as replays where they landed."""
        lines = batch.lines()
        middle = len(lines) // 2
        stem = batch.idempotency_key
        if len(stem) > MAX_KEY_LENGTH - 2:  # split often enough to outgrow the API's 128 characters
            stem = hashlib.sha256(stem.encode()).hexdigest()[:64]
        halves = [
            Batch(
                batch.dataset,
                f"{stem}.{number}",
                b"".join(line + b"\n" for line in part),
                len(part),
            )
            for number, part in ((1, lines[:middle]), (2, lines[middle:]))
        ]
        log.info("batch %s: 413, sent as two halves", batch.idempotency_key)
        if self._spool is not None:
            for half in halves:
                self._spool.save(half)
            self._spool.remove(batch)
        self._queue.extendleft(reversed(halves))

    def _settle(self, batch: Batch, outcome: BatchOutcome) -> BatchOutcome:
        """Under the lock: the spool follows the outcome (removed only after a 2xx)."""
        if outcome.state == "delivered":
            if self._spool is not None:
                self._spool.remove(batch)
        elif outcome.state == "refused":
            if self._spool is not None:
                answer = {"error": outcome.error, "rejected": [r.index for r in outcome.rejected]}
                failed = self._spool.fail(batch, outcome.status or 0, answer)
                outcome = replace(outcome, failed_path=failed)
            log.error(
                "batch %s of %s refused: %s", batch.idempotency_key, batch.dataset, outcome.error or "?"
            )
        else:
            self._unsent.append(batch)
            log.warning(
                "batch %s of %s not sent (%s); kept for the next flush",
                batch.idempotency_key,
                batch.dataset,
                outcome.error,
            )
        return outcome

    def _headers(self, batch: Batch) -> dict[str, str]:
        token = self._token() if callable(self._token) else self._token
        return {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-ndjson",
            "Idempotency-Key": batch.idempotency_key,
            "User-Agent": USER_AGENT,
        }

    def _deliver(self, batch: Batch) -> BatchOutcome:
        """Attempts until a 2xx, a final answer or the policy's last attempt; the same key every time."""
        url = f"{self._url}/events/{quote(batch.dataset, safe='')}"
        retry_after: float | None = None
        error = "not attempted"
        status: int | None = None
        attempt = 0
        for attempt in range(1, self._retry.max_attempts + 1):
            if attempt > 1:
                self._sleep(self._retry.delay(attempt - 1, self._random, retry_after))
            retry_after = None
            try:
                response = self._http.request(
                    "POST",
                    url,
                    body=batch.body,
                    headers=self._headers(batch),
                    retries=False,  # our loop retries, with the spool in mind
                    redirect=False,
                    timeout=self._timeout,
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                # Refused, reset, timed out, cut mid-answer: the batch may or may not have landed; the same
                # key makes trying again safe either way.
                status, error = None, f"{type(exc).__name__}: {exc}"
                log.info("batch %s attempt %d: %s", batch.idempotency_key, attempt, error)
                continue
            status = response.status
            answer = _json(response.data)
            if 200 <= status < 300:
                return self._delivered(batch, attempt, status, answer, response.headers)
            error = f"HTTP {status}: {_message(answer)}"
            if is_retryable(status):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                log.info("batch %s attempt %d: %s", batch.idempotency_key, attempt, error)
                continue
            if status == 409 and "in progress" in error:
                # The API's answer while another attempt of this very batch is landing (an earlier attempt
                # that timed out on our side): retrying gets the replay.
                log.info("batch %s attempt %d: %s", batch.idempotency_key, attempt, error)
                continue
            if status in AUTH_STATUSES:
                return self._outcome("unsent", batch, attempt, status=status, error=error)
            return self._outcome(
                "refused", batch, attempt, status=status, error=error, rejected=_rejected(batch, answer)
            )
        return self._outcome("unsent", batch, attempt, status=status, error=error)

    def _delivered(
        self, batch: Batch, attempt: int, status: int, answer: Any, headers: Mapping[str, str]
    ) -> BatchOutcome:
        result = answer if isinstance(answer, dict) else {}
        rejected = _rejected(batch, result)
        return self._outcome(
            "delivered",
            batch,
            attempt,
            status=status,
            accepted=int(result.get("records_accepted", batch.records - len(rejected))),
            rejected=rejected,
            replayed=headers.get("Idempotent-Replayed", "").lower() == "true",
            key=result.get("key"),
        )

    @staticmethod
    def _outcome(state: State, batch: Batch, attempts: int, **fields: Any) -> BatchOutcome:
        return BatchOutcome(
            state=state,
            dataset=batch.dataset,
            idempotency_key=batch.idempotency_key,
            records=batch.records,
            attempts=attempts,
            **fields,
        )


def _json(data: bytes) -> Any:
    if not data:
        return None
    with contextlib.suppress(ValueError):
        return json.loads(data)
    return data[:500].decode(errors="replace")


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        if "message" in answer:
            return str(answer["message"])
        if "detail" in answer:  # the API's 422 for an invalid request: per-field errors
            return "; ".join(
                f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in answer["detail"]
            )
        if "records_rejected" in answer:
            return f"{answer['records_rejected']} of {answer.get('records_received')} records rejected"
    return str(answer)[:500]


def _rejected(batch: Batch, answer: Any) -> tuple[RejectedRecord, ...]:
    if not isinstance(answer, dict) or not isinstance(answer.get("rejected"), list):
        return ()
    lines = batch.lines()
    found: list[RejectedRecord] = []
    for item in answer["rejected"]:
        index = int(item.get("index", -1))
        record = lines[index].decode(errors="replace") if 0 <= index < len(lines) else ""
        found.append(RejectedRecord(index=index, reasons=list(item.get("reasons", [])), record=record))
    return tuple(found)
