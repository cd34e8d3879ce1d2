"""The ingest API's routes on moto's in-process S3, through the handler, with API Gateway v2 events.

Each event has the shape API Gateway's HTTP API hands a Lambda proxy integration (payload format 2.0) after
its JWT authorizer verified the token: the caller is in ``requestContext.authorizer.jwt.claims``.
"""

from __future__ import annotations

import base64
import importlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import orjson
import pytest
import requests
from moto import mock_aws

from pipeline.ingest.auth import owner_tag
from pipeline.manifests import RecordError, describe, write_manifest
from pipeline.objects import ObjectRef
from pipeline_toolkit import moto_compat
from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.http_event import http_event

REGION = "us-east-1"
LANDING, QUARANTINE = "it-ingest-landing", "it-ingest-quarantine"
ALICE, BOB = "11111111-aaaa-4aaa-8aaa-111111111111", "22222222-bbbb-4bbb-8bbb-222222222222"
GOOD_USER = {"user_id": "u1", "email": "a@example.com", "first_name": "Ann", "age": 30}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("PIPELINE_LANDING_BUCKET", LANDING)
    monkeypatch.setenv("PIPELINE_QUARANTINE_BUCKET", QUARANTINE)
    monkeypatch.setenv("PIPELINE_UPLOAD_MAX_BYTES", "1000")
    monkeypatch.setenv("PIPELINE_EVENTS_MAX_BYTES", "4096")
    # S3 as AWS answers it where moto does not (conditional writes atomic across request threads above all).
    moto_compat.apply()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (LANDING, QUARANTINE):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=LANDING, VersioningConfiguration={"Status": "Enabled"})
        handler = importlib.reload(importlib.import_module("pipeline.handlers.ingest"))
        yield Api(handler, s3)


class Api:
    def __init__(self, handler: ModuleType, s3: Any) -> None:
        self.handler, self.s3 = handler, s3

    def call(
        self,
        method: str,
        path: str,
        *,
        sub: str | None = ALICE,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        route: str | None = None,
        path_parameters: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        event = http_event(
            method,
            path,
            sub=sub,
            body=body,
            headers=headers or {},
            route=route,
            path_parameters=path_parameters,
        )
        context = LocalLambdaContext(
            function_name="it-ingest-api",
            invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:it-ingest-api",
            memory_limit_in_mb=512,
            timeout_seconds=30,
        )
        response = self.handler.handler(event, context)
        raw = response.get("body") or ""
        if response.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode()
        return response["statusCode"], response.get("headers") or {}, json.loads(raw) if raw else None

    def post_json(self, path: str, document: Any, **options: Any) -> tuple[int, dict[str, str], Any]:
        headers = {"content-type": "application/json", **options.pop("headers", {})}
        return self.call("POST", path, body=json.dumps(document), headers=headers, **options)

    def events(self, dataset: str, records: Any, key: str, **options: Any) -> tuple[int, dict[str, str], Any]:
        return self.post_json(
            f"/events/{dataset}",
            records,
            headers={"idempotency-key": key},
            route="POST /events/{dataset}",
            path_parameters={"dataset": dataset},
            **options,
        )

    def landed(self, prefix: str) -> list[dict[str, Any]]:
        return self.s3.list_object_versions(Bucket=LANDING, Prefix=prefix).get("Versions", [])


# -- POST /uploads -------------------------------------------------------------------------------------------


def test_an_upload_form_puts_one_file_under_the_callers_prefix_with_its_uploader(api: Api) -> None:
    status, _, form = api.post_json(
        "/uploads", {"file_name": "users.csv", "content_type": "text/csv", "size": 60}
    )
    assert status == 201, form
    assert form["key"] == f"uploads/{ALICE}/{form['upload_id']}/users.csv"
    assert form["upload_id"].endswith(owner_tag(ALICE))
    assert form["dataset"] == "users"
    assert form["fields"]["Content-Type"] == "text/csv"
    assert form["fields"]["x-amz-meta-uploaded-by"] == ALICE
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 60] in conditions
    assert {"x-amz-meta-uploaded-by": ALICE} in conditions
    assert {"Content-Type": "text/csv"} in conditions
    assert {"key": form["key"]} in conditions
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= 300

    # The form works (moto serves it through requests' mocked transport) and the object names its uploader.
    body = b"user_id,email\nu1,a@example.com\n"
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("users.csv", body)}, timeout=10)
    assert posted.status_code in (200, 204), posted.text
    head = api.s3.head_object(Bucket=LANDING, Key=form["key"])
    assert head["Metadata"]["uploaded-by"] == ALICE
    assert head["ContentType"] == "text/csv"


