"""Each function's deployed IAM role allows every AWS call its handler makes, on the exact resources.

moto does not enforce a Lambda function's role, so the rest of the suite cannot notice a role that lacks a
permission its code needs on AWS. This test closes that gap against the stack Terraform applied to the
emulator (the session's ``deployed_stack``, never applied again here):

1. it reads each function's role and policies from the emulator's IAM;
2. it runs each handler in-process, imported with exactly the function's deployed environment (plus the
   emulator's endpoint), on Lambda-shaped SQS events it builds itself for objects it drops into the landing
   bucket: a good users CSV, one with bad rows, a binary ``users*.csv``, a file of another dataset, a replay,
   an event without ``versionId`` (version pinning), one whose object was overwritten since, and a file
   above the multipart threshold (lowered for the test);
3. it records every AWS call the handler's clients make (a botocore hook on boto3's default session, which
   ``pipeline.clients`` uses), with the status each was answered with;
4. it maps each call to the IAM actions and resource ARNs AWS authorises it against (``iam_access.MAPPING``;
   an unknown call fails the test), adds what the Lambda service does with the role (poll the queue, write
   logs, send traces);
5. it evaluates each against the role's policies and asserts every one is allowed, printing the list.

It also checks the other direction (no wildcard actions, ``*`` resources only for actions without
resource-level permissions), and that the check fails when a needed statement is taken out.

The notifications its drops cause on the shared queues are deleted (other messages are handed straight
back), and every object and item it creates is removed at the end.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import importlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import boto3
import pytest
from botocore.stub import Stubber
from tests.terraform.iam_access import (
    Access,
    CallRecorder,
    CheckedAccess,
    Context,
    PolicyNotSupportedError,
    PolicySet,
    RecordedCall,
    Statement,
    UnmappedCallError,
    Verdict,
    action_matches,
    check_calls,
    overbroad,
    parse_statements,
    required_access,
    resource_matches,
)

from pipeline import datalake
from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.emulator import patched_environ
from pipeline_toolkit.project import load_functions
from pipeline_toolkit.s3_events import s3_event, s3_record
from pipeline_toolkit.sqs_event import sqs_event

pytestmark = pytest.mark.terraform

# In this order: the part loader loads the parts that the database loader's "big file" scenario queued.
FUNCTION_KEYS = ("datalake-loader", "database-loader", "part-loader")
LISTED = load_functions(Path(__file__).resolve().parents[2])
# A fixed event time, far from the partitions other tests write to (ingest_date is the event's date).
EVENT_TIME = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
# s3transfer's smallest multipart chunk: the test copies a file just above it as a multipart copy.
MULTIPART_TEST_THRESHOLD = 5 * 1024**2
USER_FIELDS = ("user_id", "first_name", "last_name", "email", "gender", "age")


# -- the drops -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drop:
    """One object version in the landing bucket and the S3 event that announces it."""

    key: str
    version_id: str
    etag: str  # without quotes, as S3 events carry it
    size: int
    event_time: datetime
    announce_version: bool = True  # False: the event leaves versionId out (moto's events always do)

    def s3_event(self, bucket: str, region: str) -> dict[str, Any]:
        """The event S3 publishes, in moto's shape (moto/s3/notifications.py ``_get_s3_event``), with the
        ``versionId`` AWS adds for a versioned bucket unless ``announce_version`` is false."""
        record = s3_record(
            bucket,
            quote_plus(self.key),  # moto encodes "/" too
            encode_key=False,
            version=self.version_id if self.announce_version else None,
            etag=self.etag,
            size=self.size,
            time=self.event_time,
            region=region,
            sequencer=None,
            configuration_id="least-privilege-test",
            minimal=True,
        )
        return s3_event(record)


def _users_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=USER_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _user(user_id: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "user_id": user_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"{user_id}@example.com",
        "gender": "female",
        "age": 36,
    }
    return {**row, **overrides}


@dataclass
class Scenario:
    """One invocation: the drop it announces, and the manifest (or absence of one) that shows its path ran."""

    name: str
    drop: Drop
    expect: Callable[[dict[str, Any] | None], None]
    lower_multipart_threshold: bool = False
    body: str | None = None  # the message body, when it is not the drop's S3 event (a part message)
    timeout_seconds: int | None = None  # a shorter timeout than the function's (the time budget path)


@dataclass
class FunctionRun:
    """What running one function's scenarios produced."""

    function_key: str
    function_name: str
    role_arn: str
    queue_url: str
    log_group: str
    tracing: bool
    policies: PolicySet
    calls: list[RecordedCall] = field(default_factory=list)
    failures: dict[str, Any] = field(default_factory=dict)  # scenario -> batchItemFailures or exception
    manifests: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    expectations: dict[str, Callable[[dict[str, Any] | None], None]] = field(default_factory=dict)

    def platform_calls(self, region: str) -> list[RecordedCall]:
        """What the Lambda service itself does with the function's role: poll and delete from the queue
        (the SQS event source mapping: ReceiveMessage, DeleteMessage, GetQueueAttributes), write the logs,
        and send traces when tracing is active."""
        queue = {"QueueUrl": self.queue_url}
        stream = {"logGroupName": self.log_group, "logStreamName": "2001/02/03/[$LATEST]0123456789abcdef"}
        calls = [
            RecordedCall("sqs", "ReceiveMessage", queue, region),
            RecordedCall("sqs", "DeleteMessage", queue, region),
            RecordedCall("sqs", "GetQueueAttributes", queue, region),
            RecordedCall("logs", "CreateLogStream", stream, region),
            RecordedCall("logs", "PutLogEvents", stream, region),
        ]
        if self.tracing:
            calls += [
                RecordedCall("xray", "PutTraceSegments", {}, region),
                RecordedCall("xray", "PutTelemetryRecords", {}, region),
            ]
        return calls


