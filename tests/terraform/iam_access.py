"""IAM for the least-privilege test: what an AWS API call needs, and whether a role's policies grant it.

Three small pieces, each usable (and unit-tested) without AWS:

- :func:`required_access`: one recorded botocore call -> the IAM actions and resource ARNs AWS authorises it
  against. The table is explicit; an operation that is not in it raises :class:`UnmappedCallError`, and so
  does a parameter that would change the permissions needed (ACLs, object lock, SSE-KMS), so a new call
  cannot slip through unchecked.
- :class:`PolicySet`: an evaluator for a role's identity policies (and its permissions boundary, if any):
  explicit Deny wins, then an Allow, else implicit deny; ``*`` and ``?`` wildcards on Action
  (case-insensitive) and Resource (case-sensitive, per ARN segment). Statements with a ``Condition`` cannot
  be evaluated without the request context, so they are taken the safe way for a *proof of permission*: a
  conditional Allow grants nothing, a conditional Deny applies.
- :class:`CallRecorder`: records every call that clients of one botocore session make, with the HTTP status
  each call was answered with.

Why not ``moto.iam.access_control.IAMPolicy``: in moto 5.2.5 it turns a pattern into a regular expression
without escaping it (the ``.`` of ``a.b`` matches any character), matches actions case-sensitively, treats
``?`` as a regex quantifier, answers PERMITTED for an Allow with ``NotResource`` whatever the resource, and
counts a condition it cannot evaluate as met. The first, fourth and fifth over-grant, which is the wrong
direction for a test that must prove a permission.

References: the Service Authorization Reference (``Actions, resources, and condition keys for Amazon S3``,
``... for Amazon DynamoDB``, ``... for Amazon SQS``, ``... for Amazon CloudWatch Logs``), S3's ``Required
permissions for Amazon S3 API operations``, and IAM's ``IAM JSON policy elements: Resource`` (wildcards).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlparse

# -- what a call needs ---------------------------------------------------------------------------------------


class UnmappedCallError(AssertionError):
    """A call (or a parameter of it) the mapping table does not know: add it, with its IAM actions."""


@dataclass
class RecordedCall:
    """One AWS API call as a client made it: botocore service name, operation, parameters, and the answer."""

    service: str
    operation: str
    params: Mapping[str, Any]
    region: str
    status: int | None = None  # HTTP status of the answer (None: no answer recorded, e.g. connection error)
    error_code: str | None = None

    def __str__(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass(frozen=True, order=True)
class Access:
    """One (IAM action, resource ARN) pair AWS authorises a call against, and why it is needed."""

    action: str
    resource: str
    reason: str = field(default="", compare=False)


@dataclass(frozen=True)
class Context:
    """What ARNs are built from besides the call itself."""

    account: str
    partition: str = "aws"


Mapper = Callable[[RecordedCall, Context], list[Access]]


def _s3_object(ctx: Context, bucket: str, key: str) -> str:
    return f"arn:{ctx.partition}:s3:::{bucket}/{key}"


def _s3_bucket(ctx: Context, bucket: str) -> str:
    return f"arn:{ctx.partition}:s3:::{bucket}"


def _copy_source(value: Any) -> tuple[str, str, str | None]:
    """(bucket, key, version) of a CopySource: boto3's dict, or the string botocore serialises it to."""
    if isinstance(value, Mapping):
        return str(value["Bucket"]), str(value["Key"]), value.get("VersionId")
    text = str(value)
    path, _, query = text.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if bucket.startswith("arn:") or not key:
        raise UnmappedCallError(f"CopySource {text!r}: access point or malformed sources are not mapped")
    version = None
    for pair in query.split("&") if query else []:
        name, _, val = pair.partition("=")
        if name == "versionId":
            version = unquote(val)
        else:
            raise UnmappedCallError(f"CopySource {text!r}: query parameter {name!r} is not mapped")
    return bucket, key, version


# Parameters that make S3 check more actions than the table below models (s3:PutObjectAcl,
# s3:PutObjectRetention, s3:PutObjectLegalHold, kms:GenerateDataKey/Decrypt): fail rather than under-report.
_UNMODELLED_S3_PARAMS = frozenset(
    {
        "ACL",
        "GrantFullControl",
        "GrantRead",
        "GrantReadACP",
        "GrantWriteACP",
        "ObjectLockMode",
        "ObjectLockRetainUntilDate",
        "ObjectLockLegalHoldStatus",
        "SSEKMSKeyId",
        "SSEKMSEncryptionContext",
        "RequestPayer",
    }
)


