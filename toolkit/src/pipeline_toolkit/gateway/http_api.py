"""A deployed HTTP API as the local gateway serves it: read from the target, matched, turned into events.

Everything comes from what Terraform deployed (``apigatewayv2`` get_apis, get_routes, get_authorizer,
get_integrations, get_stages): the routes and which need a token, the authorizer's issuer and audience, the
CORS settings, the stage's throttling and the function behind the ``AWS_PROXY`` integration. Nothing here
reads Terraform files, so the gateway serves exactly the API a ``terraform apply`` made.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_apigatewayv2 import ApiGatewayV2Client

# Content types API Gateway passes as text; any other body reaches the function base64-encoded.
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|.*\+json|x-ndjson|jsonl|xml|.*\+xml|javascript|x-www-form-urlencoded))$"
)


class ApiNotFoundError(RuntimeError):
    """The target has no HTTP API with an AWS_PROXY integration to serve."""


@dataclass(frozen=True, slots=True)
class Route:
    """One route key, ``METHOD /path/{param}/{greedy+}`` (or ``$default``), and its authorization."""

    key: str
    authorizer_id: str | None = None

    @property
    def method(self) -> str:
        return "ANY" if self.key == "$default" else self.key.split(" ", 1)[0]

    @property
    def segments(self) -> tuple[str, ...]:
        if self.key == "$default":
            return ()
        return tuple(segment for segment in self.key.split(" ", 1)[1].split("/") if segment)

    def match(self, method: str, path: str) -> dict[str, str] | None:  # noqa: PLR0911 - one per rule
        """The path parameters when this route takes the request, else None."""
        if self.method not in ("ANY", method):
            return None
        if self.key == "$default":
            return {}
        parts = [segment for segment in path.split("/") if segment]
        parameters: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.startswith("{") and segment.endswith("+}"):
                if index >= len(parts):
                    return None
                parameters[segment[1:-2]] = urllib.parse.unquote("/".join(parts[index:]))
                return parameters
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                parameters[segment[1:-1]] = urllib.parse.unquote(parts[index])
            elif segment != parts[index]:
                return None
        return parameters if len(parts) == len(self.segments) else None

    @property
    def specificity(self) -> tuple[int, int, int]:
        """API Gateway prefers literal segments, then single parameters, over greedy ones and ``$default``."""
        literal = sum(1 for segment in self.segments if not segment.startswith("{"))
        greedy = any(segment.endswith("+}") for segment in self.segments)
        return (self.key != "$default", not greedy, literal)


@dataclass(frozen=True, slots=True)
class Cors:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def allows_origin(self, origin: str | None) -> bool:
        return bool(origin) and ("*" in self.allow_origins or origin in self.allow_origins)

    def preflight_headers(self, origin: str, method: str, headers: Sequence[str]) -> dict[str, str] | None:
        """The answer to a preflight the configuration admits, else None (the browser then refuses)."""
        if not self.allows_origin(origin):
            return None
        methods = {name.upper() for name in self.allow_methods}
        if "*" not in methods and method.upper() not in methods:
            return None
        allowed = {name.lower() for name in self.allow_headers}
        if "*" not in allowed and any(name.lower() not in allowed for name in headers if name):
            return None
        answer = {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": ",".join(self.allow_methods),
            "access-control-allow-headers": ",".join(self.allow_headers),
            "vary": "origin",
        }
        if self.max_age is not None:
            answer["access-control-max-age"] = str(self.max_age)
        if self.allow_credentials:
            answer["access-control-allow-credentials"] = "true"
        return answer

    def response_headers(self, origin: str | None) -> dict[str, str]:
        if origin is None or not self.allows_origin(origin):
            return {}
        answer = {"access-control-allow-origin": origin, "vary": "origin"}
        if self.expose_headers:
            answer["access-control-expose-headers"] = ",".join(self.expose_headers)
        if self.allow_credentials:
            answer["access-control-allow-credentials"] = "true"
        return answer


@dataclass(frozen=True, slots=True)
class AuthorizerConfig:
    issuer: str
    audience: tuple[str, ...]
    identity_header: str = "authorization"


@dataclass(frozen=True, slots=True)
class HttpApiConfig:
    """What the gateway serves: one HTTP API, one function behind it."""

    api_id: str
    name: str
    function_arn: str
    routes: tuple[Route, ...]
    authorizers: Mapping[str, AuthorizerConfig] = field(default_factory=dict)
    cors: Cors | None = None
    throttling_burst_limit: int | None = None
    throttling_rate_limit: float | None = None
    stage: str = "$default"

    @property
    def function_name(self) -> str:
        return self.function_arn.split(":")[6]

    def route_for(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in sorted(self.routes, key=lambda route: route.specificity, reverse=True):
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None


def function_arn_of(integration_uri: str) -> str:
    """The function of an AWS_PROXY integration, whether its URI is the function ARN or its invoke ARN."""
    match = re.search(r"(arn:aws[\w-]*:lambda:[^/]+:function:[^/:]+)", integration_uri)
    if not match:
        raise ApiNotFoundError(f"integration {integration_uri!r} does not invoke a Lambda function")
    return match.group(1)


def read_http_api(client: ApiGatewayV2Client, name: str | None = None) -> HttpApiConfig:
    """The HTTP API named (default: the only one) with its routes, authorizers, CORS and stage settings."""
    apis = [api for api in client.get_apis()["Items"] if api.get("ProtocolType") == "HTTP"]
    if name is not None:
        apis = [api for api in apis if api["Name"] == name]
    if len(apis) != 1:
        found = ", ".join(api["Name"] for api in apis) or "none"
        raise ApiNotFoundError(f"expected one HTTP API{f' named {name!r}' if name else ''}, found: {found}")
    api = apis[0]
    api_id = api["ApiId"]
    integrations = {
        item["IntegrationId"]: item
        for item in client.get_integrations(ApiId=api_id)["Items"]
        if item.get("IntegrationType") == "AWS_PROXY"
    }
    if len(integrations) != 1:
        raise ApiNotFoundError(
            f"HTTP API {api['Name']} has {len(integrations)} AWS_PROXY integrations, not one"
        )
    integration = next(iter(integrations.values()))
    routes: list[Route] = []
    authorizers: dict[str, AuthorizerConfig] = {}
    for item in client.get_routes(ApiId=api_id)["Items"]:
        authorizer_id = item.get("AuthorizerId") if item.get("AuthorizationType") == "JWT" else None
        if authorizer_id and authorizer_id not in authorizers:
            authorizers[authorizer_id] = _authorizer(client, api_id, authorizer_id)
        routes.append(Route(key=item["RouteKey"], authorizer_id=authorizer_id))
    raw_cors = api.get("CorsConfiguration")
    cors = (
        Cors(
            allow_origins=tuple(raw_cors.get("AllowOrigins") or ()),
            allow_methods=tuple(raw_cors.get("AllowMethods") or ()),
            allow_headers=tuple(raw_cors.get("AllowHeaders") or ()),
            expose_headers=tuple(raw_cors.get("ExposeHeaders") or ()),
            max_age=raw_cors.get("MaxAge"),
            allow_credentials=bool(raw_cors.get("AllowCredentials")),
        )
        if raw_cors
        else None
    )
    stages = {stage["StageName"]: stage for stage in client.get_stages(ApiId=api_id)["Items"]}
    settings: Mapping[str, Any] = {}
    if "$default" in stages:
        settings = stages["$default"].get("DefaultRouteSettings") or {}
    return HttpApiConfig(
        api_id=api_id,
        name=api["Name"],
        function_arn=function_arn_of(integration["IntegrationUri"]),
        routes=tuple(routes),
        authorizers=authorizers,
        cors=cors,
        throttling_burst_limit=settings.get("ThrottlingBurstLimit"),
        throttling_rate_limit=settings.get("ThrottlingRateLimit"),
    )


def _authorizer(client: ApiGatewayV2Client, api_id: str, authorizer_id: str) -> AuthorizerConfig:
    raw = client.get_authorizer(ApiId=api_id, AuthorizerId=authorizer_id)
    configuration = raw.get("JwtConfiguration") or {}
    sources = raw.get("IdentitySource") or ["$request.header.Authorization"]
    header = sources[0].removeprefix("$request.header.").lower()
    return AuthorizerConfig(
        issuer=str(configuration.get("Issuer", "")),
        audience=tuple(configuration.get("Audience") or ()),
        identity_header=header,
    )


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request as the gateway received it (headers in arrival order, names as sent)."""

    method: str
    target: str  # path and query, still percent-encoded
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"

    @property
    def raw_path(self) -> str:
        return self.target.split("?", 1)[0] or "/"

    @property
    def raw_query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None