def test_two_forms_never_share_a_key(api: Api) -> None:
    request = {"file_name": "users.csv", "content_type": "text/csv", "size": 10}
    keys = {api.post_json("/uploads", request)[2]["key"] for _ in range(5)}
    assert len(keys) == 5


def test_an_upload_too_big_is_413(api: Api) -> None:
    status, _, body = api.post_json(
        "/uploads", {"file_name": "users.csv", "content_type": "text/csv", "size": 1001}
    )
    assert status == 413
    assert "1000 bytes" in body["message"]


@pytest.mark.parametrize(
    ("file_name", "content_type"),
    [("users.csv", "application/pdf"), ("report.pdf", "application/pdf"), ("users.csv.gz", "text/csv")],
)
def test_a_file_of_the_wrong_type_is_415(api: Api, file_name: str, content_type: str) -> None:
    request = {"file_name": file_name, "content_type": content_type, "size": 10}
    status, _, body = api.post_json("/uploads", request)
    assert status == 415, body


def test_a_request_that_is_not_json_is_415(api: Api) -> None:
    status, _, _ = api.call(
        "POST", "/uploads", body="file_name=users.csv", headers={"content-type": "text/plain"}
    )
    assert status == 415
    document = json.dumps({"file_name": "users.csv", "content_type": "text/csv", "size": 1})
    status, _, _ = api.call("POST", "/uploads", body=document, headers={"content-type": "text/plain"})
    assert status == 415


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "",
        "*/*",
    ],
)
def test_a_body_of_another_type_is_415_not_a_500(api: Api, content_type: str) -> None:
    # Found by the schemathesis fuzz (tests/e2e/test_ingest_fuzz.py): multipart without a boundary was a 500.
    document = json.dumps({"file_name": "users.csv", "content_type": "text/csv", "size": 1})
    status, _, body = api.call("POST", "/uploads", body=document, headers={"content-type": content_type})
    assert status == 415, body


@pytest.mark.parametrize("body", [b"9;\xffZH\xfe?2I", b'\xef\xbb\xbf{"file_name": 1}', b"{", b"[]"])
def test_a_body_that_is_not_a_json_object_is_422(api: Api, body: bytes) -> None:
    # Found by the fuzz test too: a body that is not UTF-8 (API Gateway passes it base64-encoded) was a 500.
    status, _, answer = api.call("POST", "/uploads", body=body, headers={"content-type": "application/json"})
    assert status == 422, answer


def test_a_bad_upload_request_is_422_with_per_field_errors(api: Api) -> None:
    status, _, body = api.post_json("/uploads", {"file_name": "../etc/users.csv", "size": 0, "owner": BOB})
    assert status == 422
    fields = {tuple(error["loc"][1:]): error for error in body["detail"]}
    assert set(fields) == {("file_name",), ("content_type",), ("size",), ("owner",)}, body
    assert "plain file name" in fields[("file_name",)]["msg"]
    assert fields[("owner",)]["type"] == "extra_forbidden"  # no user id is taken from the body