def _read_object(ctx: Context, bucket: str, key: str, version: str | None, why: str) -> Access:
    # A request that names a version is authorised as s3:GetObjectVersion, otherwise as s3:GetObject.
    action = "s3:GetObjectVersion" if version else "s3:GetObject"
    return Access(action, _s3_object(ctx, bucket, key), why)


def _s3_get(call: RecordedCall, ctx: Context) -> list[Access]:
    """HeadObject / GetObject: read the object (or version); a 404 answer also needs s3:ListBucket."""
    p = call.params
    needed = [_read_object(ctx, p["Bucket"], p["Key"], p.get("VersionId"), "read")]
    if call.status == 404:
        # Without s3:ListBucket on the bucket, S3 answers a missing key with 403 AccessDenied, not 404: the
        # code saw "not found" here, and only gets it on AWS with this permission (HeadObject API reference).
        needed.append(Access("s3:ListBucket", _s3_bucket(ctx, p["Bucket"]), "404 instead of 403"))
    return needed


def _s3_put(call: RecordedCall, ctx: Context) -> list[Access]:
    """PutObject / CreateMultipartUpload: write the object; tags given with it need s3:PutObjectTagging."""
    p = call.params
    dest = _s3_object(ctx, p["Bucket"], p["Key"])
    needed = [Access("s3:PutObject", dest, "write")]
    if p.get("Tagging"):
        needed.append(Access("s3:PutObjectTagging", dest, "tags given with the object"))
    return needed


def _s3_copy(call: RecordedCall, ctx: Context) -> list[Access]:
    """CopyObject: read the source (version), write the destination; the default COPY tagging directive
    carries the source's tags over, which needs s3:GetObject(Version)Tagging on the source and
    s3:PutObjectTagging on the destination (AWS knowledge center: "copy between buckets")."""
    p = call.params
    bucket, key, version = _copy_source(p["CopySource"])
    dest = _s3_object(ctx, p["Bucket"], p["Key"])
    needed = [
        _read_object(ctx, bucket, key, version, "copy source"),
        Access("s3:PutObject", dest, "copy destination"),
    ]
    directive = p.get("TaggingDirective", "COPY")
    if directive == "COPY":
        tagging = "s3:GetObjectVersionTagging" if version else "s3:GetObjectTagging"
        needed.append(Access(tagging, _s3_object(ctx, bucket, key), "tags copied from the source"))
        needed.append(Access("s3:PutObjectTagging", dest, "tags copied to the destination"))
    elif p.get("Tagging"):
        needed.append(Access("s3:PutObjectTagging", dest, "tags given with the copy"))
    return needed


def _s3_upload_part_copy(call: RecordedCall, ctx: Context) -> list[Access]:
    """UploadPartCopy (multipart copy above 5 GiB): read the source (version), write the destination."""
    p = call.params
    bucket, key, version = _copy_source(p["CopySource"])
    return [
        _read_object(ctx, bucket, key, version, "part copy source"),
        Access("s3:PutObject", _s3_object(ctx, p["Bucket"], p["Key"]), "part copy destination"),
    ]


def _s3_object_action(action: str, versioned_action: str | None = None) -> Mapper:
    """An object-level operation authorised as one action (or its *Version variant given a VersionId)."""

    def mapper(call: RecordedCall, ctx: Context) -> list[Access]:
        p = call.params
        name = versioned_action if versioned_action and p.get("VersionId") else action
        return [Access(name, _s3_object(ctx, p["Bucket"], p["Key"]), call.operation)]

    return mapper


def _s3_bucket_action(action: str) -> Mapper:
    def mapper(call: RecordedCall, ctx: Context) -> list[Access]:
        return [Access(action, _s3_bucket(ctx, call.params["Bucket"]), call.operation)]

    return mapper


def _dynamodb_table_arn(call: RecordedCall, ctx: Context, table: str) -> str:
    if table.startswith("arn:"):
        return table  # DynamoDB also takes a table ARN as TableName
    return f"arn:{ctx.partition}:dynamodb:{call.region}:{ctx.account}:table/{table}"


