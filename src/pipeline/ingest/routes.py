"""The ingest API's routes (Powertools' APIGatewayHttpResolver with pydantic validation and OpenAPI).

Importing this module reads no environment: ``scripts/openapi.py`` imports it to write ``docs/openapi.json``.
The handler (:mod:`pipeline.handlers.ingest`) calls :func:`configure` once, at cold start.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError, UnauthorizedError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from pipeline.ingest import events_batches, files, uploads
from pipeline.ingest.auth import caller_from
from pipeline.ingest.settings import IngestSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger()
app = APIGatewayHttpResolver(enable_validation=True)

OPENAPI_TITLE = "Ingest API"
OPENAPI_VERSION = "1.0.0"
SECURITY: list[dict[str, list[str]]] = [{"cognito": []}]


class ErrorBody(BaseModel):
    statusCode: int  # noqa: N815 (Powertools' own error shape)
    message: str


class FieldError(BaseModel):
    loc: list[str | int]
    type: str
    msg: str


class ValidationErrorBody(BaseModel):
    statusCode: int  # noqa: N815
    detail: list[FieldError]


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"model": model}}


def _responses(success: tuple[int, str, Any], *codes: int) -> dict[int, Any]:
    """The route's answers for the OpenAPI document: its success, then the errors it gives."""
    described = {
        401: "No token, or one the authorizer refused (API Gateway answers before the function runs)",
        403: "Another user's file",
        404: "No such dataset or file",
        409: "The Idempotency-Key was used for another batch",
        413: "Too large",
        415: "Wrong content type",
        422: "Invalid request, with per-field errors",
    }
    status, description, model = success
    responses: dict[int, Any] = {status: {"description": description, "content": _json(model)}}
    for code in codes:
        responses[code] = {
            "description": described[code],
            "content": _json(ValidationErrorBody if code == 422 else ErrorBody),
        }
    return responses


@dataclass
class _Dependencies:
    settings: IngestSettings | None = None
    s3: S3Client | None = None


_deps = _Dependencies()


def configure(settings: IngestSettings, s3: S3Client) -> None:
    _deps.settings, _deps.s3 = settings, s3


def _configured() -> tuple[IngestSettings, S3Client]:
    if _deps.settings is None or _deps.s3 is None:
        raise RuntimeError("pipeline.ingest.routes.configure() was not called")
    return _deps.settings, _deps.s3


def _header(name: str) -> str:
    headers = app.current_event.headers or {}
    return next((value for key, value in headers.items() if key.lower() == name), "")


def _raw_body() -> bytes:
    body = app.current_event.body or ""
    if app.current_event.is_base64_encoded:
        return base64.b64decode(body)
    return body.encode()


@app.post(
    "/uploads",
    status_code=201,
    summary="A presigned POST for one file under the caller's prefix",
    description=(
        "The form uploads exactly one file to `uploads/<caller sub>/<upload id>/<file name>` in the landing "
        "bucket, at most `size` bytes, as the content type its extension calls for (.csv text/csv, .jsonl "
        "and "
        ".ndjson application/x-ndjson, .json application/json, any of them .gz application/gzip), within a "
        "few minutes. The object records its uploader (`x-amz-meta-uploaded-by`)."
    ),
    responses=_responses((201, "The form to upload the file with", uploads.UploadForm), 401, 413, 415, 422),
    security=SECURITY,
    tags=["uploads"],
)
def post_upload(request: Annotated[uploads.UploadRequest, Body()]) -> uploads.UploadForm:
    caller = caller_from(app.current_event.raw_event)
    settings, s3 = _configured()
    return uploads.presign(s3, settings, caller, request)


@app.post(
    "/events/<dataset>",
    status_code=202,
    summary="Land a batch of JSON records once per Idempotency-Key",
    description=(
        "The body is a JSON array of records (application/json) or one record per line "
        "(application/x-ndjson), bounded in size. Records are validated with the dataset's schema first; "
        "the valid ones land as one JSON Lines object whose key derives from the dataset, the caller and "
        "the Idempotency-Key, so a retried request never lands twice and gets the same answer "
        "(`Idempotent-Replayed: true`). The answer lists each rejected record with its reasons; when none "
        "is valid nothing lands (422)."
    ),
    responses={
        **_responses(
            (202, "Landed (or landed before: a replay)", events_batches.BatchResult), 401, 404, 409, 413, 415
        ),
        422: {
            "description": "No valid record (the result lists them all), or an invalid request",
            "content": _json(events_batches.BatchResult),
        },
    },
    security=SECURITY,
    tags=["events"],
)
def post_events(
    dataset: Annotated[str, Path(description="A dataset of the registry: users, events")],
    idempotency_key: Annotated[
        str,
        Header(
            alias="idempotency-key",
            min_length=8,
            max_length=128,
            pattern=events_batches.IDEMPOTENCY_KEY.pattern,
            description="Chosen by the client (a UUID), the same for every retry of one batch",
        ),
    ],
) -> Response[events_batches.BatchResult]:
    caller = caller_from(app.current_event.raw_event)
    settings, s3 = _configured()
    batch = events_batches.Batch(
        dataset=events_batches.dataset_named(dataset),
        caller=caller,
        idempotency_key=idempotency_key,
        body=_raw_body(),
        content_type=_header("content-type"),
    )
    result, replayed = events_batches.land(s3, settings, batch)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=result,
        headers={"Idempotent-Replayed": "true" if replayed else "false"},
    )


