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
(write only if it still holds that ETag / holds nothing); moto 5.2 ignores both on a copy, so a lost race could
not be shown. This patch checks them as moto's own ``PutObject`` does.

**Redrive policies.** moto returns a queue's ``RedrivePolicy`` attribute as ``json.dumps(...)`` with spaces;
AWS returns compact JSON. The Terraform AWS provider compares the string as is, so without this every plan
after an apply would "update" both queues.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.exceptions import PreconditionFailed
from moto.s3.models import FakeBucket
from moto.s3.responses import S3Response
from moto.sqs.models import Queue

_PATCHED_ATTRIBUTE = "_pipeline_condition_patch"
_REDRIVE_PATCHED_ATTRIBUTE = "_pipeline_compact_redrive_policy"
_COPY_PATCHED_ATTRIBUTE = "_pipeline_conditional_copy"


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
        return result

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
