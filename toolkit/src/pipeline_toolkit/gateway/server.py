"""The local API gateway: an HTTP API, as API Gateway serves it, on 127.0.0.1.

The order of API Gateway's own checks is kept, because a client sees it: CORS preflights are answered by the
gateway itself; then the payload limit (413), the route (404), the stage's throttling (429), the JWT
authorizer (401, with a ``www-authenticate`` header saying why); only then is the function invoked, with a
payload format 2.0 event, and its answer translated back (a failed invocation is API Gateway's 500).
Every request writes one access-log line, as the stage's access logs do (the caller's
``sub``, never the token).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

from pipeline_toolkit.gateway.authorizer import JwtAuthorizer, TokenRejected, claims_as_strings
from pipeline_toolkit.gateway.http_api import (
    HttpApiConfig,
    Request,
    Response,
    build_event,
    json_response,
    response_from,
)
from pipeline_toolkit.gateway.loopback import LoopbackServer
from pipeline_toolkit.invokers import Invocation

log = logging.getLogger("pipeline_toolkit.gateway")

# API Gateway HTTP APIs take request payloads up to 10 MB.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# A body up to this size is read before it is refused, so that the client gets the 413 rather than a reset.
DRAIN_LIMIT_BYTES = 4 * MAX_PAYLOAD_BYTES

Invoke = Callable[[dict[str, Any], str], Invocation]


@dataclass
class TokenBucket:
    """The stage's throttling: ``burst`` requests at once, refilled at ``rate`` per second."""

    rate: float
    burst: int
    _tokens: float = field(init=False)
    _at: float = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class Gateway:
    """Answers requests for one HTTP API; :meth:`handle` is the whole of API Gateway's part."""

    def __init__(
        self,
        api: HttpApiConfig,
        authorizers: Mapping[str, JwtAuthorizer],
        invoke: Invoke,
        *,
        host: str = "127.0.0.1",
        access_log: IO[str] | None = None,
        throttle: bool = True,
    ) -> None:
        self.api = api
        self.authorizers = dict(authorizers)
        self.invoke = invoke
        self.host = host
        self.access_log = access_log
        self._log_lock = threading.Lock()
        self.bucket = (
            TokenBucket(api.throttling_rate_limit, api.throttling_burst_limit)
            if throttle and api.throttling_rate_limit and api.throttling_burst_limit
            else None
        )

    def handle(self, request: Request) -> Response:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        record: dict[str, Any] = {"requestId": request_id, "httpMethod": request.method}
        response = self._answer(request, request_id, record)
        headers = [*self._with_cors(request, response.headers), ("apigw-requestid", request_id)]
        response = Response(response.status, headers, response.body)
        record.update(
            status=response.status,
            responseLength=len(response.body),
            latencyMs=round((time.monotonic() - started) * 1000, 1),
        )
        self._log_access(record)
        return response

    def _answer(  # noqa: PLR0911 - one answer per check, in API Gateway's order
        self, request: Request, request_id: str, record: dict[str, Any]
    ) -> Response:
        preflight = self._preflight(request)
        if preflight is not None:
            record["routeKey"] = "-"
            return preflight
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return json_response(413, {"message": "Request Entity Too Large"})
        found = self.api.route_for(request.method, request.raw_path)
        if found is None:
            return json_response(404, {"message": "Not Found"})
        route, parameters = found
        record["routeKey"] = route.key
        if self.bucket is not None and not self.bucket.take():
            return json_response(429, {"message": "Too Many Requests"})
        claims: dict[str, str] | None = None
        if route.authorizer_id is not None:
            authorizer = self.authorizers[route.authorizer_id]
            header = self.api.authorizers[route.authorizer_id].identity_header
            try:
                claims = claims_as_strings(authorizer.claims(request.header(header)))
            except TokenRejected as rejected:
                record["authorizerError"] = str(rejected)
                challenge = f'Bearer error="invalid_token" error_description="{rejected}"'
                return json_response(401, {"message": "Unauthorized"}, {"www-authenticate": challenge})
            record["sub"] = claims.get("sub", "-")
        event = build_event(
            request,
            api=self.api,
            route=route,
            path_parameters=parameters,
            claims=claims,
            request_id=request_id,
            host=self.host,
        )
        outcome = self.invoke(event, request_id)
        if not outcome.ok:
            record["integrationError"] = f"{outcome.error_type}: {outcome.error_message}"[:300]
            return json_response(500, {"message": "Internal Server Error"})
        try:
            return response_from(outcome.payload)
        except (TypeError, ValueError) as error:
            record["integrationError"] = f"malformed function response: {error}"
            return json_response(500, {"message": "Internal Server Error"})

    def _with_cors(self, request: Request, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The answer's headers with the API's CORS headers: a preflight's answer (:meth:`_preflight`) holds
        them already; any other drops the function's own (API Gateway ignores them) for the API's."""
        if self.api.cors is None or _is_preflight(request):
            return list(headers)
        cors = self.api.cors.response_headers(request.header("origin"))
        replaced = {name.lower() for name in cors}
        kept = [
            (name, value)
            for name, value in headers
            if name.lower() not in replaced and not name.lower().startswith("access-control-")
        ]
        return kept + list(cors.items())

    def _preflight(self, request: Request) -> Response | None:
        """API Gateway answers a CORS preflight itself when the API has a CORS configuration."""
        cors = self.api.cors
        origin = request.header("origin")
        method = request.header("access-control-request-method")
        if cors is None or origin is None or method is None or not _is_preflight(request):
            return None
        asked = [name.strip() for name in (request.header("access-control-request-headers") or "").split(",")]
        headers = cors.preflight_headers(origin, method, asked) or {}
        # Not admitted: an answer without CORS headers, which the browser treats as a refusal.
        return Response(204, list(headers.items()), b"")

    def _log_access(self, record: Mapping[str, Any]) -> None:
        if self.access_log is None:
            return
        with self._log_lock:
            self.access_log.write(json.dumps(record) + "\n")
            self.access_log.flush()


def _is_preflight(request: Request) -> bool:
    return (
        request.method == "OPTIONS"
        and request.header("origin") is not None
        and request.header("access-control-request-method") is not None
    )


def _handler_class(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class GatewayHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway allows

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > DRAIN_LIMIT_BYTES:
                # Far too big to read just to refuse: answer and close (the client may see a reset).
                self._send(json_response(413, {"message": "Request Entity Too Large"}), close=True)
                return
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
            )
            self._send(gateway.handle(request))

        def _send(self, response: Response, *, close: bool = False) -> None:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve  # noqa: N815

        def __getattr__(self, name: str) -> Any:
            # Any other method (TRACE, QUERY, ...) reaches the routing too: no route is API Gateway's 404,
            # not http.server's 501.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    return GatewayHandler


class GatewayServer(LoopbackServer):
    """The gateway on ``127.0.0.1:port`` (0: a free one), in a thread of this process."""

    def __init__(self, gateway: Gateway, port: int = 0) -> None:
        self.gateway = gateway
        super().__init__(_handler_class(gateway), port, name="gateway")


def open_access_log(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8")
