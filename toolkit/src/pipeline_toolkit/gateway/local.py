"""The ingest API of a local stack on 127.0.0.1: the gateway, the function behind it, a demo user.

``pipeline local up`` and ``make demo`` call :func:`start_local_api` once the stack is applied: it reads the
deployed HTTP API back from the emulator, starts the function's processes with the function's own deployed
environment, and serves the API on a free port. The token checks use the pool's keys from the emulator
(``<endpoint>/<pool id>/.well-known/jwks.json``), never an address taken from a token.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import boto3

from pipeline_toolkit.deployment import read_function
from pipeline_toolkit.gateway.authorizer import JwtAuthorizer, jwks_url
from pipeline_toolkit.gateway.functions import FunctionPool
from pipeline_toolkit.gateway.http_api import read_http_api
from pipeline_toolkit.gateway.page import PageConfig, PageServer
from pipeline_toolkit.gateway.server import Gateway, GatewayServer, open_access_log
from pipeline_toolkit.outputs import StackOutputs
from pipeline_toolkit.project import project_dir

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp.type_defs import AttributeTypeTypeDef

DEMO_USERNAME = "demo@example.com"


class NoApiError(RuntimeError):
    """The stack has no ingest API or user pool to serve."""


@dataclass
class LocalApi:
    """The running gateway; :meth:`stop` ends the function processes it started (by their pids)."""

    server: GatewayServer
    functions: FunctionPool
    access_log: IO[str]
    #: The ingest function's deployed environment (its settings: the upload size limit, ...).
    function_environment: Mapping[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.functions.stop()
        self.access_log.close()


def start_local_api(
    environment: Mapping[str, str],
    outputs: StackOutputs,
    *,
    log_dir: Path,
    concurrency: int = 2,
    port: int = 0,
    throttle: bool = True,
) -> LocalApi:
    """Serve the stack's HTTP API on 127.0.0.1 (``port`` 0: a free one) until :meth:`LocalApi.stop`."""
    endpoint = environment.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise NoApiError("the local gateway serves an emulator's API: AWS_ENDPOINT_URL is not set")
    if not outputs.user_pool_id:
        raise NoApiError("the stack has no user pool (output user_pool_id)")
    session = boto3.Session(
        aws_access_key_id=environment.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environment.get("AWS_SECRET_ACCESS_KEY"),
        region_name=outputs.region,
    )
    api = read_http_api(session.client("apigatewayv2", endpoint_url=endpoint))
    function = read_function(
        session.client("lambda", endpoint_url=endpoint),
        session.client("sqs", endpoint_url=endpoint),
        api.function_name,
        mappings={},
    )
    keys = jwks_url(endpoint, outputs.user_pool_id)
    authorizers = {
        authorizer_id: JwtAuthorizer(config.issuer, config.audience, keys)
        for authorizer_id, config in api.authorizers.items()
    }
    functions = FunctionPool(
        function, environment, size=concurrency, log_file=log_dir / f"{function.name}.log"
    )
    functions.start()
    access_log = open_access_log(log_dir / "gateway-access.log")
    try:
        server = GatewayServer(
            Gateway(api, authorizers, functions.invoke, access_log=access_log, throttle=throttle), port
        )
    except OSError:
        functions.stop()
        access_log.close()
        raise
    return LocalApi(server.start(), functions, access_log, function.environment)


def free_port() -> int:
    """A port free on 127.0.0.1 now: the page's, chosen before the stack is applied so that the API's CORS
    settings can name its origin (the page is served on it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def page_origin(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def start_local_page(
    environment: Mapping[str, str],
    outputs: StackOutputs,
    api: LocalApi,
    *,
    port: int = 0,
    directory: Path | None = None,
) -> PageServer:
    """Serve the upload page (``web/`` of the checkout) on 127.0.0.1, configured for this stack and ``api``.

    The page signs in against the emulator's Cognito and posts its files to the emulator's S3, both at
    ``AWS_ENDPOINT_URL``, as it would against the user pool's and the bucket's endpoints on AWS.
    """
    endpoint = environment.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise NoApiError("the local page talks to an emulator: AWS_ENDPOINT_URL is not set")
    limit = api.function_environment.get("PIPELINE_UPLOAD_MAX_BYTES")
    config = PageConfig(
        region=outputs.region,
        user_pool_id=outputs.user_pool_id,
        user_pool_client_id=outputs.user_pool_client_id,
        cognito_endpoint=endpoint.rstrip("/") + "/",
        api_endpoint=api.url,
        upload_endpoint=endpoint,
        max_upload_bytes=int(limit) if limit and limit.isdigit() else None,
    )
    return PageServer(directory or project_dir() / "web", config, port).start()


def create_demo_user(
    environment: Mapping[str, str], outputs: StackOutputs, username: str = DEMO_USERNAME
) -> tuple[str, str]:
    """A confirmed user of the stack's pool with a fresh random password: (username, password)."""
    cognito = boto3.client(
        "cognito-idp",
        endpoint_url=environment.get("AWS_ENDPOINT_URL"),
        region_name=outputs.region,
        aws_access_key_id=environment.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environment.get("AWS_SECRET_ACCESS_KEY"),
    )
    # Upper, lower, digit and symbol: whatever password policy the pool module sets.
    password = f"Demo-{secrets.token_urlsafe(12)}-9a"
    attributes: list[AttributeTypeTypeDef] = [
        {"Name": "email", "Value": username},
        {"Name": "email_verified", "Value": "true"},
    ]
    with contextlib.suppress(cognito.exceptions.UsernameExistsException):  # the same user, a new password
        cognito.admin_create_user(
            UserPoolId=outputs.user_pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=attributes,
        )
    cognito.admin_set_user_password(
        UserPoolId=outputs.user_pool_id, Username=username, Password=password, Permanent=True
    )
    return username, password


def sign_in(environment: Mapping[str, str], outputs: StackOutputs, username: str, password: str) -> str:
    """An id token of the pool for this user (password sign-in, as the page and the CLI do)."""
    cognito = boto3.client(
        "cognito-idp",
        endpoint_url=environment.get("AWS_ENDPOINT_URL"),
        region_name=outputs.region,
        aws_access_key_id=environment.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environment.get("AWS_SECRET_ACCESS_KEY"),
    )
    result = cognito.initiate_auth(
        ClientId=outputs.user_pool_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return result["AuthenticationResult"]["IdToken"]
