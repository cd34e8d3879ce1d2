"""API Gateway's JWT authorizer, as the local gateway runs it: the same checks, in the same order.

What an HTTP API's JWT authorizer does (AWS: "Controlling access to HTTP APIs with JWT authorizers"): take the
token from the identity source (``Authorization``, with or without ``Bearer``), find its ``kid`` in the
issuer's JSON Web Key Set, accept only RSA signatures, and check ``iss`` against the configured issuer,
``aud`` (or, only when there is no ``aud``, ``client_id``) against the audience list, ``exp`` in the future
and ``nbf``/``iat`` in the past. Anything else is a 401 before the function runs.

The key set is read from a configured address, never from ``iss``: the emulator's tokens name the real AWS
host as their issuer (``../shared/notes/moto-terraform.md``), so following ``iss`` would leave the machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

# API Gateway takes RSA-signed tokens only; ``alg: none`` or HMAC tokens are refused before any key is used.
ALGORITHMS = ("RS256", "RS384", "RS512")
JWKS_TIMEOUT_SECONDS = 5


class TokenRejected(Exception):  # noqa: N818 - the authorizer's verdict, not a programming error
    """The authorizer refused the token; ``str()`` is the reason API Gateway writes to its access log."""


def jwks_url(cognito_endpoint: str, user_pool_id: str) -> str:
    """Where a Cognito pool publishes its signing keys (on AWS: ``https://cognito-idp.<region>.amazonaws.com``)."""
    return f"{cognito_endpoint.rstrip('/')}/{user_pool_id}/.well-known/jwks.json"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization`` header; API Gateway takes it with or without the ``Bearer`` word."""
    if not authorization or not authorization.strip():
        raise TokenRejected("no token")
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return authorization.strip()
    if not rest.strip():
        raise TokenRejected("no token")
    return rest.strip()


@dataclass
class JwtAuthorizer:
    """One ``aws_apigatewayv2_authorizer`` of type JWT: its issuer and audience, and where its keys are."""

    issuer: str
    audience: Sequence[str]
    keys_url: str

    def __post_init__(self) -> None:
        # Keys are fetched once and cached; a token with an unknown kid makes the client fetch again.
        self._keys = jwt.PyJWKClient(self.keys_url, cache_keys=True, timeout=JWKS_TIMEOUT_SECONDS)

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of the request's token, or :class:`TokenRejected`."""
        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise TokenRejected(f"malformed token: {error}") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenRejected(f"unsupported signing algorithm {header.get('alg')!r}")
        if not header.get("kid"):
            raise TokenRejected("token has no kid")
        try:
            key = self._keys.get_signing_key(str(header["kid"]))
        except jwt.PyJWKClientError as error:
            raise TokenRejected(f"signing key not found: {error}") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                issuer=self.issuer,
                # aud is checked below with API Gateway's own rule (aud, else client_id).
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.PyJWTError as error:
            raise TokenRejected(f"invalid token: {error}") from None
        check_audience(claims, self.audience)
        return claims


def check_audience(claims: Mapping[str, Any], audience: Sequence[str]) -> None:
    """``aud`` must name an audience entry; only a token without ``aud`` is judged by ``client_id``."""
    if "aud" in claims:
        value = claims["aud"]
        presented = [value] if isinstance(value, str) else list(value or [])
        if not set(presented) & set(audience):
            raise TokenRejected("token is for another audience")
        return
    if claims.get("client_id") not in audience:
        raise TokenRejected("token is for another client")


def claims_as_strings(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them to the function: every value a string, lists as ``[a b]``."""
    rendered: dict[str, str] = {}
    for name, value in claims.items():
        if isinstance(value, str):
            rendered[name] = value
        elif isinstance(value, bool):
            rendered[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            rendered[name] = "[" + " ".join(str(item) for item in value) + "]"
        else:
            rendered[name] = str(value)
    return rendered
