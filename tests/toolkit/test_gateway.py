"""The local API gateway against the emulator's Cognito and API Gateway: what API Gateway itself would answer.

Tokens come from the emulator's user pool (``initiate_auth``); the bad ones are made the way an attacker or a
stale client would: expired or for another audience (signed with the emulator's own pool key, so only that
claim is wrong), signed by another key under the pool's ``kid``, ``alg: none``, missing, garbage.
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import moto.cognitoidp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline_toolkit.clients import Clients
from pipeline_toolkit.deployment import FunctionConfig
from pipeline_toolkit.emulator import Emulator
from pipeline_toolkit.gateway.authorizer import JwtAuthorizer, TokenRejected, claims_as_strings, jwks_url
from pipeline_toolkit.gateway.functions import FunctionPool
from pipeline_toolkit.gateway.http_api import HttpApiConfig, Request, Route, read_http_api, response_from
from pipeline_toolkit.gateway.server import Gateway, GatewayServer
from pipeline_toolkit.invokers import Invocation

HERE = Path(__file__).parent
PAGE_ORIGIN = "http://127.0.0.1:8123"
HMAC_SECRET = "a-shared-secret-of-thirty-two-bytes!"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:gateway-test"


@pytest.fixture(scope="module")
def pool(clients: Clients) -> dict[str, str]:
    cognito = clients.session.client("cognito-idp", endpoint_url=clients.endpoint_url)
    pool_id = cognito.create_user_pool(PoolName=f"gw-{uuid.uuid4().hex[:6]}")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="page", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    tokens: dict[str, str] = {"pool_id": pool_id, "client_id": client_id}
    for name in ("alice", "bob"):
        cognito.admin_create_user(UserPoolId=pool_id, Username=name, TemporaryPassword="Temp-Passw0rd!")
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username=name, Password="Passw0rd-Local!", Permanent=True
        )
        result = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": name, "PASSWORD": "Passw0rd-Local!"},
        )["AuthenticationResult"]
        tokens[f"{name}_id"], tokens[f"{name}_access"] = result["IdToken"], result["AccessToken"]
    return tokens


@pytest.fixture(scope="module")
def api(clients: Clients, pool: dict[str, str]) -> HttpApiConfig:
    apigw = clients.session.client("apigatewayv2", endpoint_url=clients.endpoint_url)
    for existing in apigw.get_apis()["Items"]:
        apigw.delete_api(ApiId=existing["ApiId"])
    api_id = apigw.create_api(
        Name="gateway-test",
        ProtocolType="HTTP",
        CorsConfiguration={
            "AllowOrigins": [PAGE_ORIGIN],
            "AllowMethods": ["GET", "POST", "OPTIONS"],
            "AllowHeaders": ["authorization", "content-type", "idempotency-key"],
            "ExposeHeaders": ["idempotent-replayed"],
            "MaxAge": 3600,
        },
    )["ApiId"]
    authorizer = apigw.create_authorizer(
        ApiId=api_id,
        Name="cognito",
        AuthorizerType="JWT",
        IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={
            "Issuer": f"https://cognito-idp.us-east-1.amazonaws.com/{pool['pool_id']}",
            "Audience": [pool["client_id"]],
        },
    )["AuthorizerId"]
    integration = apigw.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FUNCTION_ARN}/invocations",
        PayloadFormatVersion="2.0",
    )["IntegrationId"]
    for key in ("POST /uploads", "GET /files", "GET /files/{upload_id}", "POST /events/{dataset}"):
        apigw.create_route(
            ApiId=api_id,
            RouteKey=key,
            Target=f"integrations/{integration}",
            AuthorizationType="JWT",
            AuthorizerId=authorizer,
        )
    apigw.create_route(ApiId=api_id, RouteKey="GET /health", Target=f"integrations/{integration}")
    apigw.create_stage(
        ApiId=api_id,
        StageName="$default",
        DefaultRouteSettings={"ThrottlingBurstLimit": 3, "ThrottlingRateLimit": 0.001},
    )
    return read_http_api(apigw)


@pytest.fixture(scope="module")
def authorizer(local_emulator: Emulator, api: HttpApiConfig, pool: dict[str, str]) -> JwtAuthorizer:
    ((_, config),) = api.authorizers.items()
    return JwtAuthorizer(
        config.issuer, config.audience, jwks_url(local_emulator.endpoint_url, pool["pool_id"])
    )


def pool_key() -> tuple[Any, str]:
    """The emulator's pool signing key (every moto pool signs with it) and its kid."""
    resources = Path(moto.cognitoidp.__file__).parent / "resources"
    private = json.loads(gzip.decompress((resources / "jwks-private.json.gz").read_bytes()))
    return jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(private)), private["kid"]