def _dynamodb_table(action: str) -> Mapper:
    def mapper(call: RecordedCall, ctx: Context) -> list[Access]:
        if call.params.get("IndexName"):
            raise UnmappedCallError(f"{call}: queries of an index (table/<t>/index/<i>) are not mapped")
        return [Access(action, _dynamodb_table_arn(call, ctx, call.params["TableName"]), call.operation)]

    return mapper


def _dynamodb_batch(action: str) -> Mapper:
    """BatchGetItem / BatchWriteItem: the action on every table the request names."""

    def mapper(call: RecordedCall, ctx: Context) -> list[Access]:
        tables = sorted(call.params["RequestItems"])
        return [Access(action, _dynamodb_table_arn(call, ctx, table), call.operation) for table in tables]

    return mapper


def _dynamodb_transaction(call: RecordedCall, ctx: Context) -> list[Access]:
    """TransactWriteItems: each item's own action (Put -> dynamodb:PutItem, ...) on its table."""
    actions = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem"}
    actions["ConditionCheck"] = "dynamodb:ConditionCheckItem"
    accesses = []
    for item in call.params["TransactItems"]:
        ((kind, request),) = item.items()
        table = _dynamodb_table_arn(call, ctx, request["TableName"])
        accesses.append(Access(actions[kind], table, call.operation))
    return sorted(set(accesses), key=lambda access: (access.action, access.resource))


def _sqs_queue_by_name(call: RecordedCall, ctx: Context) -> list[Access]:
    """GetQueueUrl names the queue and (optionally) its owner instead of giving a URL."""
    account = call.params.get("QueueOwnerAWSAccountId") or ctx.account
    arn = f"arn:{ctx.partition}:sqs:{call.region}:{account}:{call.params['QueueName']}"
    return [Access("sqs:GetQueueUrl", arn, call.operation)]


def _sqs_queue_arn(call: RecordedCall, ctx: Context) -> str:
    # https://sqs.<region>.amazonaws.com/<account>/<name> (emulators: http://host:port/<account>/<name>)
    parts = [part for part in urlparse(call.params["QueueUrl"]).path.split("/") if part]
    if len(parts) != 2:
        raise UnmappedCallError(f"{call}: queue URL {call.params['QueueUrl']!r} is not <account>/<name>")
    account, name = parts
    return f"arn:{ctx.partition}:sqs:{call.region}:{account}:{name}"


def _sqs_queue(action: str) -> Mapper:
    def mapper(call: RecordedCall, ctx: Context) -> list[Access]:
        return [Access(action, _sqs_queue_arn(call, ctx), call.operation)]

    return mapper


def _logs_stream(action: str) -> Mapper:
    """CreateLogStream / PutLogEvents, authorised on the stream: AWS's own Lambda examples grant both on
    ``arn:aws:logs:<region>:<account>:log-group:/aws/lambda/<function>:*``."""

    def mapper(call: RecordedCall, ctx: Context) -> list[Access]:
        p = call.params
        arn = (
            f"arn:{ctx.partition}:logs:{call.region}:{ctx.account}:log-group:{p['logGroupName']}"
            f":log-stream:{p['logStreamName']}"
        )
        return [Access(action, arn, call.operation)]

    return mapper


def _unscoped(action: str) -> Mapper:
    """An action without resource-level permissions: AWS authorises it on "*"."""

    def mapper(call: RecordedCall, ctx: Context) -> list[Access]:
        return [Access(action, "*", call.operation)]

    return mapper


