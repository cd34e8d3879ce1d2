"""The tracker and ``pipeline send`` against the real ingest API on the embedded target: the local gateway in
front of the deployed function, the emulator's Cognito and landing bucket, with faults injected by a proxy
(resets before and after the request landed, 503, 429 with Retry-After), a gateway stopped and started again
mid-stream, and a sending process killed with SIGKILL and started again on its spool.

"Exactly once" is read from the landing bucket: every object under the caller's ``events/<sub>/`` prefix,
each record id counted once, and each batch object with one version.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.support import Pipeline, unique
from tests.tracker.servers import FaultProxy, Status, expect_line, free_port

from pipeline_toolkit import cli
from pipeline_toolkit.gateway.local import LocalApi, create_demo_user, sign_in, start_local_api
from pipeline_toolkit.outputs import Session
from pipeline_tracker import BatchOutcome, RetryPolicy, Tracker

pytestmark = [pytest.mark.e2e, pytest.mark.terraform]

SEND_RECORDS = Path(__file__).resolve().parents[1] / "tracker" / "send_records.py"
QUICK = RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=0.5)


@pytest.fixture(scope="module")
def local_api(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    served = start_local_api(
        pipeline.clients.environment,
        pipeline.outputs,
        log_dir=tmp_path_factory.mktemp("tracker-gateway-logs"),
        throttle=False,  # the 429s here are the proxy's, on purpose
    )
    yield served
    served.stop()


class Caller:
    """A user of the pool with a token, and what landed under their prefix."""

    def __init__(self, pipeline: Pipeline, name: str) -> None:
        environment, outputs = pipeline.clients.environment, pipeline.outputs
        self.username, self.password = create_demo_user(environment, outputs, f"{unique(name)}@example.com")
        self.token = sign_in(environment, outputs, self.username, self.password)
        payload = self.token.split(".")[1]
        self.sub = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
        self.pipeline = pipeline

    def landed(self) -> tuple[Counter[str], dict[str, int]]:
        """Record ids landed under this caller's prefix (how often each), and versions per object."""
        s3, bucket = self.pipeline.clients.s3, self.pipeline.outputs.landing_bucket
        ids: Counter[str] = Counter()
        versions: dict[str, int] = {}
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"events/{self.sub}/")
        for page in pages:
            for version in page.get("Versions", []):
                versions[version["Key"]] = versions.get(version["Key"], 0) + 1
                body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])[
                    "Body"
                ]
                for line in body.read().splitlines():
                    ids[json.loads(line)["user_id"]] += 1
        return ids, versions


class Restartable:
    """A local gateway that goes away after the tracker's first batch and comes back, on the same port, when
    the tracker first waits to retry: the restart happens at a known point of the stream, not after a
    guessed delay."""

    def __init__(self, start: Callable[[], LocalApi]) -> None:
        self._start = start
        self.api: LocalApi | None = start()
        self.restarts = 0
        self._lock = threading.Lock()

    def after_batch(self, _outcome: BatchOutcome) -> None:
        with self._lock:
            if self.api is not None and not self.restarts:
                self.api.stop()
                self.api = None

    def sleep(self, _seconds: float) -> None:
        with self._lock:
            if self.api is None:
                self.api = self._start()
                self.restarts += 1

    def stop(self) -> None:
        with self._lock:
            if self.api is not None:
                self.api.stop()
                self.api = None


def users(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "user_id": f"{prefix}-{n}",
            "first_name": "Track",
            "last_name": "Er",
            "email": f"{prefix}-{n}@example.com",
            "gender": "male",
            "age": 20 + n % 60,
        }
        for n in range(count)
    ]