def forged(claims: dict[str, Any], *, key: Any = None, kid: str | None = None, alg: str = "RS256") -> str:
    own_key, own_kid = pool_key()
    return jwt.encode(claims, key or own_key, algorithm=alg, headers={"kid": kid or own_kid})


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# -- the authorizer -------------------------------------------------------------------------------------


def test_the_pools_own_id_and_access_tokens_pass(authorizer: JwtAuthorizer, pool: dict[str, str]) -> None:
    id_claims = authorizer.claims(f"Bearer {pool['alice_id']}")
    access_claims = authorizer.claims(pool["alice_access"])  # API Gateway takes it without "Bearer" too
    assert id_claims["sub"] == access_claims["sub"]
    assert id_claims["aud"] == pool["client_id"]
    assert access_claims["client_id"] == pool["client_id"]
    assert "aud" not in access_claims


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda c: forged({**c, "exp": int(time.time()) - 5}), "expired"),
        (lambda c: forged({**c, "aud": "someone-elses-client"}), "another audience"),
        (
            lambda c: forged({**{k: v for k, v in c.items() if k != "aud"}, "client_id": "x"}),
            "another client",
        ),
        (
            lambda c: forged({**c, "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"}),
            "issuer",
        ),
        (
            lambda c: forged(c, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "invalid token",
        ),
        (lambda c: forged(c, kid="not-a-key-of-the-pool"), "signing key not found"),
        (lambda c: jwt.encode(c, None, algorithm="none"), "unsupported signing algorithm"),
        (lambda c: forged(c, key=HMAC_SECRET, alg="HS256"), "unsupported signing algorithm"),
        (lambda c: "not.a.jwt", "malformed"),
        (lambda c: "", "no token"),
    ],
    ids=[
        "expired",
        "other-audience",
        "access-token-other-client",
        "other-issuer",
        "other-key",
        "unknown-kid",
        "alg-none",
        "hmac",
        "garbage",
        "missing",
    ],
)
def test_bad_tokens_are_refused_with_the_reason(
    authorizer: JwtAuthorizer, pool: dict[str, str], make: Any, reason: str
) -> None:
    # The claims of a real token of the pool, so that only what the case changes is wrong.
    token = make(claims_of(pool["alice_id"]))
    with pytest.raises(TokenRejected, match=reason):
        authorizer.claims(f"Bearer {token}")


def test_a_forged_token_with_only_the_claims_right_passes(
    authorizer: JwtAuthorizer, pool: dict[str, str]
) -> None:
    # The control for the cases above: the same forging with nothing changed is accepted.
    assert authorizer.claims(forged(claims_of(pool["alice_id"])))["sub"] == claims_of(pool["alice_id"])["sub"]


def test_claims_reach_the_function_as_strings() -> None:
    assert claims_as_strings({"exp": 12, "email_verified": True, "groups": ["a", "b"], "sub": "s"}) == {
        "exp": "12",
        "email_verified": "true",
        "groups": "[a b]",
        "sub": "s",
    }


# -- what the gateway read from the emulator ------------------------------------------------------------


def test_the_api_is_read_from_what_was_deployed(api: HttpApiConfig, pool: dict[str, str]) -> None:
    assert api.function_arn == FUNCTION_ARN
    assert {route.key for route in api.routes} >= {"POST /uploads", "GET /files/{upload_id}", "GET /health"}
    assert next(route for route in api.routes if route.key == "GET /health").authorizer_id is None
    (config,) = api.authorizers.values()
    assert config.audience == (pool["client_id"],)
    assert config.identity_header == "authorization"
    assert api.cors is not None
    assert api.cors.allow_origins == (PAGE_ORIGIN,)
    assert (api.throttling_burst_limit, api.throttling_rate_limit) == (3, 0.001)


def test_routes_match_as_api_gateway_matches_them() -> None:
    api = HttpApiConfig(
        api_id="a",
        name="a",
        function_arn=FUNCTION_ARN,
        routes=(
            Route("GET /files"),
            Route("GET /files/{id}"),
            Route("GET /files/latest"),
            Route("ANY /p/{rest+}"),
        ),
    )
    assert api.route_for("GET", "/files") == (Route("GET /files"), {})
    assert api.route_for("GET", "/files/latest") == (Route("GET /files/latest"), {})
    assert api.route_for("GET", "/files/a%20b") == (Route("GET /files/{id}"), {"id": "a b"})
    assert api.route_for("DELETE", "/p/x/y") == (Route("ANY /p/{rest+}"), {"rest": "x/y"})
    assert api.route_for("POST", "/files") is None
    assert api.route_for("GET", "/files/a/b") is None