# (botocore service name, operation) -> the IAM actions and resources AWS checks. Keep it small and explicit:
# only operations the pipeline (or the SDK on its behalf: s3transfer, retries) makes, or plausibly will.
MAPPING: dict[tuple[str, str], Mapper] = {
    # S3 objects. Reads name s3:GetObjectVersion when the request carries a VersionId.
    ("s3", "HeadObject"): _s3_get,
    ("s3", "GetObject"): _s3_get,
    ("s3", "PutObject"): _s3_put,
    ("s3", "CopyObject"): _s3_copy,
    # Multipart upload / copy (s3transfer above its threshold): every step is authorised as s3:PutObject,
    # except aborting and listing parts, which have their own actions.
    ("s3", "CreateMultipartUpload"): _s3_put,
    ("s3", "UploadPart"): _s3_object_action("s3:PutObject"),
    ("s3", "UploadPartCopy"): _s3_upload_part_copy,
    ("s3", "CompleteMultipartUpload"): _s3_object_action("s3:PutObject"),
    ("s3", "AbortMultipartUpload"): _s3_object_action("s3:AbortMultipartUpload"),
    ("s3", "ListParts"): _s3_object_action("s3:ListMultipartUploadParts"),
    # Tag APIs (s3transfer's multipart copy calls them with TaggingDirective=COPY/REPLACE).
    ("s3", "GetObjectTagging"): _s3_object_action("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    ("s3", "PutObjectTagging"): _s3_object_action("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    # S3 buckets.
    ("s3", "ListObjectVersions"): _s3_bucket_action("s3:ListBucketVersions"),
    ("s3", "ListObjectsV2"): _s3_bucket_action("s3:ListBucket"),
    ("s3", "ListObjects"): _s3_bucket_action("s3:ListBucket"),
    # DynamoDB: the action of the same name, on the table (batch operations: on every table named).
    ("dynamodb", "GetItem"): _dynamodb_table("dynamodb:GetItem"),
    ("dynamodb", "PutItem"): _dynamodb_table("dynamodb:PutItem"),
    ("dynamodb", "BatchGetItem"): _dynamodb_batch("dynamodb:BatchGetItem"),
    ("dynamodb", "BatchWriteItem"): _dynamodb_batch("dynamodb:BatchWriteItem"),
    ("dynamodb", "TransactWriteItems"): _dynamodb_transaction,
    # SQS: on the queue; the batch operations are authorised as their single-message action.
    ("sqs", "ReceiveMessage"): _sqs_queue("sqs:ReceiveMessage"),
    ("sqs", "DeleteMessage"): _sqs_queue("sqs:DeleteMessage"),
    ("sqs", "DeleteMessageBatch"): _sqs_queue("sqs:DeleteMessage"),
    ("sqs", "ChangeMessageVisibility"): _sqs_queue("sqs:ChangeMessageVisibility"),
    ("sqs", "ChangeMessageVisibilityBatch"): _sqs_queue("sqs:ChangeMessageVisibility"),
    ("sqs", "GetQueueAttributes"): _sqs_queue("sqs:GetQueueAttributes"),
    ("sqs", "GetQueueUrl"): _sqs_queue_by_name,
    ("sqs", "SendMessage"): _sqs_queue("sqs:SendMessage"),
    ("sqs", "SendMessageBatch"): _sqs_queue("sqs:SendMessage"),
    # CloudWatch Logs, as the Lambda runtime writes a function's logs with its role.
    ("logs", "CreateLogStream"): _logs_stream("logs:CreateLogStream"),
    ("logs", "PutLogEvents"): _logs_stream("logs:PutLogEvents"),
    # X-Ray, as the Lambda runtime sends an actively traced function's segments.
    ("xray", "PutTraceSegments"): _unscoped("xray:PutTraceSegments"),
    ("xray", "PutTelemetryRecords"): _unscoped("xray:PutTelemetryRecords"),
}


def required_access(call: RecordedCall, ctx: Context) -> list[Access]:
    """The (action, resource) pairs AWS authorises ``call`` against; unknown calls fail loudly."""
    mapper = MAPPING.get((call.service, call.operation))
    if mapper is None:
        raise UnmappedCallError(
            f"{call} is not in the IAM mapping table (tests/terraform/iam_access.py MAPPING): add it with the"
            " actions and resources AWS authorises it against (Service Authorization Reference)"
        )
    if call.service == "s3":
        unmodelled = set(_UNMODELLED_S3_PARAMS & set(call.params))
        if call.params.get("ServerSideEncryption") in {"aws:kms", "aws:kms:dsse"}:
            unmodelled.add("ServerSideEncryption")
        if unmodelled:
            raise UnmappedCallError(f"{call}: parameters {sorted(unmodelled)} need actions the table lacks")
    return mapper(call, ctx)


# -- what a role grants --------------------------------------------------------------------------------------


class PolicyNotSupportedError(ValueError):
    """A policy construct this evaluator does not model (so it cannot vouch for the answer)."""


def _as_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


@functools.cache
def _action_regex(pattern: str) -> re.Pattern[str]:
    # Action names are case-insensitive; * is any run of characters, ? any one character.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL)


@functools.cache
def _resource_regex(pattern: str) -> re.Pattern[str]:
    # Resource ARNs are case-sensitive. Wildcards work within a colon-separated segment, except that a * that
    # ends a segment may expand beyond the colon (IAM JSON policy elements: Resource, "Using wildcards").
    out: list[str] = []
    for i, c in enumerate(pattern):
        if c == "*":
            ends_segment = i + 1 == len(pattern) or pattern[i + 1] == ":"
            out.append(".*" if ends_segment else "[^:]*")
        elif c == "?":
            out.append("[^:]")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    return _action_regex(pattern).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    if "${" in pattern:
        raise PolicyNotSupportedError(f"policy variables are not evaluated: {pattern!r}")
    return _resource_regex(pattern).fullmatch(resource) is not None


@dataclass(frozen=True)
class Statement:
    """One statement of an identity-based policy, as AWS reads it."""

    label: str  # "<policy name>/<Sid or index>", for messages
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    actions_negated: bool  # NotAction
    resources: tuple[str, ...]
    resources_negated: bool  # NotResource
    conditional: bool

    @property
    def sid(self) -> str:
        return self.label.rsplit("/", 1)[-1]

    def applies_to(self, action: str, resource: str) -> bool:
        action_hit = any(action_matches(p, action) for p in self.actions)
        resource_hit = any(resource_matches(p, resource) for p in self.resources)
        return action_hit != self.actions_negated and resource_hit != self.resources_negated


def parse_statements(document: str | Mapping[str, Any], name: str = "policy") -> tuple[Statement, ...]:
    """The statements of a policy document (JSON text, or already decoded as boto3 returns it)."""
    doc = json.loads(document) if isinstance(document, str) else document
    raw = doc["Statement"]
    statements = [raw] if isinstance(raw, Mapping) else list(raw)
    parsed: list[Statement] = []
    for index, st in enumerate(statements):
        label = f"{name}/{st.get('Sid') or index}"
        if st.get("Effect") not in {"Allow", "Deny"}:
            raise PolicyNotSupportedError(f"{label}: Effect must be Allow or Deny, not {st.get('Effect')!r}")
        if "Principal" in st or "NotPrincipal" in st:
            raise PolicyNotSupportedError(f"{label}: a Principal makes this a resource policy, not a role's")
        if ("Action" in st) == ("NotAction" in st):
            raise PolicyNotSupportedError(f"{label}: exactly one of Action and NotAction is required")
        if ("Resource" in st) == ("NotResource" in st):
            raise PolicyNotSupportedError(f"{label}: exactly one of Resource and NotResource is required")
        parsed.append(
            Statement(
                label=label,
                effect=st["Effect"],
                actions=_as_tuple(st.get("Action", st.get("NotAction"))),
                actions_negated="NotAction" in st,
                resources=_as_tuple(st.get("Resource", st.get("NotResource"))),
                resources_negated="NotResource" in st,
                conditional=bool(st.get("Condition")),
            )
        )
    return tuple(parsed)


class Verdict(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    allowed_by: tuple[str, ...] = ()
    denied_by: tuple[str, ...] = ()
    conditional_allows_ignored: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOWED


def _decide(statements: Iterable[Statement], action: str, resource: str) -> Decision:
    allows: list[str] = []
    denies: list[str] = []
    ignored: list[str] = []
    for st in statements:
        if not st.applies_to(action, resource):
            continue
        if st.effect == "Deny":
            denies.append(st.label)  # a conditional Deny is taken as applying (the safe side)
        elif st.conditional:
            ignored.append(st.label)  # a conditional Allow is not counted (its condition is unknown here)
        else:
            allows.append(st.label)
    if denies:
        verdict = Verdict.EXPLICIT_DENY
    elif allows:
        verdict = Verdict.ALLOWED
    else:
        verdict = Verdict.IMPLICIT_DENY
    return Decision(verdict, tuple(allows), tuple(denies), tuple(ignored))


@dataclass(frozen=True)
class PolicySet:
    """A role's identity policies (inline and attached, all in force at once) and its boundary, if any."""

    identity: tuple[Statement, ...]
    boundary: tuple[Statement, ...] | None = None

    def decide(self, action: str, resource: str) -> Decision:
        decision = _decide(self.identity, action, resource)
        if self.boundary is None or decision.verdict is Verdict.EXPLICIT_DENY:
            return decision
        bounded = _decide(self.boundary, action, resource)
        if bounded.allowed:
            return decision
        # The boundary caps what the identity policies grant: outside it, nothing is allowed.
        return replace(bounded, allowed_by=(), conditional_allows_ignored=decision.conditional_allows_ignored)

    def without(self, *sids: str) -> PolicySet:
        """A copy without the identity statements of these Sids (to show the check notices them missing)."""
        missing = set(sids) - {st.sid for st in self.identity}
        if missing:
            raise KeyError(f"no statement with Sid {sorted(missing)}")
        return replace(self, identity=tuple(st for st in self.identity if st.sid not in sids))


@dataclass(frozen=True)
class CheckedAccess:
    call: str
    access: Access
    decision: Decision


def check_calls(calls: Iterable[RecordedCall], policies: PolicySet, ctx: Context) -> list[CheckedAccess]:
    """Every (action, resource) the calls need, each with the policies' decision (duplicates collapsed)."""
    seen: dict[tuple[str, str], CheckedAccess] = {}
    for call in calls:
        for access in required_access(call, ctx):
            key = (access.action, access.resource)
            if key not in seen:
                seen[key] = CheckedAccess(str(call), access, policies.decide(access.action, access.resource))
    return sorted(seen.values(), key=lambda c: (c.access.action, c.access.resource))


# -- least privilege the other way round ---------------------------------------------------------------------

# Actions with no resource-level permissions: the only ones a Resource "*" is acceptable for (Service
# Authorization Reference: their "Resource types" column is empty). Add to it only from that reference.
NO_RESOURCE_LEVEL_ACTIONS = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})


