"""The tracker against real HTTP on 127.0.0.1: a small stand-in of the ingest API, behind a fault-injecting
proxy. No emulator: these run in ``make check``. The same faults against the real local gateway are in
``tests/e2e/test_tracker_gateway.py``.

Backoff waits go through an injected ``sleep`` (recorded, never slept) and an injected random source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from tests.tracker.servers import FakeIngestApi, FaultProxy, Status, expect_line, free_port

from pipeline_tracker import RetryPolicy, SpoolLockedError, Tracker, TrackerClosedError
from pipeline_tracker.retry import parse_retry_after
from pipeline_tracker.spool import Batch, Spool, write_atomically

SEND_RECORDS = Path(__file__).with_name("send_records.py")
FAST = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=8.0)


class Sleeps:
    """The backoff's clock: records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def api() -> Iterator[FakeIngestApi]:
    served = FakeIngestApi()
    yield served
    served.stop()


@pytest.fixture
def proxy(api: FakeIngestApi) -> Iterator[FaultProxy]:
    served = FaultProxy(api.url)
    yield served
    served.release()
    served.stop()


def tracker_for(url: str, sleeps: Sleeps | None = None, **options: Any) -> Tracker:
    token = options.pop("token", FakeIngestApi.TOKEN)
    settings: dict[str, Any] = {
        "dataset": "users",
        "linger_seconds": None,
        "retry": FAST,
        "sleep": sleeps or Sleeps(),
        "random": lambda: 1.0,  # the top of each jitter range: the bounds are what is checked
        **options,
    }
    return Tracker(url, token, **settings)


def user(n: int, **extra: Any) -> dict[str, Any]:
    return {"user_id": f"u-{n}", "email": f"u{n}@example.com", **extra}


# -- batching ----------------------------------------------------------------------------------------------


def test_batches_are_bounded_by_records(api: FakeIngestApi) -> None:
    with tracker_for(api.url, max_batch_records=3) as tracker:
        for n in range(10):
            tracker.track(user(n))
        outcomes = tracker.flush()
    assert [records for _, _, records in api.requests] == [3, 3, 3, 1]
    assert [outcome.state for outcome in outcomes] == ["delivered"] * 4
    assert [record["user_id"] for record in api.records()] == [f"u-{n}" for n in range(10)]


def test_batches_are_bounded_by_bytes(api: FakeIngestApi) -> None:
    line = len(json.dumps(user(0, pad="x" * 80), separators=(",", ":"))) + 1
    with tracker_for(api.url, max_batch_bytes=3 * line + 10) as tracker:
        for n in range(7):
            tracker.track(user(n, pad="x" * 80))
    assert [records for _, _, records in api.requests] == [3, 3, 1]
    assert all(len(body) <= 3 * line + 10 for body in api.bodies.values())