def test_function_results_become_http_answers() -> None:
    assert response_from({"ok": True}).status == 200  # no statusCode: 200 with the result as JSON
    answer = response_from({"statusCode": 201, "body": "aGk=", "isBase64Encoded": True, "cookies": ["a=b"]})
    assert (answer.status, answer.body, ("set-cookie", "a=b") in answer.headers) == (201, b"hi", True)


# -- the gateway, over HTTP -----------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], request_id: str) -> Invocation:
        self.events.append(event)
        if (event.get("queryStringParameters") or {}).get("raise"):
            return Invocation(ok=False, error_type="RuntimeError", error_message="boom")
        # ?cors=1: a function that sets CORS headers of its own (ignored when the API has CORS).
        own = (
            {"access-control-allow-origin": "*"}
            if (event.get("queryStringParameters") or {}).get("cors")
            else {}
        )
        return Invocation(
            ok=True,
            payload={"statusCode": 200, "headers": own, "body": json.dumps({"seen": event["routeKey"]})},
        )


def call(
    url: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, got = error.read(), error.code, dict(error.headers)
    got = {name.lower(): value for name, value in got.items()}
    return status, got, json.loads(raw) if raw else None


@pytest.fixture
def served(api: HttpApiConfig, authorizer: JwtAuthorizer) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    server = GatewayServer(
        Gateway(api, dict.fromkeys(api.authorizers, authorizer), recorder, throttle=False)
    ).start()
    yield server.url, recorder
    server.stop()


def test_a_signed_in_request_reaches_the_function_as_a_v2_event(
    served: tuple[str, Recorder], pool: dict[str, str]
) -> None:
    url, recorder = served
    status, headers, body = call(
        f"{url}/events/users?x=1&x=2",
        "POST",
        b'[{"id": 1}]',
        Authorization=f"Bearer {pool['alice_id']}",
        Origin=PAGE_ORIGIN,
        **{"Content-Type": "application/json", "Idempotency-Key": "k-1", "Cookie": "a=1; b=2"},
    )
    assert (status, body) == (200, {"seen": "POST /events/{dataset}"})
    assert headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert headers["access-control-expose-headers"] == "idempotent-replayed"
    (event,) = recorder.events
    assert event["version"] == "2.0"
    assert event["pathParameters"] == {"dataset": "users"}
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["idempotency-key"] == "k-1"
    assert (event["body"], event["isBase64Encoded"]) == ('[{"id": 1}]', False)
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == claims_of(pool["alice_id"])["sub"]
    assert all(isinstance(value, str) for value in claims.values())


def test_binary_bodies_arrive_base64_encoded(served: tuple[str, Recorder], pool: dict[str, str]) -> None:
    url, recorder = served
    call(f"{url}/uploads", "POST", b"\x89PNG", Authorization=pool["bob_id"], **{"Content-Type": "image/png"})
    assert (recorder.events[-1]["body"], recorder.events[-1]["isBase64Encoded"]) == ("iVBORw==", True)


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz"])
def test_no_or_bad_token_is_401_before_the_function_runs(
    served: tuple[str, Recorder], authorization: str | None
) -> None:
    url, recorder = served
    headers = {"Authorization": authorization} if authorization is not None else {}
    status, got, body = call(f"{url}/files", **headers)
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert got["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert recorder.events == []


def test_expired_token_is_401_with_the_reason(served: tuple[str, Recorder], pool: dict[str, str]) -> None:
    url, recorder = served
    expired = forged({**claims_of(pool["alice_id"]), "exp": int(time.time()) - 1})
    status, got, _ = call(f"{url}/files", Authorization=f"Bearer {expired}")
    assert status == 401
    assert "expired" in got["www-authenticate"]
    assert recorder.events == []


def test_unknown_routes_are_404_and_open_routes_need_no_token(served: tuple[str, Recorder]) -> None:
    url, recorder = served
    assert call(f"{url}/nothing-here")[::2] == (404, {"message": "Not Found"})
    assert call(f"{url}/files", "DELETE")[0] == 404
    for method in ("TRACE", "QUERY", "BREW"):
        assert call(f"{url}/files", method)[::2] == (404, {"message": "Not Found"})
    status, _, body = call(f"{url}/health")
    assert (status, body) == (200, {"seen": "GET /health"})
    assert "authorizer" not in recorder.events[-1]["requestContext"]


def test_cors_preflights_are_answered_by_the_gateway_for_the_page_only(served: tuple[str, Recorder]) -> None:
    url, recorder = served
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    status, headers, _ = call(f"{url}/uploads", "OPTIONS", Origin=PAGE_ORIGIN, **asked)
    assert status == 204
    assert headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert headers["access-control-max-age"] == "3600"
    status, headers, _ = call(f"{url}/uploads", "OPTIONS", Origin="http://127.0.0.1:1", **asked)
    assert status == 204
    assert "access-control-allow-origin" not in headers
    status, headers, _ = call(f"{url}/health", Origin="http://127.0.0.1:1")
    assert status == 200
    assert "access-control-allow-origin" not in headers
    assert [event["routeKey"] for event in recorder.events] == ["GET /health"]


def header_values(url: str, method: str, name: str, **headers: str) -> list[str]:
    """Every value of one answer header, repeats included (a browser refuses two Allow-Origin values)."""
    request = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return list(response.headers.get_all(name) or [])


def test_cors_headers_are_the_apis_own_and_given_once(served: tuple[str, Recorder]) -> None:
    url, _ = served
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    preflight = header_values(
        f"{url}/uploads", "OPTIONS", "access-control-allow-origin", Origin=PAGE_ORIGIN, **asked
    )
    assert preflight == [PAGE_ORIGIN]
    answered = header_values(f"{url}/health?cors=1", "GET", "access-control-allow-origin", Origin=PAGE_ORIGIN)
    assert answered == [PAGE_ORIGIN]
    assert header_values(f"{url}/health?cors=1", "GET", "access-control-allow-origin") == []


def test_a_failed_invocation_is_api_gateways_500(served: tuple[str, Recorder]) -> None:
    url, _ = served
    assert call(f"{url}/health?raise=1")[::2] == (500, {"message": "Internal Server Error"})


def test_the_stage_throttles_past_its_burst(api: HttpApiConfig, authorizer: JwtAuthorizer) -> None:
    server = GatewayServer(Gateway(api, dict.fromkeys(api.authorizers, authorizer), Recorder())).start()
    try:
        statuses = [call(f"{server.url}/health")[0] for _ in range(5)]
    finally:
        server.stop()
    # burst 3, refilled at 0.001/s: the fourth and fifth are refused as API Gateway refuses them.
    assert statuses == [200, 200, 200, 429, 429]


def test_payloads_over_10_mb_are_413(served: tuple[str, Recorder], pool: dict[str, str]) -> None:
    url, recorder = served
    status, _, body = call(
        f"{url}/uploads", "POST", b"x" * (10 * 1024 * 1024 + 1), Authorization=pool["alice_id"]
    )
    assert (status, body) == (413, {"message": "Request Entity Too Large"})
    assert recorder.events == []


# -- the function's own processes -----------------------------------------------------------------------


def test_the_function_runs_in_its_own_processes_and_a_timeout_ends_only_one(
    local_emulator: Emulator, tmp_path: Path
) -> None:
    function = FunctionConfig(
        name="gateway-test",
        arn=FUNCTION_ARN,
        handler="gateway_handlers.echo",
        timeout_seconds=2,
        memory_mb=128,
        region="us-east-1",
        environment={"ONLY_THIS_FUNCTION": "1"},
    )
    functions = FunctionPool(
        function,
        local_emulator.environment(),
        size=1,
        log_file=tmp_path / "function.log",
        pythonpath=[str(HERE)],
    )
    functions.start()
    try:
        first_pid = functions.pids[0]
        request = Request("GET", "/health", [], b"")
        event = {"version": "2.0", "rawPath": request.raw_path, "queryStringParameters": {}}
        answer = response_from(functions.invoke(event, "req-1").payload)
        assert answer.status == 200
        assert ("x-pid", str(first_pid)) in answer.headers
        assert 0 < json.loads(answer.body)["remaining_ms"] <= 2000
        timed_out = functions.invoke({**event, "queryStringParameters": {"sleep": "5"}}, "req-2")
        assert (timed_out.ok, timed_out.error_type) == (False, "Sandbox.Timedout")
        assert functions.restarts == 1
        assert functions.pids != [first_pid]
        again = response_from(functions.invoke(event, "req-3").payload)
        assert again.status == 200
        assert ("x-pid", str(functions.pids[0])) in again.headers
    finally:
        functions.stop()
    assert all(not Path(f"/proc/{pid}").exists() for pid in functions.pids)
