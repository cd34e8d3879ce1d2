"""API Gateway HTTP API (payload format 2.0) events, as the JWT authorizer hands them to a function.

The caller API Gateway verified is in ``requestContext.authorizer.jwt.claims``; without ``sub`` the event is
one no authorizer let through (the function must answer 401).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any


def http_event(
    method: str,
    path: str,
    *,
    sub: str | None,
    body: bytes | str | None,
    headers: dict[str, str],
    route: str | None,
    path_parameters: dict[str, str] | None,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event; headers lower-cased, as API Gateway sends them."""
    now = datetime.now(UTC)
    encoded = isinstance(body, bytes)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", **headers},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route or f"{method} {path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    if path_parameters:
        event["pathParameters"] = path_parameters
    if sub is not None:
        event["requestContext"]["authorizer"] = {
            "jwt": {
                "claims": {
                    "sub": sub,
                    "iss": f"https://cognito-idp.{region}.amazonaws.com/{region}_pool",
                    "client_id": "client",
                    "token_use": "access",
                    "username": sub,
                    "exp": str(int(now.timestamp()) + 3600),
                },
                "scopes": None,
            }
        }
    return event