@dataclass
class Recording:
    ctx: Context
    region: str
    outputs: dict[str, Any]
    runs: dict[str, FunctionRun]


# -- reading the role ----------------------------------------------------------------------------------------


def _policy_document(iam: Any, arn: str) -> Any:
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"][
        "Document"
    ]


def role_policies(iam: Any, role_arn: str) -> PolicySet:
    """The role's inline and attached policies (all in force together) and its permissions boundary."""
    role_name = role_arn.rsplit("/", 1)[-1]
    statements: list[Statement] = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for name in page["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            statements.extend(parse_statements(document, name))
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for attached in page["AttachedPolicies"]:
            document = _policy_document(iam, attached["PolicyArn"])
            statements.extend(parse_statements(document, attached["PolicyName"]))
    boundary = iam.get_role(RoleName=role_name)["Role"].get("PermissionsBoundary")
    boundary_statements = None
    if boundary:
        arn = boundary["PermissionsBoundaryArn"]
        boundary_statements = parse_statements(_policy_document(iam, arn), f"boundary:{arn}")
    return PolicySet(identity=tuple(statements), boundary=boundary_statements)


# -- running a handler as its function -----------------------------------------------------------------------


@contextmanager
def handler_as_deployed(stack: Any, config: dict[str, Any], recorder: CallRecorder) -> Iterator[ModuleType]:
    """The function's handler module, cold-started with exactly its deployed environment (plus the emulator's
    endpoint and credentials), its clients created from a fresh default boto3 session the recorder watches."""
    variables = config.get("Environment", {}).get("Variables", {})
    # Unset the pipeline's variables this process may hold, so only the function's own are seen.
    stale = {name: "" for name in os.environ if name.startswith(("PIPELINE_", "POWERTOOLS_"))}
    command = config["ImageConfigResponse"]["ImageConfig"]["Command"][0]  # "pipeline.handlers.x.handler"
    module_name, _, handler_name = command.rpartition(".")
    assert handler_name == "handler", command
    saved_session = boto3.DEFAULT_SESSION
    with patched_environ({**stale, **stack.env, **variables}):
        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        recorder.attach(session.events)
        try:
            yield importlib.reload(importlib.import_module(module_name))
        finally:
            recorder.detach(session.events)
            boto3.DEFAULT_SESSION = saved_session


def _sqs_message(body: str, sent: datetime) -> dict[str, Any]:
    millis = str(int(sent.timestamp() * 1000))
    return {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": f"least-privilege-{uuid.uuid4()}",
        "Body": body,
        "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": millis,
            "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
            "ApproximateFirstReceiveTimestamp": millis,
        },
    }


# -- the notifications the drops cause -----------------------------------------------------------------------


def drain_notifications(sqs: Any, queue_url: str, prefix: str, expected: int) -> None:
    """Delete the S3 notifications about keys under ``prefix``; hand any other message straight back."""
    found = 0
    for _ in range(30):
        if found >= expected:
            return
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            try:
                records = json.loads(message["Body"]).get("Records", [])
            except (ValueError, AttributeError):
                records = []
            keys = [unquote_plus(r.get("s3", {}).get("object", {}).get("key", "")) for r in records]
            if keys and all(key.startswith(prefix) for key in keys):
                found += 1
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    assert found >= expected, f"{queue_url}: found {found} of the {expected} notifications about {prefix}*"


def _delete_versions(s3: Any, bucket: str, matches: Callable[[str], bool], prefix: str = "") -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            if matches(entry["Key"]):
                s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])


# -- the recording fixture -----------------------------------------------------------------------------------