def test_records_land_exactly_once_through_resets_5xx_and_429(
    pipeline: Pipeline, local_api: LocalApi
) -> None:
    caller = Caller(pipeline, "tracker-faults")
    proxy = FaultProxy(
        local_api.url,
        [
            "reset",  # batch 1: reset before it reaches the gateway
            "reset-after",  # batch 1 again: it lands, the answer is lost
            "pass",  # batch 1 a third time: a replay
            Status(503),  # batch 2
            Status(429, {"Retry-After": "3"}),  # batch 2 again
        ],
    )
    sleeps: list[float] = []
    prefix = unique("trk")
    records = users(prefix, 25)
    bad = {**records[0], "user_id": f"{prefix}-bad", "age": "old"}
    try:
        with Tracker(
            proxy.url,
            caller.token,
            dataset="users",
            max_batch_records=10,
            linger_seconds=None,
            retry=QUICK,
            sleep=sleeps.append,
            random=lambda: 1.0,  # each backoff at the top of its range
        ) as tracker:
            for record in [*records[:10], *records[10:19], bad, *records[19:]]:
                tracker.track(record)
            outcomes = tracker.flush()
    finally:
        proxy.stop()
    assert [(o.state, o.records) for o in outcomes] == [
        ("delivered", 10),
        ("delivered", 10),
        ("delivered", 6),
    ]
    first, second, _ = outcomes
    assert (first.attempts, first.replayed) == (3, True)
    assert second.attempts == 3
    assert sleeps == [0.05, 0.1, 0.05, 3.0]  # the backoff's bounds, then the 429's Retry-After
    assert [seen.fault for seen in proxy.seen][:6] == [
        "reset",
        "reset-after",
        "pass",
        "status 503",
        "status 429",
        "pass",
    ]
    keys = proxy.keys()
    assert keys[:3] == [first.idempotency_key] * 3
    assert keys[3:6] == [second.idempotency_key] * 3
    # The API's own rejection, with its reason, for the one bad record.
    (rejected,) = second.rejected
    assert json.loads(rejected.record)["user_id"] == f"{prefix}-bad"
    assert any("age" in reason for reason in rejected.reasons)
    ids, versions = caller.landed()
    assert ids == Counter({record["user_id"]: 1 for record in records})
    assert set(versions.values()) == {1}
    assert len(versions) == 3


def test_a_4xx_is_not_retried(pipeline: Pipeline, local_api: LocalApi) -> None:
    caller = Caller(pipeline, "tracker-4xx")
    sleeps: list[float] = []
    with Tracker(
        local_api.url, caller.token, linger_seconds=None, retry=QUICK, sleep=sleeps.append
    ) as tracker:
        tracker.track({"anything": 1}, dataset="no-such-dataset")
        tracker.track({"user_id": unique("trk"), "age": "old"}, dataset="users")
        outcomes = sorted(tracker.flush(), key=lambda outcome: outcome.dataset)
    assert [(o.dataset, o.state, o.status, o.attempts) for o in outcomes] == [
        ("no-such-dataset", "refused", 404, 1),
        ("users", "refused", 422, 1),
    ]
    assert outcomes[1].rejected[0].reasons
    assert sleeps == []