def test_a_gzipped_ndjson_upload_is_application_gzip(api: Api) -> None:
    request = {"file_name": "events-1.ndjson.gz", "content_type": "application/gzip", "size": 10}
    status, _, form = api.post_json("/uploads", request)
    assert status == 201, form
    assert form["dataset"] == "events"


# -- 401 -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "route", "parameters"),
    [
        ("POST", "/uploads", None, None),
        ("POST", "/events/users", "POST /events/{dataset}", {"dataset": "users"}),
        ("GET", "/files", None, None),
        ("GET", "/files/abc", "GET /files/{upload_id}", {"upload_id": "abc"}),
    ],
)
def test_no_claims_is_401_on_every_route(
    api: Api, method: str, path: str, route: str | None, parameters: dict[str, str] | None
) -> None:
    headers = {"content-type": "application/json", "idempotency-key": "k" * 16}
    body = (
        json.dumps({"file_name": "users.csv", "content_type": "text/csv", "size": 1})
        if method == "POST"
        else None
    )
    status, _, answer = api.call(
        method, path, sub=None, body=body, headers=headers, route=route, path_parameters=parameters
    )
    assert status == 401, answer
    assert api.landed("") == []


def test_no_claims_is_401_before_the_request_is_validated(api: Api) -> None:
    status, _, answer = api.call(
        "POST", "/uploads", sub=None, body="{", headers={"content-type": "application/json"}
    )
    assert status == 401, answer


def test_a_sub_that_cannot_be_a_key_segment_is_401(api: Api) -> None:
    status, _, _ = api.post_json(
        "/uploads", {"file_name": "users.csv", "content_type": "text/csv", "size": 1}, sub="../bob"
    )
    assert status == 401


# -- POST /events/{dataset} ----------------------------------------------------------------------------------


def test_a_batch_lands_once_as_json_lines_with_its_valid_records_and_names_the_rejected(api: Api) -> None:
    records = [GOOD_USER, {"user_id": "u2", "email": "not-an-email"}, "text", {**GOOD_USER, "user_id": "u3"}]
    status, headers, result = api.events("users", records, "key-0000001")
    assert status == 202, result
    assert headers["Idempotent-Replayed"] == "false"
    assert result["validated"] is True
    assert (result["records_received"], result["records_accepted"], result["records_rejected"]) == (4, 2, 2)
    rejected = {item["index"]: item["reasons"] for item in result["rejected"]}
    assert set(rejected) == {1, 2}
    assert any("email" in reason for reason in rejected[1])
    assert rejected[2] == ["record must be a JSON object"]
    assert result["key"] == f"events/{ALICE}/{result['batch_id']}/users-{result['batch_id']}.jsonl"

    landed = api.s3.get_object(Bucket=LANDING, Key=result["key"])
    assert landed["Metadata"]["uploaded-by"] == ALICE
    lines = [orjson.loads(line) for line in landed["Body"].read().splitlines()]
    assert [line["user_id"] for line in lines] == ["u1", "u3"]


def test_the_same_idempotency_key_twice_lands_one_object_and_answers_the_same(api: Api) -> None:
    first = api.events("users", [GOOD_USER], "retry-0000001")
    second = api.events("users", [GOOD_USER], "retry-0000001")
    assert first[0] == second[0] == 202
    assert first[2] == second[2]
    assert second[1]["Idempotent-Replayed"] == "true"
    assert len(api.landed(f"events/{ALICE}/")) == 1


def test_concurrent_retries_land_one_object(api: Api) -> None:
    answers: list[tuple[int, Any]] = []

    def send() -> None:
        status, _, result = api.events("users", [GOOD_USER, {**GOOD_USER, "user_id": "u9"}], "concurrent-001")
        answers.append((status, result))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8
    assert {status for status, _ in answers} == {202}
    assert len({json.dumps(result, sort_keys=True) for _, result in answers}) == 1
    assert len(api.landed(f"events/{ALICE}/")) == 1


