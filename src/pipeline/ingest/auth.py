"""Who is calling: the claims API Gateway's JWT authorizer verified, and the ownership of ids.

The function never verifies a token itself and never takes a user id from the request: API Gateway has
checked the signature, issuer, audience and expiry, and hands the verified claims over in
``requestContext.authorizer.jwt.claims``. An event without them did not come through the authorizer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError

# Cognito subs are UUIDs; any other issuer's subject must still be safe as one S3 key segment.
_SUB = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
OWNER_TAG_LENGTH = 8


@dataclass(frozen=True, slots=True)
class Caller:
    sub: str
    username: str | None = None

    @property
    def owner_tag(self) -> str:
        return owner_tag(self.sub)


def owner_tag(sub: str) -> str:
    """The last characters of every id the API hands out: which user an id belongs to, without a lookup.

    A request for another user's id is told 403 rather than 404; a digest, so ids do not spell the sub out.
    """
    return hashlib.sha256(sub.encode()).hexdigest()[:OWNER_TAG_LENGTH]


def caller_from(event: dict[str, Any]) -> Caller:
    """The caller from the authorizer's verified claims, or 401."""
    request_context = event.get("requestContext") or {}
    authorizer = request_context.get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _SUB.match(sub):
        raise UnauthorizedError("a valid bearer token is required")
    token_use = claims.get("token_use")
    if token_use not in (None, "id", "access"):
        raise UnauthorizedError("a valid bearer token is required")
    username = claims.get("cognito:username") or claims.get("username")
    return Caller(sub=sub, username=username if isinstance(username, str) else None)