def _manifest(s3: Any, bucket: str, stage: str, key: str, version: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=f"manifests/{stage}/{key}@{version}.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    manifest: dict[str, Any] = json.loads(body)
    return manifest


def _expect(**fields: Any) -> Callable[[dict[str, Any] | None], None]:
    def check(manifest: dict[str, Any] | None) -> None:
        assert manifest is not None, "no manifest was written"
        assert {name: manifest.get(name) for name in fields} == fields

    return check


def _expect_no_manifest(manifest: dict[str, Any] | None) -> None:
    assert manifest is None, manifest


def part_scenarios(sqs: Any, parts_queue_url: str, bigs: Sequence[tuple[Drop, int]]) -> list[Scenario]:
    """The part messages the database loader queued for each big drop (taken off the queue), one scenario
    each, the last expecting the drop's record count; then the first again (a duplicate delivery: skipped on
    its result)."""
    wanted = {drop.key: drop for drop, _ in bigs}
    bodies: dict[str, list[str]] = {key: [] for key in wanted}
    for _ in range(30):
        messages = sqs.receive_message(
            QueueUrl=parts_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            key = json.loads(message["Body"]).get("ref", {}).get("key")
            if key in bodies:
                bodies[key].append(message["Body"])
            sqs.delete_message(QueueUrl=parts_queue_url, ReceiptHandle=message["ReceiptHandle"])
        if all(bodies.values()) and not messages:
            break
    scenarios: list[Scenario] = []
    for drop, records in bigs:
        found = sorted(bodies[drop.key], key=lambda body: json.loads(body)["part"]["index"])
        assert len(found) >= 2, f"{drop.key} was not planned into parts: {len(found)} part message(s)"
        name = drop.key.rsplit("/", 1)[-1]
        scenarios += [
            Scenario(f"{name} part {n}", drop, _expect(stage="database"), body=body)
            for n, body in enumerate(found[:-1])
        ]
        scenarios.append(
            Scenario(
                f"{name} last part", drop, _expect(status="loaded", records_loaded=records), body=found[-1]
            )
        )
        scenarios.append(
            Scenario(f"{name} part delivered twice", drop, _expect(status="loaded"), body=found[0])
        )
    return scenarios


@pytest.fixture(scope="module")
def recording(deployed_stack: Any) -> Iterator[Recording]:  # noqa: PLR0912 - one scenario runner
    """Drop the test's files, run each function's scenarios in-process, record every call; clean up after."""
    out = deployed_stack.outputs
    region = deployed_stack.env["AWS_REGION"]
    s3 = deployed_stack.client("s3")
    sqs = deployed_stack.client("sqs")
    lambda_ = deployed_stack.client("lambda")
    iam = deployed_stack.client("iam")
    ctx = Context(account=deployed_stack.client("sts").get_caller_identity()["Account"])
    landing, quarantine = out["landing_bucket"], out["quarantine_bucket"]
    run = uuid.uuid4().hex[:12]
    prefix = f"iam-least-privilege/{run}/"
    user_prefix = f"iam-{run}-"
    puts = 0

    def put(name: str, body: bytes, seconds: int, *, announce_version: bool = True) -> Drop:
        nonlocal puts
        key = prefix + name
        answer = s3.put_object(Bucket=landing, Key=key, Body=body)
        puts += 1
        return Drop(
            key=key,
            version_id=answer["VersionId"],
            etag=answer["ETag"].strip('"'),
            size=len(body),
            event_time=EVENT_TIME + timedelta(seconds=seconds),
            announce_version=announce_version,
        )

    runs: dict[str, FunctionRun] = {}
    try:
        good_ids = [f"{user_prefix}good-{i}" for i in range(3)]
        good = put(f"users-{run}-good.csv", _users_csv([_user(u) for u in good_ids]), 1)
        bad = put(
            f"users-{run}-bad.csv",
            _users_csv(
                [
                    _user(f"{user_prefix}bad-ok"),
                    _user(f"{user_prefix}bad-email", email="not-an-email"),
                    _user(f"{user_prefix}bad-age", age="abc"),
                ]
            ),
            2,
        )
        binary = put(f"users-{run}-binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), 3)
        other = put(
            f"events-{run}.jsonl",
            b'{"event_id": "e-1", "type": "click", "timestamp": "2001-02-03T04:05:06Z"}\n',
            4,
        )
        unpinned = put(
            f"users-{run}-unpinned.csv",
            _users_csv([_user(f"{user_prefix}unpinned")]),
            5,
            announce_version=False,
        )
        # Overwritten after the event: the event (without versionId) carries the first version's ETag, so the
        # current object no longer matches it and the loader looks the version up among the older ones.
        stale = put(
            f"users-{run}-overwritten.csv",
            _users_csv([_user(f"{user_prefix}stale")]),
            6,
            announce_version=False,
        )
        put(f"users-{run}-overwritten.csv", _users_csv([_user(f"{user_prefix}newer")]), 7)
        large = put(f"blob-{run}.bin", b"\0" * (MULTIPART_TEST_THRESHOLD + 1024), 8)
        # Bigger than the session stack's part_bytes: planned into parts for the part loader.
        big_ids = [f"{user_prefix}big-{i}" for i in range(5_000)]
        big = put(f"users-{run}-big.csv", _users_csv([_user(u) for u in big_ids]), 9)
        # A big gzip file (stored, not compressed, so it is big enough): staged as a plain copy in the work
        # area, then planned into parts of that copy.
        staged_ids = [f"{user_prefix}staged-{i}" for i in range(4_000)]
        big_gzip = put(
            f"users-{run}-big.csv.gz",
            gzip.compress(_users_csv([_user(u) for u in staged_ids]), compresslevel=0),
            11,
        )
        # A newer version of the good file: its keys exist, so they are updated in one transaction per chunk.
        update = put(
            f"users-{run}-good.csv", _users_csv([_user(u, first_name="Updated") for u in good_ids]), 10
        )
        for key, queue in out["queues"].items():
            if LISTED[key].trigger == "landing-events":  # work queues (parts) get no S3 events
                drain_notifications(sqs, queue["url"], prefix, expected=puts)

        lake_key = functools.partial("dataset={}/ingest_date=2001-02-03/{}".format)
        scenarios: dict[str, list[Scenario]] = {
            "datalake-loader": [
                Scenario("good users csv", good, _expect(lake_status="copied", dataset="users")),
                Scenario("bad rows", bad, _expect(lake_status="copied")),
                Scenario("binary users csv", binary, _expect(lake_status="copied")),
                Scenario("another dataset", other, _expect(lake_status="copied", dataset="events")),
                Scenario(
                    "replay",
                    good,
                    _expect(lake_status="unchanged", lake_key=lake_key("users", good.key[len(prefix) :])),
                ),
                Scenario(
                    "no versionId",
                    unpinned,
                    _expect(lake_status="copied", source_version=unpinned.version_id),
                ),
                Scenario(
                    "overwritten since", stale, _expect(lake_status="copied", source_version=stale.version_id)
                ),
                Scenario(
                    "multipart copy",
                    large,
                    _expect(lake_status="copied", dataset="unclassified"),
                    lower_multipart_threshold=True,
                ),
            ],
            "database-loader": [
                Scenario(
                    "good users csv", good, _expect(status="loaded", records_loaded=3, records_rejected=0)
                ),
                Scenario("bad rows", bad, _expect(status="partial", records_loaded=1, records_rejected=2)),
                Scenario("binary users csv", binary, _expect(status="quarantined", records_loaded=0)),
                # Validated and curated, no table.
                Scenario(
                    "another dataset", other, _expect(status="loaded", dataset="events", records_loaded=1)
                ),
                # The replay finds its final manifest: skipped, nothing written.
                Scenario("replay", good, _expect(status="loaded", records_loaded=3)),
                Scenario(
                    "no versionId", unpinned, _expect(status="loaded", source_version=unpinned.version_id)
                ),
                Scenario(
                    "overwritten since", stale, _expect(status="loaded", source_version=stale.version_id)
                ),
                Scenario("re-upload of existing keys", update, _expect(status="loaded", records_loaded=3)),
                Scenario("big file planned into parts", big, _expect(status="in_progress")),
                Scenario("big gzip file staged into parts", big_gzip, _expect(status="in_progress")),
                # Less time left than the budget's margin: the message is handed back, untried.
                # (A drop of no dataset: the events drop has a database manifest by now.)
                Scenario("out of time", large, _expect_no_manifest, timeout_seconds=1),
            ],
        }

        for function_key in FUNCTION_KEYS:
            function = lambda_.get_function(FunctionName=out["functions"][function_key])
            config = lambda_.get_function_configuration(FunctionName=out["functions"][function_key])
            stage = "datalake" if function_key == "datalake-loader" else "database"
            queue = out["queues"][function_key]
            fn = FunctionRun(
                function_key=function_key,
                function_name=config["FunctionName"],
                role_arn=function["Configuration"]["Role"],
                queue_url=queue["url"],
                log_group=config.get("LoggingConfig", {}).get("LogGroup")
                or f"/aws/lambda/{config['FunctionName']}",
                tracing=config.get("TracingConfig", {}).get("Mode") == "Active",
                policies=role_policies(iam, function["Configuration"]["Role"]),
            )
            runs[function_key] = fn
            recorder = CallRecorder()
            with handler_as_deployed(deployed_stack, config, recorder) as module:
                if function_key == "part-loader":
                    scenarios[function_key] = part_scenarios(
                        sqs, queue["url"], [(big, len(big_ids)), (big_gzip, len(staged_ids))]
                    )
                for scenario in scenarios[function_key]:
                    body = scenario.body or json.dumps(scenario.drop.s3_event(landing, region))
                    message: Any = _sqs_message(body, scenario.drop.event_time)
                    event = sqs_event([message], queue["arn"], region)
                    context = LocalLambdaContext(
                        function_name=config["FunctionName"],
                        invoked_function_arn=config["FunctionArn"],
                        memory_limit_in_mb=config["MemorySize"],
                        timeout_seconds=scenario.timeout_seconds or config["Timeout"],
                    )
                    with pytest.MonkeyPatch.context() as patch:
                        if scenario.lower_multipart_threshold:
                            # The > 5 GiB path (UploadPartCopy) without 5 GiB: same code, lower threshold.
                            patch.setattr(
                                datalake,
                                "transfer_config",
                                functools.partial(
                                    datalake.transfer_config,
                                    threshold=MULTIPART_TEST_THRESHOLD,
                                    min_part=MULTIPART_TEST_THRESHOLD,
                                ),
                            )
                        try:
                            response = module.handler(event, context)
                        except Exception as exc:  # reported by the scenario test
                            fn.failures[scenario.name] = repr(exc)
                        else:
                            handed_back = bool(response and response.get("batchItemFailures"))
                            if handed_back != (scenario.timeout_seconds is not None):
                                fn.failures[scenario.name] = response
                                if not handed_back:
                                    fn.failures[scenario.name] = "not handed back for the time budget"
                    version = scenario.drop.version_id
                    fn.manifests[scenario.name] = _manifest(s3, quarantine, stage, scenario.drop.key, version)
                    fn.expectations[scenario.name] = scenario.expect
            fn.calls = recorder.take()
        yield Recording(ctx=ctx, region=region, outputs=out, runs=runs)
    finally:
        _delete_versions(s3, landing, lambda key: True, prefix=prefix)
        _delete_versions(s3, out["datalake_bucket"], lambda key: run in key, prefix="dataset=")
        # Curated objects are named by a digest: found by the test's own partition date.
        _delete_versions(
            s3, out["datalake_bucket"], lambda key: "/ingest_date=2001-02-03/" in key, prefix="curated/"
        )
        _delete_versions(s3, quarantine, lambda key: prefix in key)  # manifests/, rejects/, files/<key>...
        ddb = deployed_stack.client("dynamodb")
        for page in ddb.get_paginator("scan").paginate(
            TableName=out["table_name"],
            FilterExpression="begins_with(user_id, :p)",
            ExpressionAttributeValues={":p": {"S": user_prefix}},
            ProjectionExpression="user_id",
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                ddb.delete_item(TableName=out["table_name"], Key={"user_id": item["user_id"]})


# -- the tests against the deployed stack --------------------------------------------------------------------


def _table(function_key: str, checks: list[CheckedAccess]) -> str:
    lines = [f"{function_key}: {len(checks)} (action, resource) pairs checked against its role"]
    for check in checks:
        via = ", ".join(check.decision.allowed_by or check.decision.denied_by) or "-"
        lines.append(
            f"  {check.decision.verdict.value:17} {check.access.action:28} {check.access.resource}"
            f"  [{check.call}; {check.access.reason}; {via}]"
        )
    return "\n".join(lines)


def _explain(check: CheckedAccess) -> str:
    decision = check.decision
    why = f"{check.call}: {check.access.reason}; {decision.verdict.value}"
    if decision.denied_by:
        why += f" by {', '.join(decision.denied_by)}"
    if decision.conditional_allows_ignored:
        why += f"; conditional allows not counted: {', '.join(decision.conditional_allows_ignored)}"
    return f"  {check.access.action} on {check.access.resource} ({why})"


def _granted_but_unused(policies: PolicySet, checks: list[CheckedAccess]) -> list[str]:
    used = {(c.access.action, label) for c in checks for label in c.decision.allowed_by}
    unused = []
    for st in policies.identity:
        if st.effect == "Allow":
            unused += [f"{st.label}: {a}" for a in st.actions if not any(u == (a, st.label) for u in used)]
    return unused


@pytest.mark.parametrize("function_key", FUNCTION_KEYS)
def test_the_scenarios_took_the_paths_they_exercise(recording: Recording, function_key: str) -> None:
    run = recording.runs[function_key]
    assert run.failures == {}, f"{function_key}: scenarios failed, their calls are incomplete"
    for name, check in run.expectations.items():
        try:
            check(run.manifests[name])
        except AssertionError as exc:
            raise AssertionError(f"{function_key} / {name}: {exc}") from exc


EXPECTED_CALLS = {
    # (service, operation, answer status) the scenarios must have produced: proves the recorder saw them.
    "datalake-loader": {
        ("s3", "HeadObject", 404),  # the lake key is new
        ("s3", "HeadObject", 200),
        ("s3", "HeadObject", 412),  # version pinning: the object was overwritten since the event
        ("s3", "ListObjectVersions", 200),
        ("s3", "CopyObject", 200),
        ("s3", "CreateMultipartUpload", 200),
        ("s3", "UploadPartCopy", 200),
        ("s3", "CompleteMultipartUpload", 200),
        ("s3", "PutObject", 200),
    },
    "database-loader": {
        ("s3", "HeadObject", 200),
        ("s3", "HeadObject", 412),
        ("s3", "ListObjectVersions", 200),
        ("s3", "GetObject", 200),
        ("s3", "CopyObject", 200),
        ("s3", "PutObject", 200),
        ("dynamodb", "BatchGetItem", 200),
        ("dynamodb", "BatchWriteItem", 200),
        ("s3", "GetObject", 200),  # the replay: its final manifest is read, and nothing is written
        ("s3", "GetObject", 404),  # a first delivery: no manifest yet
        ("dynamodb", "TransactWriteItems", 200),  # the re-upload of existing keys
        ("sqs", "SendMessageBatch", 200),  # the big file's parts
        ("sqs", "GetQueueUrl", 200),  # the time budget: a message handed back...
        ("sqs", "ChangeMessageVisibilityBatch", 200),  # ...and made visible again at once
    },
    "part-loader": {
        ("s3", "HeadObject", 404),  # the part has no result yet
        ("s3", "HeadObject", 200),  # the duplicate delivery: it has
        ("s3", "GetObject", 206),  # the part's byte range
        ("s3", "PutObject", 200),  # its result, and the file's manifest
        ("s3", "ListObjectsV2", 200),  # the parts' results
        ("dynamodb", "BatchGetItem", 200),
        ("dynamodb", "BatchWriteItem", 200),
    },
}


@pytest.mark.parametrize("function_key", FUNCTION_KEYS)
def test_the_recorder_saw_the_calls_the_scenarios_make(recording: Recording, function_key: str) -> None:
    seen = {(c.service, c.operation, c.status) for c in recording.runs[function_key].calls}
    assert EXPECTED_CALLS[function_key] <= seen, sorted(EXPECTED_CALLS[function_key] - seen)


@pytest.mark.parametrize("function_key", FUNCTION_KEYS)
def test_every_call_the_handler_makes_is_allowed_by_its_role(recording: Recording, function_key: str) -> None:
    run = recording.runs[function_key]
    checks = check_calls(run.calls + run.platform_calls(recording.region), run.policies, recording.ctx)
    print("\n" + _table(function_key, checks))
    print(
        f"  granted, never needed by these scenarios: {_granted_but_unused(run.policies, checks) or 'none'}"
    )

    denied = [c for c in checks if not c.decision.allowed]
    assert not denied, (
        f"{function_key}'s role ({run.role_arn}) does not allow what its code does on AWS:\n"
        + ("\n".join(_explain(c) for c in denied))
    )
    # The platform's resources are the function's own: its queue, as Terraform reports it. The only queue it
    # sends to is the part loader's, and only the database loader (the planner) does.
    queues = recording.outputs["queues"]
    consumed = {c.access.resource for c in checks if c.access.action.startswith("sqs:")}
    consumed -= {c.access.resource for c in checks if c.access.action == "sqs:SendMessage"}
    sent = {c.access.resource for c in checks if c.access.action == "sqs:SendMessage"}
    assert consumed == {queues[function_key]["arn"]}
    assert sent == ({queues["part-loader"]["arn"]} if function_key == "database-loader" else set())


@pytest.mark.parametrize(
    ("function_key", "sid", "action", "bucket_output"),
    [
        ("datalake-loader", "ListDatalake", "s3:ListBucket", "datalake_bucket"),
        ("datalake-loader", "ReadDatalakeLineage", "s3:GetObject", "datalake_bucket"),
        ("datalake-loader", "ListLandingVersions", "s3:ListBucketVersions", "landing_bucket"),
        ("database-loader", "ListLandingVersions", "s3:ListBucketVersions", "landing_bucket"),
        # The curated zone's objects: PutObject on curated/* of the lake, the loaders' only lake access.
        ("database-loader", "WriteCuratedObjects", "s3:PutObject", "datalake_bucket"),
        ("part-loader", "WriteCuratedObjects", "s3:PutObject", "datalake_bucket"),
    ],
)
def test_the_check_fails_when_a_statement_the_code_needs_is_taken_out(
    recording: Recording, function_key: str, sid: str, action: str, bucket_output: str
) -> None:
    """The deployed role minus one statement: exactly what that statement grants is reported denied."""
    run = recording.runs[function_key]
    bucket_arn = f"arn:aws:s3:::{recording.outputs[bucket_output]}"

    def denied(policies: PolicySet) -> set[tuple[str, str]]:
        checks = check_calls(run.calls, policies, recording.ctx)
        # (action, bucket ARN): object ARNs are cut at the bucket, so one pair stands for every key
        return {
            (c.access.action, c.access.resource.split("/", 1)[0]) for c in checks if not c.decision.allowed
        }

    assert denied(run.policies) == set()
    assert denied(run.policies.without(sid)) == {(action, bucket_arn)}


@pytest.mark.parametrize("function_key", FUNCTION_KEYS)
def test_roles_grant_no_wildcard_actions_and_star_resources_only_where_unavoidable(
    recording: Recording, function_key: str
) -> None:
    policies = recording.runs[function_key].policies
    assert policies.identity, "the role has no policy statements"
    assert overbroad([*policies.identity, *(policies.boundary or ())]) == []


# -- unit tests of the evaluator, the mapping and the recorder (no AWS) --------------------------------------

LAKE, LANDING, QUARANTINE = "lake-bucket", "landing-bucket", "quarantine-bucket"
CTX = Context(account="123456789012")


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("s3:GetObject", "s3:GetObject", True),
        ("s3:getobject", "s3:GetObject", True),  # action names are case-insensitive
        ("s3:Get*", "s3:GetObjectVersion", True),
        ("s3:GetObject?ersion", "s3:GetObjectVersion", True),
        ("s3:GetObject", "s3:GetObjectVersion", False),
        ("s3:Get.bject", "s3:GetObject", False),  # a dot is a dot, not a regex
        ("*", "dynamodb:PutItem", True),
    ],
)
def test_action_patterns(pattern: str, action: str, matches: bool) -> None:
    assert action_matches(pattern, action) is matches


@pytest.mark.parametrize(
    ("pattern", "resource", "matches"),
    [
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/dir/key.csv", True),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b", False),
        ("arn:aws:s3:::b", "arn:aws:s3:::b/k", False),
        ("arn:aws:s3:::B/*", "arn:aws:s3:::b/k", False),  # resources are case-sensitive
        ("arn:aws:s3:::a.b/*", "arn:aws:s3:::aXb/k", False),  # a dot is a dot
        ("arn:aws:s3:::b/?", "arn:aws:s3:::b/k", True),
        ("arn:aws:s3:::b/?", "arn:aws:s3:::b/kk", False),
        ("arn:aws:s3:::q/rejects/*", "arn:aws:s3:::q/manifests/x", False),
        # a * inside a segment stays in it; one that ends a segment may run past the colon
        ("arn:aws:sqs:us-*-1:1:q", "arn:aws:sqs:us-east:x-1:1:q", False),
        (
            "arn:aws:logs:r:1:log-group:/aws/lambda/f:*",
            "arn:aws:logs:r:1:log-group:/aws/lambda/f:log-stream:s",
            True,
        ),
        (
            "arn:aws:logs:r:1:log-group:/aws/lambda/f:*",
            "arn:aws:logs:r:1:log-group:/aws/lambda/fx:log-stream:s",
            False,
        ),
        ("arn:aws:dynamodb:*:1:table/t", "arn:aws:dynamodb:eu-west-1:1:table/t", True),
        ("*", "arn:aws:s3:::anything/at/all", True),
    ],
)
def test_resource_patterns(pattern: str, resource: str, matches: bool) -> None:
    assert resource_matches(pattern, resource) is matches


def test_deny_wins_and_nothing_is_allowed_by_default() -> None:
    policies = PolicySet(
        parse_statements(
            _doc(
                _allow("s3:*", "arn:aws:s3:::b/*", Sid="All"),
                {
                    "Sid": "NoSecrets",
                    "Effect": "Deny",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/secret/*",
                },
            )
        )
    )
    assert policies.decide("s3:GetObject", "arn:aws:s3:::b/k").allowed
    assert policies.decide("s3:GetObject", "arn:aws:s3:::b/secret/k").verdict is Verdict.EXPLICIT_DENY
    assert policies.decide("s3:GetObject", "arn:aws:s3:::c/k").verdict is Verdict.IMPLICIT_DENY


def test_not_action_and_not_resource() -> None:
    policies = PolicySet(
        parse_statements(
            _doc(
                {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "s3:PutObject", "NotResource": "arn:aws:s3:::b/out/*"},
            )
        )
    )
    assert policies.decide("s3:GetObject", "arn:aws:s3:::b/k").allowed
    assert not policies.decide("s3:DeleteObject", "arn:aws:s3:::b/k").allowed
    assert policies.decide("s3:PutObject", "arn:aws:s3:::b/out/k").allowed
    assert policies.decide("s3:PutObject", "arn:aws:s3:::b/k").verdict is Verdict.EXPLICIT_DENY


def test_conditions_are_taken_the_safe_way() -> None:
    condition = {"Bool": {"aws:SecureTransport": "true"}}
    allow_only_if = PolicySet(
        parse_statements(_doc(_allow("s3:GetObject", "*", Sid="C", Condition=condition)))
    )
    decision = allow_only_if.decide("s3:GetObject", "arn:aws:s3:::b/k")
    assert decision.verdict is Verdict.IMPLICIT_DENY
    assert decision.conditional_allows_ignored == ("policy/C",)
    deny_if = PolicySet(
        parse_statements(
            _doc(
                _allow("s3:GetObject", "*"),
                {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": condition},
            )
        )
    )
    assert deny_if.decide("s3:GetObject", "arn:aws:s3:::b/k").verdict is Verdict.EXPLICIT_DENY


def test_a_permissions_boundary_caps_the_grants() -> None:
    identity = parse_statements(_doc(_allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::b/*")))
    boundary = parse_statements(_doc(_allow("s3:GetObject", "*")), "boundary")
    policies = PolicySet(identity, boundary)
    assert policies.decide("s3:GetObject", "arn:aws:s3:::b/k").allowed
    assert not policies.decide("s3:PutObject", "arn:aws:s3:::b/k").allowed
    assert not PolicySet((), boundary).decide("s3:GetObject", "arn:aws:s3:::b/k").allowed


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Principal": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject"},
        {"Effect": "Allow", "Action": "s3:GetObject", "NotAction": "s3:PutObject", "Resource": "*"},
        {"Effect": "Maybe", "Action": "s3:GetObject", "Resource": "*"},
    ],
)
def test_policies_it_cannot_read_are_refused(statement: dict[str, Any]) -> None:
    with pytest.raises(PolicyNotSupportedError):
        parse_statements(_doc(statement))


def test_policy_variables_are_refused() -> None:
    policies = PolicySet(parse_statements(_doc(_allow("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*"))))
    with pytest.raises(PolicyNotSupportedError):
        policies.decide("s3:GetObject", "arn:aws:s3:::b/me/k")


def _call(service: str, operation: str, status: int = 200, **params: Any) -> RecordedCall:
    return RecordedCall(service, operation, params, "eu-west-1", status=status)


def _pairs(call: RecordedCall) -> list[tuple[str, str]]:
    return [(a.action, a.resource) for a in required_access(call, CTX)]


def test_reads_name_the_version_and_a_404_needs_list_bucket() -> None:
    assert _pairs(_call("s3", "HeadObject", Bucket=LAKE, Key="k")) == [
        ("s3:GetObject", f"arn:aws:s3:::{LAKE}/k")
    ]
    assert _pairs(_call("s3", "GetObject", Bucket=LANDING, Key="d/k", VersionId="v1")) == [
        ("s3:GetObjectVersion", f"arn:aws:s3:::{LANDING}/d/k")
    ]
    assert _pairs(_call("s3", "HeadObject", 404, Bucket=LAKE, Key="k")) == [
        ("s3:GetObject", f"arn:aws:s3:::{LAKE}/k"),
        ("s3:ListBucket", f"arn:aws:s3:::{LAKE}"),
    ]


@pytest.mark.parametrize(
    "copy_source",
    [{"Bucket": LANDING, "Key": "in/a b.csv", "VersionId": "v1"}, f"{LANDING}/in/a%20b.csv?versionId=v1"],
)
def test_a_copy_reads_the_source_version_writes_the_destination_and_carries_tags(copy_source: Any) -> None:
    call = _call(
        "s3",
        "CopyObject",
        CopySource=copy_source,
        Bucket=LAKE,
        Key="out/a b.csv",
        MetadataDirective="REPLACE",
    )
    assert _pairs(call) == [
        ("s3:GetObjectVersion", f"arn:aws:s3:::{LANDING}/in/a b.csv"),
        ("s3:PutObject", f"arn:aws:s3:::{LAKE}/out/a b.csv"),
        ("s3:GetObjectVersionTagging", f"arn:aws:s3:::{LANDING}/in/a b.csv"),
        ("s3:PutObjectTagging", f"arn:aws:s3:::{LAKE}/out/a b.csv"),
    ]
    replaced = _call(
        "s3", "CopyObject", CopySource=copy_source, Bucket=LAKE, Key="o", TaggingDirective="REPLACE"
    )
    assert [a for a, _ in _pairs(replaced)] == ["s3:GetObjectVersion", "s3:PutObject"]


def test_multipart_steps_are_put_object_except_abort_and_list_parts() -> None:
    obj = f"arn:aws:s3:::{LAKE}/k"
    source = {"Bucket": LANDING, "Key": "s"}
    assert _pairs(_call("s3", "CreateMultipartUpload", Bucket=LAKE, Key="k")) == [("s3:PutObject", obj)]
    assert _pairs(_call("s3", "UploadPartCopy", CopySource=source, Bucket=LAKE, Key="k", UploadId="u")) == [
        ("s3:GetObject", f"arn:aws:s3:::{LANDING}/s"),
        ("s3:PutObject", obj),
    ]
    assert _pairs(_call("s3", "UploadPart", Bucket=LAKE, Key="k", UploadId="u")) == [("s3:PutObject", obj)]
    assert _pairs(_call("s3", "CompleteMultipartUpload", Bucket=LAKE, Key="k")) == [("s3:PutObject", obj)]
    assert _pairs(_call("s3", "AbortMultipartUpload", Bucket=LAKE, Key="k")) == [
        ("s3:AbortMultipartUpload", obj)
    ]
    assert _pairs(_call("s3", "ListParts", Bucket=LAKE, Key="k")) == [("s3:ListMultipartUploadParts", obj)]
    tagged = _call("s3", "PutObject", Bucket=LAKE, Key="k", Tagging="a=b")
    assert _pairs(tagged) == [("s3:PutObject", obj), ("s3:PutObjectTagging", obj)]


def test_bucket_listings_dynamodb_and_sqs() -> None:
    assert _pairs(_call("s3", "ListObjectVersions", Bucket=LANDING, Prefix="k")) == [
        ("s3:ListBucketVersions", f"arn:aws:s3:::{LANDING}")
    ]
    assert _pairs(_call("s3", "ListObjectsV2", Bucket=LANDING)) == [
        ("s3:ListBucket", f"arn:aws:s3:::{LANDING}")
    ]
    table = "arn:aws:dynamodb:eu-west-1:123456789012:table/users"
    assert _pairs(_call("dynamodb", "BatchWriteItem", RequestItems={"users": [], "other": []})) == [
        ("dynamodb:BatchWriteItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/other"),
        ("dynamodb:BatchWriteItem", table),
    ]
    assert _pairs(_call("dynamodb", "PutItem", TableName="users", Item={})) == [("dynamodb:PutItem", table)]
    assert _pairs(_call("dynamodb", "GetItem", TableName=table, Key={})) == [("dynamodb:GetItem", table)]
    url = "https://sqs.eu-west-1.amazonaws.com/210987654321/q"
    assert _pairs(_call("sqs", "DeleteMessageBatch", QueueUrl=url, Entries=[])) == [
        ("sqs:DeleteMessage", "arn:aws:sqs:eu-west-1:210987654321:q")
    ]


@pytest.mark.parametrize(
    "call",
    [
        _call("s3", "DeleteObject", Bucket=LAKE, Key="k"),  # not in the table
        _call("dynamodb", "Scan", TableName="users"),
        _call("s3", "PutObject", Bucket=LAKE, Key="k", ACL="public-read"),  # needs s3:PutObjectAcl too
        _call("s3", "PutObject", Bucket=LAKE, Key="k", ServerSideEncryption="aws:kms"),  # needs KMS too
        _call("dynamodb", "GetItem", TableName="users", IndexName="email-index"),
    ],
)
def test_unmapped_calls_fail_loudly(call: RecordedCall) -> None:
    with pytest.raises(UnmappedCallError):
        required_access(call, CTX)


def _datalake_like_policies() -> PolicySet:
    """The datalake role's shape (terraform/main.tf) on made-up names."""
    return PolicySet(
        parse_statements(
            _doc(
                _allow(
                    [
                        "s3:GetObject",
                        "s3:GetObjectVersion",
                        "s3:GetObjectTagging",
                        "s3:GetObjectVersionTagging",
                    ],
                    f"arn:aws:s3:::{LANDING}/*",
                    Sid="ReadLandingObjects",
                ),
                _allow(
                    ["s3:PutObject", "s3:PutObjectTagging"],
                    [f"arn:aws:s3:::{QUARANTINE}/manifests/*", f"arn:aws:s3:::{QUARANTINE}/files/*"],
                    Sid="WriteQuarantine",
                ),
                _allow(
                    ["s3:PutObject", "s3:PutObjectTagging"],
                    f"arn:aws:s3:::{LAKE}/*",
                    Sid="WriteDatalakeObjects",
                ),
                _allow("s3:GetObject", f"arn:aws:s3:::{LAKE}/*", Sid="ReadDatalakeLineage"),
                _allow("s3:ListBucket", f"arn:aws:s3:::{LAKE}", Sid="ListDatalake"),
            ),
            "datalake",
        )
    )


def test_a_first_copy_to_the_lake_is_refused_without_list_datalake() -> None:
    """What the datalake loader does for a new file, against its policy with and without ListDatalake."""
    lake_key = "dataset=users/ingest_date=2001-02-03/users.csv"
    calls = [
        _call("s3", "HeadObject", 404, Bucket=LAKE, Key=lake_key),  # no lineage yet: 404 (needs ListBucket)
        _call("s3", "HeadObject", Bucket=LANDING, Key="in/users.csv", VersionId="v1"),  # s3transfer: size
        _call(
            "s3",
            "CopyObject",
            CopySource={"Bucket": LANDING, "Key": "in/users.csv", "VersionId": "v1"},
            Bucket=LAKE,
            Key=lake_key,
            MetadataDirective="REPLACE",
        ),
        _call("s3", "PutObject", Bucket=QUARANTINE, Key="manifests/datalake/in/users.csv@v1.json"),
    ]
    full = _datalake_like_policies()
    assert all(check.decision.allowed for check in check_calls(calls, full, CTX))

    checks = check_calls(calls, full.without("ListDatalake"), CTX)
    denied = [(c.access.action, c.access.resource, c.call) for c in checks if not c.decision.allowed]
    assert denied == [("s3:ListBucket", f"arn:aws:s3:::{LAKE}", "s3:HeadObject")]


def test_overbroad_statements_are_named() -> None:
    statements = parse_statements(
        _doc(
            _allow("s3:*", "arn:aws:s3:::b/*", Sid="WildAction"),
            _allow("s3:GetObject", "*", Sid="StarResource"),
            _allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*", Sid="Traces"),
            _allow("s3:ListBucket", "arn:aws:s3:::*", Sid="EveryBucket"),
            _allow("sqs:SendMessage", "arn:aws:sqs:*:*:q", Sid="AnyAccount"),
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b", "Sid": "NotAction"},
            _allow("s3:GetObject", "arn:aws:s3:::b/*", Sid="Fine"),
        )
    )
    problems = overbroad(statements)
    assert [p.split(":", 1)[0] for p in problems] == [
        "policy/WildAction",
        "policy/StarResource",
        "policy/EveryBucket",
        "policy/AnyAccount",
        "policy/NotAction",
    ]


def test_the_recorder_records_calls_with_the_status_they_were_answered_with() -> None:
    session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="eu-west-1")
    recorder = CallRecorder()
    recorder.attach(session.events)
    s3 = session.client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
        stub.add_response("put_object", {}, {"Bucket": LAKE, "Key": "k", "Body": b"x"})
        with pytest.raises(s3.exceptions.ClientError):
            s3.head_object(Bucket=LAKE, Key="missing")
        s3.put_object(Bucket=LAKE, Key="k", Body=b"x")
    recorder.detach(session.events)
    calls = recorder.take()
    assert [(c.service, c.operation, c.status, c.region) for c in calls] == [
        ("s3", "HeadObject", 404, "eu-west-1"),
        ("s3", "PutObject", 200, "eu-west-1"),
    ]
    assert calls[0].params == {"Bucket": LAKE, "Key": "missing"}
    assert "Body" not in calls[1].params
    assert [a.action for a in required_access(calls[0], CTX)] == ["s3:GetObject", "s3:ListBucket"]


def test_access_pairs_compare_on_action_and_resource_only() -> None:
    assert Access("s3:GetObject", "arn:aws:s3:::b/k", "one") == Access(
        "s3:GetObject", "arn:aws:s3:::b/k", "two"
    )
