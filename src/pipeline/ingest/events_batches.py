"""POST /events/{dataset}: a batch of JSON records, validated, then landed once per Idempotency-Key.

The batch lands as one JSON Lines object of its valid records,
``events/<sub>/<batch id>/<dataset>-<batch id>.jsonl``, where the batch id is a digest of the dataset, the
caller and the idempotency key: a retry computes the same key, and ``PutObject`` with ``If-None-Match: *``
lets exactly one of any number of concurrent requests create it. A retry gets the same answer; the same key
with another body is a conflict (409), since landing it would lose one of the two.

Records are validated with the same code the database loader runs on the landed file
(:func:`pipeline.validation.iter_validated_batches`, the dataset's schema and contract), so what the API
accepts the loader loads. A dataset without a schema takes any JSON object, and the answer says so.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from pipeline.datasets import DATASETS, Dataset, route
from pipeline.ingest.auth import Caller
from pipeline.ingest.settings import IngestSettings
from pipeline.objects import ObjectRef
from pipeline.validation import iter_validated_batches

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EVENTS_PREFIX = "events/"
MAX_RECORDS = 10_000
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl"}
)
# S3 answers 409 ConditionalRequestConflict while a concurrent conditional write of the same key is in flight.
CONFLICT_RETRIES = 5


class RejectedRecord(BaseModel):
    index: int = Field(
        description="0-based position of the record in the body (array element or NDJSON line)"
    )
    reasons: list[str]


class BatchResult(BaseModel):
    batch_id: str
    dataset: str
    key: str = Field(description="The landing bucket key the batch's valid records were written to.")
    validated: bool = Field(description="False: the dataset has no schema, any JSON object was accepted.")
    note: str | None = None
    records_received: int
    records_accepted: int
    records_rejected: int
    rejected: list[RejectedRecord]


class NoValidRecordsError(Exception):
    """Every record of the batch was rejected: nothing lands, the answer (422) lists them all."""

    def __init__(self, result: BatchResult) -> None:
        super().__init__("no record of the batch is valid")
        self.result = result


@dataclass(frozen=True, slots=True)
class Batch:
    dataset: Dataset
    caller: Caller
    idempotency_key: str
    body: bytes
    content_type: str


def dataset_named(name: str) -> Dataset:
    for dataset in DATASETS:
        if dataset.name == name:
            return dataset
    raise NotFoundError(f"no dataset {name!r}; known: {', '.join(d.name for d in DATASETS)}")


def batch_id(dataset: Dataset, caller: Caller, idempotency_key: str) -> str:
    identity = f"{dataset.name}\n{caller.sub}\n{idempotency_key}"
    return hashlib.sha256(identity.encode()).hexdigest()[:24] + caller.owner_tag


def batch_key(dataset: Dataset, caller: Caller, identifier: str) -> str:
    return f"{EVENTS_PREFIX}{caller.sub}/{identifier}/{dataset.name}-{identifier}.jsonl"


def _parse(body: bytes, content_type: str) -> list[tuple[object, str | None]]:
    """The body's records, each with why it cannot be a record (None: it can)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in JSON_TYPES:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ServiceError(422, f"the body is not JSON: {exc}") from None
        if not isinstance(document, list):
            raise ServiceError(422, "a application/json body must be a JSON array of records")
        values: list[tuple[object, str | None]] = [(value, None) for value in document]
    elif media in NDJSON_TYPES:
        values = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                values.append((orjson.loads(line), None))
            except orjson.JSONDecodeError as exc:
                values.append((line.decode(errors="replace"), f"not JSON: {exc}"))
    else:
        accepted = ", ".join(sorted(JSON_TYPES | NDJSON_TYPES))
        raise ServiceError(
            415, f"Content-Type {content_type or '(none)'} is not taken; send one of {accepted}"
        )
    if not values:
        raise ServiceError(422, "the batch holds no records")
    if len(values) > MAX_RECORDS:
        raise ServiceError(413, f"{len(values)} records: a batch holds at most {MAX_RECORDS}")
    return [
        (value, reason if reason is not None or isinstance(value, dict) else "record must be a JSON object")
        for value, reason in values
    ]