@app.get(
    "/files",
    summary="The caller's files and their outcome",
    responses=_responses((200, "The caller's files, newest first", files.FileList), 401),
    security=SECURITY,
    tags=["files"],
)
def get_files() -> files.FileList:
    caller = caller_from(app.current_event.raw_event)
    settings, s3 = _configured()
    return files.list_files(s3, settings.quarantine_bucket, caller)


@app.get(
    "/files/<upload_id>",
    summary="One upload or batch of the caller's: each landed version and its outcome",
    responses=_responses((200, "Each landed version of the file", list[files.FileOutcome]), 401, 403, 404),
    security=SECURITY,
    tags=["files"],
)
def get_file(
    upload_id: Annotated[str, Path(description="The upload_id of POST /uploads or batch_id of POST /events")],
) -> list[files.FileOutcome]:
    caller = caller_from(app.current_event.raw_event)
    settings, s3 = _configured()
    return files.get_file(s3, settings.quarantine_bucket, caller, upload_id)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid(exc: RequestValidationError) -> Response[ValidationErrorBody]:
    # Powertools hides pydantic's messages by default; ours name the field and the rule, and echo no input.
    detail = [
        FieldError(loc=list(error["loc"]), type=error["type"], msg=str(error.get("msg", "")))
        for error in exc.errors()
    ]
    return Response(
        status_code=422,
        content_type=content_types.APPLICATION_JSON,
        body=ValidationErrorBody(statusCode=422, detail=detail),
    )


@app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
def _unsupported(_exc: RequestUnsupportedContentType) -> Response[ErrorBody]:
    # Powertools refuses a body it cannot parse as JSON before the route runs: a wrong type, not a bad field.
    return _error(415, "send the request as application/json")


@app.exception_handler(events_batches.NoValidRecordsError)  # type: ignore[untyped-decorator]
def _nothing_valid(exc: events_batches.NoValidRecordsError) -> Response[events_batches.BatchResult]:
    return Response(status_code=422, content_type=content_types.APPLICATION_JSON, body=exc.result)


def _error(status: int, message: str) -> Response[ErrorBody]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=ErrorBody(statusCode=status, message=message),
    )


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def _unexpected(exc: Exception) -> Response[ErrorBody]:
    if isinstance(exc, ServiceError):
        return _error(exc.status_code, str(exc.msg))
    logger.exception("unexpected error")
    return _error(500, "internal error")


# POST /events reads its body itself (a JSON array or NDJSON, which Powertools' body validation cannot parse):
# its request body is described here instead of by a Body() parameter.
EVENTS_REQUEST_BODY = {
    "required": True,
    "description": "The records: a JSON array of objects, or one JSON object per line",
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}


# Routes whose body Powertools parses into a model: JSON only. Powertools would also parse a form or a
# multipart body (a multipart type without a boundary raised a ValueError: a 500 the fuzz test found).
JSON_BODY_ROUTES = frozenset({"POST /uploads"})


def _refusal(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": ErrorBody(statusCode=status, message=message).model_dump_json(),
        "isBase64Encoded": False,
    }


def _media_type(event: dict[str, Any]) -> str:
    headers = event.get("headers") or {}
    value = next((value for key, value in headers.items() if key.lower() == "content-type"), "")
    return str(value).split(";", 1)[0].strip().lower()


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway event: 401 first when it carries no verified caller, before any validation
    (Powertools validates the request before a route runs, and a stranger learns nothing from a 422), then
    415 for a JSON route's body of another type."""
    try:
        caller_from(event)
    except UnauthorizedError as exc:
        return _refusal(401, str(exc.msg))
    if event.get("routeKey") in JSON_BODY_ROUTES:
        if _media_type(event) != content_types.APPLICATION_JSON:
            return _refusal(415, "send the request as application/json")
        if not _utf8_body(event):
            return _not_utf8()
    return app.resolve(event, context)


def _utf8_body(event: dict[str, Any]) -> bool:
    """A body API Gateway passed base64-encoded (it was not UTF-8 text) is not JSON: Powertools would fail
    decoding it with a UnicodeDecodeError, a 500."""
    if not event.get("isBase64Encoded") or not event.get("body"):
        return True
    try:
        base64.b64decode(str(event["body"])).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _not_utf8() -> dict[str, Any]:
    detail = [FieldError(loc=["body"], type="json_invalid", msg="the body is not UTF-8 encoded JSON")]
    return {
        "statusCode": 422,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": ValidationErrorBody(statusCode=422, detail=detail).model_dump_json(),
        "isBase64Encoded": False,
    }


def openapi_json() -> str:
    """The API's OpenAPI document, as published in docs/openapi.json."""
    document = json.loads(_generated())
    document["paths"]["/events/{dataset}"]["post"]["requestBody"] = EVENTS_REQUEST_BODY
    return json.dumps(document, indent=2) + "\n"


def _generated() -> str:
    return app.get_openapi_json_schema(
        title=OPENAPI_TITLE,
        version=OPENAPI_VERSION,
        description=(
            "The pipeline's ingest API: presigned uploads, idempotent event batches and the caller's files. "
            "Every route needs a Cognito token (Authorization: Bearer), verified by API Gateway."
        ),
        servers=[Server(url="/")],
        security_schemes={"cognito": HTTPBearer(bearerFormat="JWT")},
        security=SECURITY,
        openapi_extensions=None,
    )