def test_the_gateway_stopped_and_started_again_mid_stream(
    pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    caller = Caller(pipeline, "tracker-restart")
    port = free_port()
    log_dir = tmp_path_factory.mktemp("restarted-gateway-logs")

    def start() -> LocalApi:
        return start_local_api(
            pipeline.clients.environment, pipeline.outputs, log_dir=log_dir, port=port, throttle=False
        )

    gateway = Restartable(start)

    prefix = unique("trk")
    records = users(prefix, 30)
    try:
        with Tracker(
            f"http://127.0.0.1:{port}",
            caller.token,
            dataset="users",
            max_batch_records=10,
            linger_seconds=None,
            retry=QUICK,
            sleep=gateway.sleep,
            on_outcome=gateway.after_batch,
        ) as tracker:
            for record in records:
                tracker.track(record)
            outcomes = tracker.flush()
    finally:
        gateway.stop()
    assert gateway.restarts == 1
    assert [o.state for o in outcomes] == ["delivered"] * 3
    assert outcomes[1].attempts >= 2  # refused while the gateway was down
    ids, versions = caller.landed()
    assert ids == Counter({record["user_id"]: 1 for record in records})
    assert set(versions.values()) == {1}


def test_a_sender_killed_with_sigkill_resends_its_spool_and_lands_everything_once(
    pipeline: Pipeline, local_api: LocalApi, tmp_path: Path
) -> None:
    caller = Caller(pipeline, "tracker-kill")
    proxy = FaultProxy(local_api.url, ["pass", "hold"])  # batch 2 lands, its answer never reaches the sender
    prefix = unique("kill")
    spool = tmp_path / "spool"
    env = {**os.environ, "TRACKER_TOKEN": caller.token}
    argv = [sys.executable, str(SEND_RECORDS), proxy.url, str(spool), "users"]
    try:
        first = subprocess.Popen(
            [*argv, "45", prefix, "10"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        proxy.kill_when_held(first, 120, ready=lambda: expect_line(first, "tracked"))
        held_key = proxy.seen[1].idempotency_key
        ids, _ = caller.landed()
        assert sum(ids.values()) == 20  # batches 1 and 2 landed before the kill
        second = subprocess.run(
            [*argv, "0", prefix, "10"], capture_output=True, text=True, env=env, timeout=300, check=True
        )
    finally:
        proxy.release()
        proxy.stop()
    outcomes = [json.loads(line) for line in second.stdout.splitlines()[1:]]
    assert [(o["state"], o["records"]) for o in outcomes] == [("delivered", 10)] * 3 + [("delivered", 5)]
    assert outcomes[0]["key"] == held_key
    assert proxy.keys().count(held_key) == 2  # the same key across the two processes
    ids, versions = caller.landed()
    assert ids == Counter({f"{prefix}-{n}": 1 for n in range(45)})
    assert set(versions.values()) == {1}
    assert list((spool / "pending").glob("*.json")) == []


def test_pipeline_send_signs_in_sends_and_a_rerun_lands_nothing_twice(
    pipeline: Pipeline,
    local_api: LocalApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caller = Caller(pipeline, "tracker-cli")
    prefix = unique("cli")
    records = users(prefix, 12)
    source = tmp_path / "records.jsonl"
    lines = [json.dumps(record) for record in records] + [json.dumps({**records[0], "age": "old"})]
    source.write_text("\n".join(lines) + "\n")
    # The session of `pipeline local up`, with the gateway it serves: no --url needed.
    state_dir = tmp_path / "state"
    endpoint = pipeline.clients.environment["AWS_ENDPOINT_URL"]
    Session(endpoint, pipeline.clients.region, pipeline.outputs, os.getpid(), local_api.url).save(state_dir)
    monkeypatch.setenv("PIPELINE_PASSWORD", caller.password)
    argv = [
        "--state-dir",
        str(state_dir),
        "send",
        "users",
        str(source),
        "--username",
        caller.username,
        "--spool-dir",
        str(tmp_path / "spool"),
        "--batch-records",
        "5",
    ]
    assert cli.main(argv) == 1  # one record rejected
    out = capsys.readouterr().out
    assert "13 record(s) of users read, 3 batch(es)" in out
    assert "12 accepted, 1 rejected, 0 not sent" in out
    assert "rejected {" in out
    assert "age" in out.split("rejected {", 1)[1]
    assert cli.main(argv) == 1  # the same run again: every batch a replay
    assert "(3 batch(es) had landed before: replayed)" in capsys.readouterr().out
    ids, versions = caller.landed()
    assert ids == Counter({record["user_id"]: 1 for record in records})
    assert set(versions.values()) == {1}
    # A JSON array on stdin, under a new run id: new batches (with a token this time).
    monkeypatch.setattr(sys, "stdin", _Stdin(json.dumps(records[:3]).encode()))
    assert (
        cli.main(
            ["--state-dir", str(state_dir), "send", "users", "-", "--token", caller.token, "--run-id", "2"]
        )
        == 0
    )
    assert "3 accepted, 0 rejected" in capsys.readouterr().out
    ids, _ = caller.landed()
    assert [ids[record["user_id"]] for record in records[:4]] == [2, 2, 2, 1]


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_pipeline_send_killed_mid_stream_and_run_again_lands_every_record_once(
    pipeline: Pipeline, local_api: LocalApi, tmp_path: Path
) -> None:
    caller = Caller(pipeline, "tracker-cli-kill")
    prefix = unique("clik")
    source = tmp_path / "users.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in users(prefix, 45)))
    proxy = FaultProxy(local_api.url, ["pass", "hold"])  # batch 2 lands, its answer never comes back
    argv = [
        sys.executable, "-m", "pipeline_toolkit.cli", "--state-dir", str(tmp_path / "state"), "send", "users",
        str(source), "--url", proxy.url, "--token", caller.token, "--spool-dir", str(tmp_path / "spool"),
        "--batch-records", "10",
    ]  # fmt: skip
    try:
        first = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        proxy.kill_when_held(first, 120)
        again = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    finally:
        proxy.release()
        proxy.stop()
    assert again.returncode == 0, again.stdout
    assert "45 accepted, 0 rejected, 0 not sent (2 batch(es) had landed before: replayed)" in again.stdout
    ids, versions = caller.landed()
    assert ids == Counter({f"{prefix}-{n}": 1 for n in range(45)})
    assert set(versions.values()) == {1}
