"""The ingest API function's deployed role allows every AWS call its routes make, and nothing of the queues.

The same method as ``test_iam_least_privilege.py`` (whose helpers it uses), for the function with trigger
``http``: its handler runs in-process with exactly its deployed environment on API Gateway v2 events (a
presigned upload form, an event batch and its retry, the caller's files and one file), every AWS call its
clients make is recorded and evaluated against the role Terraform gave it. The browser's POST of the form is
authorised by S3 as the signer, the function's role: it is added as the PutObject it is. So is what Lambda
does with the role (logs, traces); an API-invoked function polls no queue.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.terraform.iam_access import CallRecorder, Context, PolicySet, RecordedCall, check_calls
from tests.terraform.test_iam_least_privilege import (
    FUNCTION_KEYS,
    _delete_versions,
    drain_notifications,
    handler_as_deployed,
    role_policies,
)

from pipeline.manifests import describe, write_manifest
from pipeline.objects import ObjectRef
from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.http_event import http_event
from pipeline_toolkit.project import load_functions

pytestmark = pytest.mark.terraform

FUNCTION_KEY = "ingest-api"


def _presign(call: RecordedCall) -> bool:
    """botocore builds a presigned POST from the CreateBucket operation's model and never sends it; what S3
    authorises is the browser's POST, added as its PutObject."""
    return (call.service, call.operation, call.status) == ("s3", "CreateBucket", None)


@dataclass
class IngestRun:
    ctx: Context
    region: str
    role_arn: str
    policies: PolicySet
    calls: list[RecordedCall]
    statuses: dict[str, int]


@pytest.fixture(scope="module")
def ingest_run(deployed_stack: Any) -> Iterator[IngestRun]:
    out = deployed_stack.outputs
    region = deployed_stack.env["AWS_REGION"]
    s3, sqs = deployed_stack.client("s3"), deployed_stack.client("sqs")
    lambda_, iam = deployed_stack.client("lambda"), deployed_stack.client("iam")
    ctx = Context(account=deployed_stack.client("sts").get_caller_identity()["Account"])
    landing, quarantine = out["landing_bucket"], out["quarantine_bucket"]
    sub = f"iam-{uuid.uuid4()}"
    config = lambda_.get_function_configuration(FunctionName=out["functions"][FUNCTION_KEY])
    statuses: dict[str, int] = {}
    recorder = CallRecorder()
    synthetic: list[RecordedCall] = []
    try:
        with handler_as_deployed(deployed_stack, config, recorder) as module:
            context = LocalLambdaContext(
                function_name=config["FunctionName"],
                invoked_function_arn=config["FunctionArn"],
                memory_limit_in_mb=config["MemorySize"],
                timeout_seconds=config["Timeout"],
            )

            def call(name: str, method: str, path: str, body: str | None = None, **extra: Any) -> Any:
                headers = {"content-type": "application/json", **extra.pop("headers", {})}
                event = http_event(method, path, sub=sub, body=body, headers=headers, **extra)
                response = module.handler(event, context)
                statuses[name] = response["statusCode"]
                return json.loads(response["body"])

            form = call(
                "upload",
                "POST",
                "/uploads",
                json.dumps({"file_name": "users.csv", "content_type": "text/csv", "size": 100}),
                route=None,
                path_parameters=None,
            )
            # What S3 authorises against the signer when the browser posts the form.
            synthetic.append(RecordedCall("s3", "PutObject", {"Bucket": landing, "Key": form["key"]}, region))
            batch = json.dumps([{"user_id": f"{sub}-1", "email": "a@example.com"}])
            for name in ("batch", "retry"):
                result = call(
                    name,
                    "POST",
                    "/events/users",
                    batch,
                    headers={"idempotency-key": "iam-test-key-1"},
                    route="POST /events/{dataset}",
                    path_parameters={"dataset": "users"},
                )
            for queue_key, queue in out["queues"].items():
                if load_functions()[queue_key].trigger == "landing-events":
                    drain_notifications(sqs, queue["url"], f"events/{sub}/", expected=1)
            # What the loaders would write for the batch, so that the file routes read a manifest.
            head = s3.head_object(Bucket=landing, Key=result["key"])
            ref = ObjectRef(landing, result["key"], datetime.now(UTC), version_id=head.get("VersionId"))
            write_manifest(
                s3, quarantine, ref, describe("database", "loaded", "users", ref, records_loaded=1)
            )
            call("files", "GET", "/files", route=None, path_parameters=None)
            call(
                "file",
                "GET",
                f"/files/{result['batch_id']}",
                route="GET /files/{upload_id}",
                path_parameters={"upload_id": result["batch_id"]},
            )
        stream = {"logGroupName": f"/aws/lambda/{config['FunctionName']}", "logStreamName": "2001/02/03/x"}
        platform = [
            RecordedCall("logs", "CreateLogStream", stream, region),
            RecordedCall("logs", "PutLogEvents", stream, region),
        ]
        if config.get("TracingConfig", {}).get("Mode") == "Active":
            platform += [
                RecordedCall("xray", "PutTraceSegments", {}, region),
                RecordedCall("xray", "PutTelemetryRecords", {}, region),
            ]
        role_arn = config["Role"]
        yield IngestRun(
            ctx=ctx,
            region=region,
            role_arn=role_arn,
            policies=role_policies(iam, role_arn),
            calls=[call for call in recorder.take() if not _presign(call)] + synthetic + platform,
            statuses=statuses,
        )
    finally:
        _delete_versions(s3, landing, lambda key: True, prefix=f"events/{sub}/")
        _delete_versions(s3, quarantine, lambda key: True, prefix=f"manifests/database/events/{sub}/")