def test_the_same_key_with_another_batch_is_409_and_lands_nothing_more(api: Api) -> None:
    assert api.events("users", [GOOD_USER], "reused-00001")[0] == 202
    status, _, _ = api.events("users", [{**GOOD_USER, "user_id": "other"}], "reused-00001")
    assert status == 409
    assert len(api.landed(f"events/{ALICE}/")) == 1


GOOD_EVENT = {
    "event_id": "e-1",
    "type": "click",
    "user_id": "u-1",
    "timestamp": "2024-05-01T10:00:00Z",
    "properties": {"target": "signup"},
}


def test_the_same_key_from_two_users_or_two_datasets_lands_apart(api: Api) -> None:
    assert api.events("users", [GOOD_USER], "shared-00001")[0] == 202
    assert api.events("users", [GOOD_USER], "shared-00001", sub=BOB)[0] == 202
    assert api.events("events", [GOOD_EVENT], "shared-00001")[0] == 202
    assert len(api.landed(f"events/{ALICE}/")) == 2
    assert len(api.landed(f"events/{BOB}/")) == 1


def test_ndjson_bodies_are_taken_and_a_bad_line_is_one_rejected_record(api: Api) -> None:
    body = orjson.dumps(GOOD_USER) + b"\n\n{broken\n" + orjson.dumps({**GOOD_USER, "user_id": "u2"}) + b"\n"
    status, _, result = api.call(
        "POST",
        "/events/users",
        body=body,
        headers={"content-type": "application/x-ndjson", "idempotency-key": "ndjson-00001"},
        route="POST /events/{dataset}",
        path_parameters={"dataset": "users"},
    )
    assert status == 202, result
    assert result["records_accepted"] == 2
    assert [item["index"] for item in result["rejected"]] == [1]
    assert result["rejected"][0]["reasons"][0].startswith("not JSON")


def test_events_are_validated_against_their_schema_too(api: Api) -> None:
    no_zone = {**GOOD_EVENT, "event_id": "e-2", "timestamp": "2024-05-01T10:00:00"}
    status, _, result = api.events("events", [GOOD_EVENT, no_zone, [1, 2]], "events-00001")
    assert status == 202, result
    assert result["validated"] is True
    assert result["records_accepted"] == 1
    assert [item["index"] for item in result["rejected"]] == [1, 2]


def test_an_unknown_dataset_is_404(api: Api) -> None:
    status, _, body = api.events("orders", [GOOD_USER], "unknown-00001")
    assert status == 404
    assert "orders" in body["message"]


def test_a_batch_too_big_is_413_and_lands_nothing(api: Api) -> None:
    records = [
        {**GOOD_USER, "user_id": f"u{index}"} for index in range(100)
    ]  # over the 4096 bytes configured
    status, _, _ = api.events("users", records, "toobig-00001")
    assert status == 413
    assert api.landed("") == []


def test_a_batch_of_the_wrong_type_is_415(api: Api) -> None:
    status, _, _ = api.call(
        "POST",
        "/events/users",
        body="user_id,email\nu1,a@example.com\n",
        headers={"content-type": "text/csv", "idempotency-key": "csvbody-0001"},
        route="POST /events/{dataset}",
        path_parameters={"dataset": "users"},
    )
    assert status == 415


