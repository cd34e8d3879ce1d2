"""The ingest API end to end on the embedded target: the local gateway in front of the deployed function.

The stack Terraform applied (its HTTP API, JWT authorizer, user pool and the ingest-api function) is read back
from the emulator; users sign in against the emulator's Cognito; each request goes through the gateway's
authorizer to the function in processes of its own, and what lands is loaded by the running pipeline.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.support import Pipeline

from pipeline_toolkit.gateway.local import LocalApi, create_demo_user, sign_in, start_local_api

pytestmark = [pytest.mark.e2e, pytest.mark.terraform]


@pytest.fixture(scope="module")
def local_api(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    if not pipeline.outputs.user_pool_id:
        pytest.fail("the stack has no user pool: the ingest API is part of the default stack")
    served = start_local_api(
        pipeline.clients.environment, pipeline.outputs, log_dir=tmp_path_factory.mktemp("gateway-logs")
    )
    yield served
    served.stop()


@pytest.fixture(scope="module")
def tokens(pipeline: Pipeline) -> dict[str, str]:
    found = {}
    for name in ("alice", "bob"):
        username, password = create_demo_user(
            pipeline.clients.environment, pipeline.outputs, f"{name}-{uuid.uuid4().hex[:6]}@example.com"
        )
        found[name] = sign_in(pipeline.clients.environment, pipeline.outputs, username, password)
    return found


def call(
    url: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, got = error.read(), error.code, dict(error.headers)
    return status, {name.lower(): value for name, value in got.items()}, json.loads(raw) if raw else None


def post_batch(
    api: LocalApi, token: str, key: str, records: list[dict[str, Any]]
) -> tuple[int, dict[str, str], Any]:
    return call(
        f"{api.url}/events/users",
        "POST",
        json.dumps(records).encode(),
        Authorization=f"Bearer {token}",
        **{"Content-Type": "application/json", "Idempotency-Key": key},
    )


GOOD = {
    "user_id": "u-900001",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "gender": "female",
    "age": 36,
}


def test_a_batch_lands_once_is_loaded_and_is_listed_for_its_owner_only(
    pipeline: Pipeline, local_api: LocalApi, tokens: dict[str, str]
) -> None:
    key = str(uuid.uuid4())
    records = [GOOD, {**GOOD, "user_id": "u-900002", "email": "grace@example.com"}, {**GOOD, "age": "old"}]
    status, headers, body = post_batch(local_api, tokens["alice"], key, records)
    assert status == 202, body
    assert headers["idempotent-replayed"] == "false"
    assert (body["records_accepted"], body["records_rejected"]) == (2, 1)
    assert body["rejected"][0]["index"] == 2
    # The retry of a request whose answer was lost: the same key, the same object, nothing lands twice.
    again = post_batch(local_api, tokens["alice"], key, records)
    assert (again[0], again[1]["idempotent-replayed"], again[2]["key"]) == (202, "true", body["key"])
    versions = pipeline.clients.s3.list_object_versions(
        Bucket=pipeline.outputs.landing_bucket, Prefix=body["key"]
    )
    (version,) = versions["Versions"]
    file = pipeline.wait(body["key"], version["VersionId"], time.monotonic())
    assert file.database is not None
    assert file.database.records_loaded == 2
    # Who sent it (the caller's sub, the key's second segment) reaches the manifest and every item.
    sub = body["key"].split("/")[1]
    assert file.database.uploaded_by == sub
    for record_id in ("u-900001", "u-900002"):
        item = pipeline.clients.dynamodb.get_item(
            TableName=pipeline.outputs.table_name, Key={"user_id": {"S": record_id}}
        )["Item"]
        assert item["uploaded_by"] == {"S": sub}
    status, _, listed = call(f"{local_api.url}/files", Authorization=f"Bearer {tokens['alice']}")
    assert status == 200
    mine = [item for item in listed["files"] if item["key"] == body["key"]]
    assert [item["status"] for item in mine] == ["loaded"]
    upload_id = mine[0]["upload_id"]
    assert call(f"{local_api.url}/files/{upload_id}", Authorization=f"Bearer {tokens['alice']}")[0] == 200
    # Bob sees none of it: not in his list, and 403 for the id itself.
    _, _, bobs = call(f"{local_api.url}/files", Authorization=f"Bearer {tokens['bob']}")
    assert all(item["key"] != body["key"] for item in bobs["files"])
    assert call(f"{local_api.url}/files/{upload_id}", Authorization=f"Bearer {tokens['bob']}")[0] == 403


def test_concurrent_retries_of_one_batch_land_one_object(
    pipeline: Pipeline, local_api: LocalApi, tokens: dict[str, str]
) -> None:
    key = str(uuid.uuid4())
    records = [{**GOOD, "user_id": f"u-90001{n}"} for n in range(5)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post_batch(local_api, tokens["alice"], key, records), range(4)))
    assert {answer[0] for answer in answers} == {202}
    (landed_key,) = {answer[2]["key"] for answer in answers}
    versions = pipeline.clients.s3.list_object_versions(
        Bucket=pipeline.outputs.landing_bucket, Prefix=landed_key
    )
    assert len(versions.get("Versions", [])) == 1


def test_the_authorizer_stands_in_front_of_the_function(local_api: LocalApi, tokens: dict[str, str]) -> None:
    assert call(f"{local_api.url}/files")[::2] == (401, {"message": "Unauthorized"})
    assert call(f"{local_api.url}/files", Authorization="Bearer " + tokens["alice"][:-4] + "AAAA")[0] == 401
    assert call(f"{local_api.url}/nothing")[0] == 404


def test_a_presigned_form_for_the_callers_own_prefix(local_api: LocalApi, tokens: dict[str, str]) -> None:
    request = {"file_name": "users.csv", "content_type": "text/csv", "size": 100}
    status, _, form = call(
        f"{local_api.url}/uploads",
        "POST",
        json.dumps(request).encode(),
        Authorization=f"Bearer {tokens['alice']}",
        **{"Content-Type": "application/json"},
    )
    assert status == 201, form
    assert form["key"].startswith("uploads/")
    assert form["key"].endswith("/users.csv")
    assert form["max_bytes"] == 100
    too_big = call(
        f"{local_api.url}/uploads",
        "POST",
        json.dumps({**request, "size": 10**12}).encode(),
        Authorization=f"Bearer {tokens['alice']}",
        **{"Content-Type": "application/json"},
    )
    assert too_big[0] in (413, 422)


def test_every_request_is_in_the_access_log_with_the_callers_sub(local_api: LocalApi) -> None:
    log = Path(local_api.access_log.name).read_text().splitlines()
    records = [json.loads(line) for line in log]
    assert any(record.get("status") == 401 for record in records)
    assert all(
        "authorization" not in json.dumps(record).lower() or "authorizerError" in record for record in records
    )
    assert any(record.get("sub") and record.get("routeKey") == "POST /events/{dataset}" for record in records)