def build_event(
    request: Request,
    *,
    api: HttpApiConfig,
    route: Route,
    path_parameters: Mapping[str, str],
    claims: Mapping[str, str] | None,
    request_id: str,
    host: str,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway hands an ``AWS_PROXY`` integration for this request."""
    now = datetime.now(UTC)
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    cookies = [part.strip() for part in headers.pop("cookie", "").split(";") if part.strip()]
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    as_text = bool(_TEXT_TYPES.match(content_type)) if content_type else True
    if as_text:
        try:
            body: str | None = request.body.decode("utf-8")
        except UnicodeDecodeError:
            as_text = False
    if not as_text:
        body = base64.b64encode(request.body).decode()
    query: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(request.raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    user_agent = headers.get("user-agent", "")
    route_key = route.key
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": api.function_arn.split(":")[4],
            "apiId": api.api_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": request.method,
                "path": request.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": api.stage,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not as_text,
    }
    if request.body:
        event["body"] = body
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": None}}
    return event


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_response(status: int, document: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        status,
        [("content-type", "application/json"), *(headers or {}).items()],
        json.dumps(document).encode(),
    )


def response_from(payload: Any) -> Response:
    """The HTTP answer API Gateway makes of a function's payload format 2.0 result."""
    if not isinstance(payload, dict) or "statusCode" not in payload:
        # Without a statusCode, API Gateway answers 200 with the result itself as JSON.
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return Response(200, [("content-type", "application/json")], text.encode())
    headers = [(str(name), str(value)) for name, value in (payload.get("headers") or {}).items()]
    for name, values in (payload.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in payload.get("cookies") or [])
    raw = payload.get("body")
    if raw is None:
        body = b""
    elif payload.get("isBase64Encoded"):
        body = base64.b64decode(str(raw))
    else:
        body = str(raw).encode()
    return Response(int(payload["statusCode"]), headers, body)