def test_what_can_never_be_sent_is_refused_by_track(api: FakeIngestApi) -> None:
    with tracker_for(api.url, max_batch_bytes=100) as tracker:
        with pytest.raises(ValueError, match="does not fit"):
            tracker.track(user(1, pad="x" * 200))
        with pytest.raises(TypeError, match="JSON object"):
            tracker.track(["not", "an", "object"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="Out of range float"):
            tracker.track({"x": float("nan")})
    with pytest.raises(TrackerClosedError):
        tracker.track(user(2))
    assert api.requests == []


def test_records_of_several_datasets_go_in_batches_of_their_own(api: FakeIngestApi) -> None:
    with tracker_for(api.url) as tracker:
        tracker.track(user(1))
        tracker.track({"event_id": "e-1"}, dataset="events")
        tracker.track(user(2))
    assert sorted((path, records) for path, _, records in api.requests) == [
        ("/events/events", 1),
        ("/events/users", 2),
    ]


def test_threads_tracking_at_once_lose_and_duplicate_nothing(api: FakeIngestApi) -> None:
    with tracker_for(api.url, max_batch_records=37) as tracker:

        def work(thread: int) -> None:
            for n in range(250):
                tracker.track(user(thread * 1000 + n))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ids = [record["user_id"] for record in api.records()]
    assert len(ids) == 2000
    assert len(set(ids)) == 2000
    assert max(records for _, _, records in api.requests) <= 37


def test_a_lingering_batch_is_sent_without_a_flush(api: FakeIngestApi) -> None:
    done = threading.Event()
    tracker = tracker_for(api.url, linger_seconds=0.01, on_outcome=lambda _outcome: done.set())
    try:
        tracker.track(user(1))
        assert done.wait(30)
        assert api.records() == [user(1)]
    finally:
        tracker.close()


# -- retries -----------------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [policy.backoff(n, lambda: 0.0) for n in range(1, 7)] == [0.0] * 6
    assert policy.backoff(3, lambda: 0.25) == 0.5
    assert policy.delay(9, lambda: 1.0, retry_after=7.0) == 7.0
    assert RetryPolicy(max_retry_after=5.0).delay(1, lambda: 1.0, retry_after=60.0) == 5.0


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_a_while = parse_retry_after(formatdate(2_000_000_000, usegmt=True))
    assert in_a_while is not None
    assert in_a_while > 0


def test_network_errors_and_5xx_are_retried_with_the_same_key(api: FakeIngestApi, proxy: FaultProxy) -> None:
    # A reset before the request reaches the API, a 503, and a reset after it landed (the answer lost).
    proxy.add("reset", Status(503), "reset-after")
    sleeps = Sleeps()
    with tracker_for(proxy.url, sleeps) as tracker:
        tracker.track(user(1))
        (outcome,) = tracker.flush()
    assert [seen.fault for seen in proxy.seen] == ["reset", "status 503", "reset-after", "pass"]
    assert len(set(proxy.keys())) == 1
    assert (outcome.state, outcome.attempts, outcome.replayed) == ("delivered", 4, True)
    assert api.records() == [user(1)]  # landed once, by the third attempt
    assert sleeps.waits == [1.0, 2.0, 4.0]  # random() == 1: each range's top


def test_retry_after_of_a_429_wins_over_the_backoff(api: FakeIngestApi, proxy: FaultProxy) -> None:
    proxy.add(Status(429, {"Retry-After": "7"}), Status(503, {"Retry-After": "0"}), Status(502))
    sleeps = Sleeps()
    with tracker_for(proxy.url, sleeps) as tracker:
        tracker.track(user(1))
        (outcome,) = tracker.flush()
    assert outcome.state == "delivered"
    assert sleeps.waits == [7.0, 0.0, 4.0]


def test_the_jitter_comes_from_the_random_source(api: FakeIngestApi, proxy: FaultProxy) -> None:
    proxy.add(Status(500), Status(500), Status(500))
    sleeps = Sleeps()
    draws = iter([0.5, 0.25, 0.1])
    with tracker_for(proxy.url, sleeps, random=lambda: next(draws)) as tracker:
        tracker.track(user(1))
    assert sleeps.waits == [0.5, 0.5, 0.4]


def test_other_4xx_are_not_retried_and_say_why_with_the_rejected_records(
    api: FakeIngestApi, tmp_path: Path
) -> None:
    sleeps = Sleeps()
    with tracker_for(api.url, sleeps, spool_dir=tmp_path) as tracker:
        tracker.track(user(1, bad=True))
        tracker.track(user(2, bad=True))
        (outcome,) = tracker.flush()
    assert (outcome.state, outcome.status, outcome.attempts) == ("refused", 422, 1)
    assert outcome.error == "HTTP 422: 2 of 2 records rejected"
    assert [(r.index, r.reasons) for r in outcome.rejected] == [
        (n, ["bad: flagged by the test"]) for n in (0, 1)
    ]
    assert json.loads(outcome.rejected[1].record)["user_id"] == "u-2"
    assert sleeps.waits == []
    # Set aside with the answer, never resent by itself.
    assert outcome.failed_path is not None
    assert outcome.failed_path.parent == tmp_path / "failed"
    assert json.loads(outcome.failed_path.read_text())["status"] == 422
    assert list((tmp_path / "pending").iterdir()) == []


def test_an_accepted_batch_reports_its_rejected_records(api: FakeIngestApi) -> None:
    with tracker_for(api.url) as tracker:
        tracker.track(user(1))
        tracker.track(user(2, bad=True))
        (outcome,) = tracker.flush()
    assert (outcome.state, outcome.accepted, outcome.replayed) == ("delivered", 1, False)
    assert [(r.index, json.loads(r.record)["user_id"]) for r in outcome.rejected] == [(1, "u-2")]


def test_a_409_for_an_attempt_in_progress_is_retried(api: FakeIngestApi, proxy: FaultProxy) -> None:
    # The API's answer while another attempt of the same batch is still landing.
    message = "a request with this Idempotency-Key is in progress: retry it"
    proxy.add(Status(409, message=message))
    with tracker_for(proxy.url) as tracker:
        tracker.track(user(1))
        (outcome,) = tracker.flush()
    assert (outcome.state, outcome.attempts) == ("delivered", 2)
    assert len(set(proxy.keys())) == 1


def test_a_413_sends_the_batch_as_halves_under_keys_derived_from_its_own(tmp_path: Path) -> None:
    small = FakeIngestApi(max_bytes=300)  # a deployment that takes less than the tracker's batches
    try:
        with tracker_for(
            small.url, spool_dir=tmp_path, key_factory=lambda _d, _s, _b: "batch-0001"
        ) as tracker:
            for n in range(10):
                tracker.track(user(n, pad="x" * 60))
            outcomes = tracker.flush()
        assert {outcome.state for outcome in outcomes} == {"delivered"}
        assert sum(outcome.records for outcome in outcomes) == 10
        assert all(outcome.idempotency_key.startswith("batch-0001.") for outcome in outcomes)
        assert sorted(r["user_id"] for r in small.records()) == sorted(f"u-{n}" for n in range(10))
        assert list((tmp_path / "pending").glob("*.json")) == []
        with tracker_for(small.url) as tracker:
            tracker.track(user(99, pad="x" * 400))
            (alone,) = tracker.flush()
        assert (alone.state, alone.status) == ("refused", 413)  # one record: nothing left to split
    finally:
        small.stop()


def test_a_key_reused_for_another_body_is_a_409_not_retried(api: FakeIngestApi) -> None:
    with tracker_for(api.url, key_factory=lambda _d, _s, _b: "the-same-key") as tracker:
        tracker.track(user(1))
        tracker.flush()
        tracker.track(user(2))
        (outcome,) = tracker.flush()
    assert (outcome.state, outcome.status, outcome.attempts) == ("refused", 409, 1)
    assert "another batch" in (outcome.error or "")


def test_a_refused_token_keeps_the_batch_for_later(api: FakeIngestApi, tmp_path: Path) -> None:
    tokens = iter(["expired", FakeIngestApi.TOKEN])
    with tracker_for(api.url, token=lambda: next(tokens), spool_dir=tmp_path) as tracker:
        tracker.track(user(1))
        (first,) = tracker.flush()
        assert (first.state, first.status, first.attempts) == ("unsent", 401, 1)
        assert len(list((tmp_path / "pending").glob("*.json"))) == 1
        (second,) = tracker.flush()  # a fresh token: the same batch, the same key
    assert second.state == "delivered"
    assert second.idempotency_key == first.idempotency_key
    assert list((tmp_path / "pending").glob("*.json")) == []


def test_when_attempts_run_out_the_batch_waits_in_the_spool_for_the_next_process(
    api: FakeIngestApi, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    sleeps = Sleeps()
    with tracker_for(dead, sleeps, spool_dir=tmp_path) as tracker:
        tracker.track(user(1))
        (outcome,) = tracker.flush()
        assert (outcome.state, outcome.attempts, outcome.status) == ("unsent", 5, None)
        assert "NewConnectionError" in (outcome.error or "")
    assert len(sleeps.waits) == 5 * 2 - 2  # flush, then close's last round: 4 waits each
    (pending,) = (tmp_path / "pending").glob("*.json")
    assert outcome.idempotency_key in pending.name
    with tracker_for(api.url, spool_dir=tmp_path) as tracker:
        (resent,) = tracker.flush()
    assert (resent.state, resent.idempotency_key) == ("delivered", outcome.idempotency_key)
    assert api.records() == [user(1)]
    assert list((tmp_path / "pending").glob("*.json")) == []


# -- the spool ---------------------------------------------------------------------------------------------


def test_a_spooled_batch_is_written_whole_and_holds_its_key(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    batch = Batch("users", "key-0001", b'{"user_id":"u-1"}\n', 1)
    spool.save(batch)
    (path,) = (tmp_path / "pending").iterdir()
    assert json.loads(path.read_text())["idempotency_key"] == "key-0001"
    assert [p.name for p in (tmp_path / "pending").iterdir() if p.name.startswith(".tmp")] == []
    assert spool.pending() == [batch]
    spool.close()


def test_a_write_cut_short_before_its_rename_is_not_a_batch(api: FakeIngestApi, tmp_path: Path) -> None:
    pending = tmp_path / "pending"
    pending.mkdir(parents=True)
    (pending / ".tmp-abc-000-key.json").write_text('{"format": "pipeline-tracker-batch/1", "dat')
    write_atomically(tmp_path / "other.json", b"whole")
    assert (tmp_path / "other.json").read_bytes() == b"whole"
    with tracker_for(api.url, spool_dir=tmp_path) as tracker:
        assert tracker.flush() == []
    assert list(pending.iterdir()) == []
    assert api.requests == []


def test_an_unreadable_pending_file_is_set_aside_not_sent(api: FakeIngestApi, tmp_path: Path) -> None:
    (tmp_path / "pending").mkdir(parents=True)
    (tmp_path / "pending" / "0001-x.json").write_text("garbage")
    with tracker_for(api.url, spool_dir=tmp_path) as tracker:
        tracker.track(user(1))
    assert [p.name for p in (tmp_path / "failed").iterdir()] == ["0001-x.json"]
    assert api.records() == [user(1)]


def test_records_tracked_while_closing_are_sent_or_refused(api: FakeIngestApi) -> None:
    tracker = tracker_for(api.url, max_batch_records=7)
    tracked: list[int] = []
    stop = threading.Event()

    def keep_tracking() -> None:
        n = 0
        while not stop.is_set():
            try:
                tracker.track(user(n))
            except TrackerClosedError:
                return
            tracked.append(n)
            n += 1

    thread = threading.Thread(target=keep_tracking)
    thread.start()
    while len(tracked) < 50:
        threading.Event().wait(0.001)
    tracker.close()
    stop.set()
    thread.join()
    assert sorted(int(r["user_id"][2:]) for r in api.records()) == tracked


def test_one_spool_serves_one_process(api: FakeIngestApi, tmp_path: Path) -> None:
    with tracker_for(api.url, spool_dir=tmp_path), pytest.raises(SpoolLockedError):
        tracker_for(api.url, spool_dir=tmp_path)
    tracker_for(api.url, spool_dir=tmp_path).close()  # free again once closed


def test_a_process_killed_mid_stream_loses_and_duplicates_nothing(
    api: FakeIngestApi, proxy: FaultProxy, tmp_path: Path
) -> None:
    """SIGKILL with one batch landed, one landed but its answer held, two sealed and unsent, and the open
    batch's records in the journal only; the restarted process sends the rest, the held one again with its
    key."""
    proxy.add("pass", "hold")
    spool = tmp_path / "spool"
    env = {**os.environ, "TRACKER_TOKEN": FakeIngestApi.TOKEN}
    argv = [sys.executable, str(SEND_RECORDS), proxy.url, str(spool), "users"]
    first = subprocess.Popen(
        [*argv, "45", "kill", "10"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    proxy.kill_when_held(first, 60, ready=lambda: expect_line(first, "tracked"))
    held_key = proxy.seen[1].idempotency_key
    assert len(list((spool / "pending").glob("*.json"))) == 3  # the held batch and the two never sent
    assert len(list((spool / "journal").glob("*.ndjson"))) == 1
    second = subprocess.run(
        [*argv, "0", "kill", "10"], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    outcomes = [json.loads(line) for line in second.stdout.splitlines()[1:]]
    assert [(o["state"], o["records"]) for o in outcomes] == [("delivered", 10)] * 3 + [("delivered", 5)]
    assert proxy.keys().count(held_key) == 2
    ids = sorted(record["user_id"] for record in api.records())
    assert ids == sorted(f"kill-{n}" for n in range(45))
    assert list((spool / "pending").glob("*.json")) == []
    assert list((spool / "journal").glob("*.ndjson")) == []