def _validate(dataset: Dataset, key: str, records: list[dict[str, object]]) -> dict[int, list[str]]:
    """Reasons per position in ``records``, from the loader's own validation of the file they will form."""
    if dataset.schema is None or not records:
        return {}
    ref = ObjectRef(bucket="ingest-api", key=key, event_time=datetime.now(UTC))
    stream = io.BytesIO(b"".join(orjson.dumps(record) + b"\n" for record in records))
    reasons: dict[int, list[str]] = {}
    for validated in iter_validated_batches(
        stream, schema=dataset.schema, ref=ref, fmt="jsonl", contract=dataset.contract
    ):
        for rejection in validated.rejections:
            reasons[rejection.line - 1] = rejection.reasons
    return reasons


def evaluate(batch: Batch, key: str) -> tuple[list[dict[str, object]], list[RejectedRecord]]:
    """The valid records, in order, and the rejected ones with their reasons."""
    parsed = _parse(batch.body, batch.content_type)
    rejected: list[RejectedRecord] = []
    candidates: list[tuple[int, dict[str, object]]] = []
    for index, (value, reason) in enumerate(parsed):
        if reason is not None or not isinstance(value, dict):
            rejected.append(RejectedRecord(index=index, reasons=[reason or "record must be a JSON object"]))
        else:
            candidates.append((index, value))
    reasons = _validate(batch.dataset, key, [record for _, record in candidates])
    accepted: list[dict[str, object]] = []
    for position, (index, record) in enumerate(candidates):
        if position in reasons:
            rejected.append(RejectedRecord(index=index, reasons=reasons[position]))
        else:
            accepted.append(record)
    rejected.sort(key=lambda item: item.index)
    return accepted, rejected


def land(s3: S3Client, settings: IngestSettings, batch: Batch) -> tuple[BatchResult, bool]:
    """Validate and land ``batch`` unless its key has landed already; returns the result and whether this
    request was a replay of one that landed before."""
    if len(batch.body) > settings.events_max_bytes:
        raise ServiceError(
            413, f"{len(batch.body)} bytes: a batch is limited to {settings.events_max_bytes} bytes"
        )
    if not IDEMPOTENCY_KEY.match(batch.idempotency_key):
        raise ServiceError(422, "Idempotency-Key must be 8-128 letters, digits or . _ : - (a UUID will do)")
    identifier = batch_id(batch.dataset, batch.caller, batch.idempotency_key)
    key = batch_key(batch.dataset, batch.caller, identifier)
    if route(key) is not batch.dataset:
        raise NotFoundError(f"dataset {batch.dataset.name!r} does not take JSON Lines files")
    accepted, rejected = evaluate(batch, key)
    note = (
        None
        if batch.dataset.schema is not None
        else (f"dataset {batch.dataset.name!r} has no schema: every JSON object is accepted as it is")
    )
    result = BatchResult(
        batch_id=identifier,
        dataset=batch.dataset.name,
        key=key,
        validated=batch.dataset.schema is not None,
        note=note,
        records_received=len(accepted) + len(rejected),
        records_accepted=len(accepted),
        records_rejected=len(rejected),
        rejected=rejected,
    )
    if not accepted:
        raise NoValidRecordsError(result)
    request_digest = hashlib.sha256(batch.body).hexdigest()
    body = b"".join(orjson.dumps(record) + b"\n" for record in accepted)
    return result, not _put_once(
        s3, settings.landing_bucket, key, body, batch=batch, request_digest=request_digest
    )


def _put_once(s3: S3Client, bucket: str, key: str, body: bytes, *, batch: Batch, request_digest: str) -> bool:
    """Create ``key`` unless it exists: True when this call created it. The same key with another request
    body is refused (409)."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                IfNoneMatch="*",
                ContentType="application/x-ndjson",
                # Lineage: who sent it, and what, so a retry can be told from a reuse of the key.
                Metadata={
                    "uploaded-by": batch.caller.sub,
                    "request-sha256": request_digest,
                    "idempotency-key-sha256": hashlib.sha256(batch.idempotency_key.encode()).hexdigest(),
                },
            )
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalRequestConflict":
                time.sleep(0.05 * (attempt + 1))
                continue
            if code not in ("PreconditionFailed", "412"):
                raise
        landed = s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("request-sha256")
        if landed != request_digest:
            raise ServiceError(409, "this Idempotency-Key was used for another batch: use a new key")
        return False
    raise ServiceError(409, "a request with this Idempotency-Key is in progress: retry it")
