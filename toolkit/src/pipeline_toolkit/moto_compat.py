"""Where moto 5 answers unlike AWS in ways the deployed stack runs into, make it answer like AWS.

Applied to the moto server running in this process (the embedded emulator) before it starts, by
:func:`pipeline_toolkit.embedded.embedded_stack` and the test suite's ``emulator`` fixture. Idempotent.

**Bucket policy conditions.** The stack's buckets deny every request made without TLS
(``"Bool": {"aws:SecureTransport": "false"}``), as they should. moto 5 evaluates bucket policies on object
requests but supports only ``StringEquals`` in a ``Condition`` and knows no request context for bucket
policies; it treats a condition it cannot evaluate as met, so that statement's Deny applies to *every*
request and no object can be written. AWS evaluates a condition whose key is absent from the request context
as not met. This patch applies that rule: for a bucket policy, a statement with a ``Condition`` moto cannot
evaluate does not apply (neither its Deny nor its Allow). Everything else in the policy (principals,
actions, resources) is evaluated by moto as before.

**Conditional copies.** AWS honours ``If-Match`` / ``If-None-Match`` on ``CopyObject`` for the destination
(write only if it still holds that ETag / holds nothing); moto 5.2 ignores both on a copy, so a lost race
could not be shown. This patch checks them as moto's own ``PutObject`` does.

**Conditional writes are atomic.** AWS checks a ``PutObject`` / ``CopyObject`` condition
(``If-None-Match: *``, ``If-Match``) and writes in one step, so of two concurrent conditional creates of one
key exactly one wins; moto checks, then writes, unguarded across request threads, so under load both can pass
the check and both land (seen: the ingest API's concurrent-retries test, once in a CI run). This patch holds
one lock from the check to the write of every conditional write; unconditional writes are left as they are.

**Transactions at table size.** moto 5.2 backs up every table a ``TransactWriteItems`` names with a deep
copy before applying it, so one transaction costs time proportional to the table (measured: 4.8 s for 25
items against a 6,000-item table, 5 items/s; AWS answers in milliseconds whatever the table holds). This patch
applies a transaction the way AWS defines it, all or nothing, without the copy: every condition is checked
first, and the writes are applied only if none failed.

**Scans during writes.** moto's Scan iterates the table's item dict unguarded; a write from another request
thread makes it fail with a 500. This patch scans a snapshot.
**S3 limits.** moto stores any object key and any amount of user metadata; AWS refuses a key over 1,024
bytes (400 ``KeyTooLongError``) and user metadata whose names and values add up to more than 2 KB in UTF-8
(400 ``MetadataTooLarge``), so a lake copy of a long key can fail on AWS only. This patch refuses both, on
PutObject, CopyObject, multipart uploads and POST uploads. Metadata names are counted without their
``x-amz-meta-`` prefix, as AWS documents it.

**Bucket names.** moto checks only a bucket name's length; AWS also refuses characters other than lowercase
letters, digits, dots and hyphens, names that do not start and end with a letter or digit, ``..``, IP
addresses, the reserved prefixes ``xn--``, ``sthree-``, ``amzn-s3-demo-`` and the reserved suffixes
``-s3alias``, ``--ol-s3``, ``.mrap``, ``--x-s3``, ``--table-s3`` (400 ``InvalidBucketName``). This patch
applies those rules to CreateBucket.

**Redrive policies.** moto returns a queue's ``RedrivePolicy`` attribute as ``json.dumps(...)`` with spaces;
AWS returns compact JSON. The Terraform AWS provider compares the string as is, so without this every plan
after an apply would "update" both queues. moto also stores a ``RedriveAllowPolicy`` but never returns it
(nor accepts its name in GetQueueAttributes), so the provider would see it vanish after every apply; this
patch returns it as it was set.

**Named queries.** moto 5.2 creates, reads and lists Athena named queries but lacks ``DeleteNamedQuery``
(a 500), so ``terraform destroy`` of the catalog module failed (fast, with the embedded target's low retry
budget). This patch deletes the query, as AWS does.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from moto.athena.responses import AthenaResponse
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3 import responses as s3_responses
from moto.s3.exceptions import InvalidBucketName, PreconditionFailed, S3ClientError
from moto.s3.models import FakeBucket, S3Backend
from moto.s3.responses import S3Response
from moto.sqs.models import Queue

_PATCHED_ATTRIBUTE = "_pipeline_condition_patch"
_REDRIVE_PATCHED_ATTRIBUTE = "_pipeline_compact_redrive_policy"
_COPY_PATCHED_ATTRIBUTE = "_pipeline_conditional_copy"
_ATOMIC_PATCHED_ATTRIBUTE = "_pipeline_atomic_conditional_writes"
_CONDITIONAL_WRITES = threading.Lock()
_TRANSACTION_PATCHED_ATTRIBUTE = "_pipeline_transactions_without_copies"
_SCAN_PATCHED_ATTRIBUTE = "_pipeline_scans_snapshot"
_LIMITS_PATCHED_ATTRIBUTE = "_pipeline_s3_limits"
_BUCKET_NAMES_PATCHED_ATTRIBUTE = "_pipeline_bucket_name_rules"
_NAMED_QUERY_PATCHED_ATTRIBUTE = "_pipeline_delete_named_query"

#: AWS's limits on an object key and on its user metadata (UTF-8 bytes).
MAX_KEY_BYTES = 1024
MAX_USER_METADATA_BYTES = 2048
_META_PREFIX = "x-amz-meta-"

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


class KeyTooLongError(S3ClientError):
    def __init__(self) -> None:
        super().__init__("KeyTooLongError", "Your key is too long")


class MetadataTooLargeError(S3ClientError):
    def __init__(self) -> None:
        super().__init__(
            "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size."
        )


def bucket_name_problem(name: str) -> str | None:
    """Why AWS would refuse ``name`` for a general purpose bucket, or None when it would accept it."""
    if not _BUCKET_NAME.match(name):
        return "3-63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit"
    if ".." in name:
        return "two adjacent dots"
    if _IP_ADDRESS.match(name):
        return "formatted as an IP address"
    prefix = next((p for p in RESERVED_BUCKET_PREFIXES if name.startswith(p)), None)
    if prefix:
        return f"the reserved prefix {prefix}"
    suffix = next((s for s in RESERVED_BUCKET_SUFFIXES if name.endswith(s)), None)
    if suffix:
        return f"the reserved suffix {suffix}"
    return None


def _header_bytes(value: Any) -> int:
    text = str(value)
    try:
        # A header value arrives decoded as Latin-1 by the HTTP server: these are its bytes on the wire.
        return len(text.encode("latin-1"))
    except UnicodeEncodeError:
        return len(text.encode())


def user_metadata_size(metadata: Any) -> int:
    """User metadata as AWS counts it: the bytes of every name (without ``x-amz-meta-``) and value."""
    return sum(
        _header_bytes(name[len(_META_PREFIX) :]) + _header_bytes(value)
        for name, value in metadata.items()
        if str(name).lower().startswith(_META_PREFIX)
    )


def statements_without_conditions(policy: str) -> str:
    """The policy with every statement that carries a ``Condition`` removed."""
    document = json.loads(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    document["Statement"] = [statement for statement in statements if not statement.get("Condition")]
    return json.dumps(document)


def apply() -> None:
    """Apply every patch (idempotent)."""
    _evaluate_bucket_policy_conditions_like_aws()
    _compact_redrive_policy()
    _conditional_copy_like_aws()
    _conditional_writes_atomic()  # after the conditional copy: the lock spans its check too
    _transactions_without_table_copies()
    _s3_key_and_metadata_limits()
    _bucket_name_rules()
    _scans_while_writing()
    _delete_named_query()


def _delete_named_query() -> None:
    if getattr(AthenaResponse, _NAMED_QUERY_PATCHED_ATTRIBUTE, False):
        return

    def delete_named_query(self: Any) -> str:
        # AWS answers an id it does not hold with success too (the deletion is idempotent).
        self.athena_backend.named_queries.pop(self._get_param("NamedQueryId"), None)
        return "{}"

    setattr(AthenaResponse, "delete_named_query", delete_named_query)  # noqa: B010 - patching moto's class
    setattr(AthenaResponse, _NAMED_QUERY_PATCHED_ATTRIBUTE, True)


def _scans_while_writing() -> None:
    """A Scan walks the table's item dict while other request threads write to it: moto 5.2 then fails the
    Scan with "dictionary changed size during iteration" (a 500). AWS scans while writes go on; this walks a
    snapshot (``list()`` of a dict's values is taken in one step under the GIL)."""
    if getattr(Table, _SCAN_PATCHED_ATTRIBUTE, False):
        return

    def all_items(self: Any) -> list[Any]:
        items: list[Any] = []
        for hash_set in list(self.items.values()):
            if self.range_key_attr:
                items.extend(list(hash_set.values()))
            else:
                items.append(hash_set)
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    setattr(Table, "all_items", all_items)  # noqa: B010 - patching moto's class
    setattr(Table, _SCAN_PATCHED_ATTRIBUTE, True)


def _evaluate_bucket_policy_conditions_like_aws() -> None:
    if getattr(FakeBucket, _PATCHED_ATTRIBUTE, False):
        return

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = self.policy.decode() if isinstance(self.policy, bytes) else str(self.policy)
        return IAMPolicy(statements_without_conditions(policy)).is_action_permitted(action, resource)

    setattr(FakeBucket, "get_permission", get_permission)  # noqa: B010 - patching a method of moto's class
    setattr(FakeBucket, _PATCHED_ATTRIBUTE, True)


def _compact_redrive_policy() -> None:
    if getattr(Queue, _REDRIVE_PATCHED_ATTRIBUTE, False):
        return
    original = Queue.attributes

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = original.fget(self)  # type: ignore[attr-defined]
        if result.get("RedrivePolicy") and self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        if result.get("RedriveAllowPolicy") is None:
            result.pop("RedriveAllowPolicy", None)
        return result

    # _set_attributes stores every attribute it is given (as redrive_allow_policy); a class default lets
    # the listed name be read on queues that have none.
    Queue.redrive_allow_policy = None  # type: ignore[attr-defined]
    if "RedriveAllowPolicy" not in Queue.BASE_ATTRIBUTES:
        Queue.BASE_ATTRIBUTES.append("RedriveAllowPolicy")

    setattr(Queue, "attributes", property(attributes))  # noqa: B010 - patching a property of moto's class
    setattr(Queue, _REDRIVE_PATCHED_ATTRIBUTE, True)


def _conditional_copy_like_aws() -> None:
    if getattr(S3Response, _COPY_PATCHED_ATTRIBUTE, False):
        return
    original = S3Response.copy_object

    def copy_object(self: Any) -> Any:
        if_match = self.headers.get("If-Match")
        if_none_match = self.headers.get("If-None-Match")
        if if_match or if_none_match:
            existing = self.backend.get_object(self.bucket_name, self.parse_key_name())
            if if_match and (existing is None or if_match.replace('"', "") != existing.etag.replace('"', "")):
                raise PreconditionFailed("If-Match")
            if if_none_match == "*" and existing is not None:
                raise PreconditionFailed("If-None-Match")
        return original(self)

    setattr(S3Response, "copy_object", copy_object)  # noqa: B010 - patching a method of moto's class
    setattr(S3Response, _COPY_PATCHED_ATTRIBUTE, True)


def _conditional_writes_atomic() -> None:
    if getattr(S3Response, _ATOMIC_PATCHED_ATTRIBUTE, False):
        return
    for name in ("put_object", "copy_object"):
        original = getattr(S3Response, name)

        def write(self: Any, _original: Any = original) -> Any:
            if self.headers.get("If-None-Match") or self.headers.get("If-Match"):
                with _CONDITIONAL_WRITES:
                    return _original(self)
            return _original(self)

        setattr(S3Response, name, write)
    setattr(S3Response, _ATOMIC_PATCHED_ATTRIBUTE, True)


def _transactions_without_table_copies() -> None:
    if getattr(DynamoDBBackend, _TRANSACTION_PATCHED_ATTRIBUTE, False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:  # noqa: PLR0912
        if len(transact_items) > 100:  # the service limit
            raise TooManyTransactionsException()
        seen: set[tuple[str, str]] = set()
        errors: list[tuple[str | None, str | None, Any]] = []
        writes: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for entry in transact_items:
            if len(entry) != 1:
                raise TransactWriteSingleOpException
            kind, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
            if kind == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            identity = (op["TableName"], str(sorted(key.items())))
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    old = None
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
                    continue
            errors.append((None, None, None))
            writes.append((kind, op, key))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        for kind, op, key in writes:
            names = op.get("ExpressionAttributeNames")
            if kind == "Put":
                self.put_item(op["TableName"], op["Item"])
            elif kind == "Delete":
                self.delete_item(op["TableName"], key)
            elif kind == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )

    setattr(DynamoDBBackend, "transact_write_items", transact_write_items)  # noqa: B010 - patching moto
    setattr(DynamoDBBackend, _TRANSACTION_PATCHED_ATTRIBUTE, True)


def _s3_key_and_metadata_limits() -> None:
    if getattr(S3Backend, _LIMITS_PATCHED_ATTRIBUTE, False):
        return
    # moto's responses call the name they imported from moto.s3.utils: wrap that one.
    original_metadata = getattr(s3_responses, "metadata_from_headers")  # noqa: B009 - not re-exported
    original_put = S3Backend.put_object

    def metadata_from_headers(headers: Any) -> Any:
        metadata = original_metadata(headers)
        if user_metadata_size(metadata) > MAX_USER_METADATA_BYTES:
            raise MetadataTooLargeError()
        return metadata

    # CopyObject and CompleteMultipartUpload store their object through put_object too.
    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        if len(key_name.encode()) > MAX_KEY_BYTES:
            raise KeyTooLongError()
        return original_put(self, bucket_name, key_name, *args, **kwargs)

    setattr(s3_responses, "metadata_from_headers", metadata_from_headers)  # noqa: B010 - patching moto
    setattr(S3Backend, "put_object", put_object)  # noqa: B010 - patching a method of moto's class
    setattr(S3Backend, _LIMITS_PATCHED_ATTRIBUTE, True)


def _bucket_name_rules() -> None:
    if getattr(S3Backend, _BUCKET_NAMES_PATCHED_ATTRIBUTE, False):
        return
    original = S3Backend.create_bucket

    def create_bucket(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        if bucket_name_problem(bucket_name) is not None:
            raise InvalidBucketName()
        return original(self, bucket_name, *args, **kwargs)

    setattr(S3Backend, "create_bucket", create_bucket)  # noqa: B010 - patching a method of moto's class
    setattr(S3Backend, _BUCKET_NAMES_PATCHED_ATTRIBUTE, True)