def test_a_batch_with_no_valid_record_is_422_lists_them_and_lands_nothing(api: Api) -> None:
    status, _, result = api.events("users", [{"user_id": "x"}, {"email": "a@example.com"}], "invalid-00001")
    assert status == 422
    assert [item["index"] for item in result["rejected"]] == [0, 1]
    assert all(item["reasons"] for item in result["rejected"])
    assert api.landed("") == []


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, [GOOD_USER]),  # no Idempotency-Key
        ({"idempotency-key": "short"}, [GOOD_USER]),
        ({"idempotency-key": "valid-key-0001"}, {"not": "an array"}),
        ({"idempotency-key": "valid-key-0001"}, []),
    ],
)
def test_a_bad_batch_request_is_422(api: Api, headers: dict[str, str], body: Any) -> None:
    status, _, answer = api.post_json(
        "/events/users",
        body,
        headers=headers,
        route="POST /events/{dataset}",
        path_parameters={"dataset": "users"},
    )
    assert status == 422, answer
    if not headers:
        assert answer["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert api.landed("") == []


# -- GET /files ----------------------------------------------------------------------------------------------


def _processed(api: Api, key: str, *, loaded: int, rejected: int, status: str = "loaded") -> None:
    """What the loaders write for a landed file: its datalake and database manifests."""
    version = api.s3.put_object(Bucket=LANDING, Key=key, Body=b"x")["VersionId"]
    ref = ObjectRef(bucket=LANDING, key=key, event_time=datetime.now(UTC), version_id=version)
    write_manifest(api.s3, QUARANTINE, ref, describe("datalake", "loaded", "users", ref, lake_key="lake/x"))
    errors = [RecordError(line=3, reasons=["email: not an email address"])] if rejected else []
    manifest = describe(
        "database",
        status,  # type: ignore[arg-type]
        "users",
        ref,
        records_read=loaded + rejected,
        records_loaded=loaded,
        records_rejected=rejected,
        first_errors=errors,
    )
    write_manifest(api.s3, QUARANTINE, ref, manifest)


def test_files_lists_only_the_callers_files_with_their_outcome(api: Api) -> None:
    alice_id, bob_id = "a" * 20 + owner_tag(ALICE), "b" * 20 + owner_tag(BOB)
    _processed(api, f"uploads/{ALICE}/{alice_id}/users.csv", loaded=2, rejected=1, status="partial")
    _processed(api, f"uploads/{BOB}/{bob_id}/users.csv", loaded=5, rejected=0)

    status, _, listing = api.call("GET", "/files")
    assert status == 200, listing
    assert [entry["upload_id"] for entry in listing["files"]] == [alice_id]
    entry = listing["files"][0]
    assert entry["status"] == "partial"
    assert entry["kind"] == "upload"
    assert entry["file_name"] == "users.csv"
    assert entry["database"]["records_loaded"] == 2
    assert entry["database"]["first_reasons"] == ["line 3: email: not an email address"]
    assert entry["datalake"]["status"] == "loaded"

    status, _, listing = api.call("GET", "/files", sub=BOB)
    assert [entry["upload_id"] for entry in listing["files"]] == [bob_id]


def test_files_of_a_batch_show_under_its_batch_id(api: Api) -> None:
    _, _, result = api.events("users", [GOOD_USER], "listed-00001")
    _processed(api, result["key"], loaded=1, rejected=0)
    status, _, found = api.call(
        "GET",
        f"/files/{result['batch_id']}",
        route="GET /files/{upload_id}",
        path_parameters={"upload_id": result["batch_id"]},
    )
    assert status == 200, found
    assert found[0]["kind"] == "events"
    assert found[0]["status"] == "loaded"


def test_one_file_of_the_caller_and_403_for_anothers(api: Api) -> None:
    bob_id = "b" * 20 + owner_tag(BOB)
    _processed(api, f"uploads/{BOB}/{bob_id}/users.csv", loaded=5, rejected=0)

    def get(upload_id: str, sub: str) -> tuple[int, Any]:
        status, _, body = api.call(
            "GET",
            f"/files/{upload_id}",
            sub=sub,
            route="GET /files/{upload_id}",
            path_parameters={"upload_id": upload_id},
        )
        return status, body

    status, body = get(bob_id, BOB)
    assert status == 200, body
    assert body[0]["database"]["records_loaded"] == 5
    status, body = get(bob_id, ALICE)
    assert status == 403
    assert "records_loaded" not in json.dumps(body)
    assert get("c" * 20 + owner_tag(ALICE), ALICE)[0] == 404  # the caller's id, nothing landed under it
    assert get("not-an-id", ALICE)[0] == 404