def test_the_routes_answered_as_they_do_for_a_caller(ingest_run: IngestRun) -> None:
    assert ingest_run.statuses == {"upload": 201, "batch": 202, "retry": 202, "files": 200, "file": 200}
    seen = {(call.service, call.operation, call.status) for call in ingest_run.calls}
    assert {
        ("s3", "PutObject", 200),  # the batch lands
        ("s3", "PutObject", 412),  # the retry finds it there...
        ("s3", "HeadObject", 200),  # ...and compares the request digest
        ("s3", "ListObjectsV2", 200),  # the caller's manifests
        ("s3", "GetObject", 200),
    } <= seen, sorted(seen)


def test_every_call_the_routes_make_is_allowed_by_the_role(ingest_run: IngestRun) -> None:
    checks = check_calls(ingest_run.calls, ingest_run.policies, ingest_run.ctx)
    denied = [
        f"{c.access.action} on {c.access.resource} ({c.call})" for c in checks if not c.decision.allowed
    ]
    assert not denied, f"{ingest_run.role_arn} does not allow:\n" + "\n".join(denied)


def test_the_role_has_no_queue_and_writes_only_under_uploads_and_events(ingest_run: IngestRun) -> None:
    actions = {action for st in ingest_run.policies.identity for action in st.actions}
    assert not {action for action in actions if action.startswith("sqs:")}
    writes = [st for st in ingest_run.policies.identity if "s3:PutObject" in st.actions]
    resources = {resource.split(":::", 1)[1].split("/", 1)[1] for st in writes for resource in st.resources}
    assert resources == {"uploads/*", "events/*"}


def test_the_check_fails_without_the_landing_grant(ingest_run: IngestRun) -> None:
    checks = check_calls(
        ingest_run.calls, ingest_run.policies.without("LandUploadsAndEventBatches"), ingest_run.ctx
    )
    denied = {
        (c.access.action, c.access.resource.split(":::", 1)[1].split("/")[1])
        for c in checks
        if not c.decision.allowed
    }
    assert denied
    assert {action for action, _ in denied} == {"s3:PutObject"}
    assert {prefix for _, prefix in denied} <= {"uploads", "events"}


def test_every_listed_function_has_its_role_checked() -> None:
    """The queue-fed functions in test_iam_least_privilege.py, the API-invoked one here: a new function fails
    this until its calls are checked too."""
    assert set(load_functions()) == {*FUNCTION_KEYS, FUNCTION_KEY}