def overbroad(statements: Sequence[Statement]) -> list[str]:
    """Allow statements that grant more than named actions on named resources, with the reason."""
    problems: list[str] = []
    for st in statements:
        if st.effect != "Allow":
            continue
        if st.actions_negated or st.resources_negated:
            problems.append(f"{st.label}: NotAction/NotResource in an Allow grants everything else")
            continue
        for action in st.actions:
            if "*" in action or "?" in action:
                problems.append(f"{st.label}: wildcard action {action!r}")
        for resource in st.resources:
            if resource == "*":
                broad = sorted(set(st.actions) - NO_RESOURCE_LEVEL_ACTIONS)
                if broad:
                    problems.append(
                        f"{st.label}: Resource '*' for {broad}, which have resource-level permissions"
                    )
                continue
            segments = resource.split(":", 5)
            if len(segments) != 6 or any(c in "".join(segments[:5]) for c in "*?"):
                problems.append(
                    f"{st.label}: resource {resource!r} is malformed or wildcards its service/region/account"
                )
            elif segments[5] in {"*", "*/*"}:
                problems.append(f"{st.label}: resource {resource!r} names every resource of the service")
    return problems


# -- recording the calls a session's clients make ------------------------------------------------------------


class CallRecorder:
    """Records the calls of every client created from a botocore/boto3 session after :meth:`attach`.

    ``before-parameter-build`` fires once per API call (not per retry) with the caller's parameters;
    ``after-call`` fires with the HTTP answer (also for error answers, before botocore raises), and the two
    share the call's request context, which is how the answer is matched to its call.
    """

    _KEY = "least_privilege_call"

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self._lock = threading.Lock()
        self._active = False

    def attach(self, events: Any) -> None:
        self._active = True
        events.register("before-parameter-build", self._before, unique_id="least-privilege-before")
        events.register("after-call", self._after, unique_id="least-privilege-after")

    def detach(self, events: Any) -> None:
        """Stop recording. Clients created meanwhile keep a copy of the hooks, which now do nothing."""
        self._active = False
        events.unregister("before-parameter-build", unique_id="least-privilege-before")
        events.unregister("after-call", unique_id="least-privilege-after")

    def take(self) -> list[RecordedCall]:
        """The calls recorded since the last take()."""
        with self._lock:
            calls, self.calls = self.calls, []
        return calls

    def _before(self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self._active:
            return
        call = RecordedCall(
            service=model.service_model.service_name,
            operation=model.name,
            # A shallow copy minus the payload: later handlers rewrite some values (CopySource), and a
            # streaming Body cannot be copied.
            params={name: value for name, value in params.items() if name != "Body"},
            region=str(context.get("client_region") or ""),
        )
        context[self._KEY] = call
        with self._lock:
            self.calls.append(call)

    def _after(
        self, http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        call = context.get(self._KEY)
        if isinstance(call, RecordedCall):
            call.status = int(http_response.status_code)
            error = parsed.get("Error") or {}
            call.error_code = error.get("Code") if isinstance(error, Mapping) else None
