"""Bearer-token checks: one fixed token by default, or JWTs from an OpenID issuer.

The issuer mode lets an OAuth end-to-end test run a real provider (e.g. node oidc-provider) and
prove that the tokens our login flow obtains are accepted, and that expired ones are refused.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any, Protocol

import anyio
import jwt

from astravue_mcp.sandbox.records import SandboxError

log = logging.getLogger("astravue_mcp.sandbox")

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Shared-secret and ``none`` algorithms are refused: an issuer signs with a published key."""


def unauthorized(message: str) -> SandboxError:
    return SandboxError(401, message)


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims ({} for an opaque token), or raise a 401 ``SandboxError``."""
        ...


class StaticToken:
    def __init__(self, token: str, claims: dict[str, Any] | None = None) -> None:
        self.token = token
        self.claims = claims or {}

    async def verify(self, token: str) -> dict[str, Any]:
        if token != self.token:
            raise unauthorized("The access token is invalid or has expired")
        return self.claims


class OidcVerifier:
    """Validates JWT access tokens: signature (keys from the issuer's ``jwks_uri``), ``exp``, ``iss``.

    The discovery document is fetched on first use and cached; PyJWKClient caches the key set
    and refetches it when a token names an unknown ``kid`` (key rotation).
    """

    def __init__(self, issuer: str, audience: str | None = None, timeout: float = 5.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.timeout = timeout
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _key_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                with urllib.request.urlopen(url, timeout=self.timeout) as answer:  # noqa: S310 (http(s) issuer URL)
                    jwks_uri = json.loads(answer.read())["jwks_uri"]
                self._keys = jwt.PyJWKClient(jwks_uri, cache_keys=True, timeout=self.timeout)
            return self._keys

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise unauthorized("The access token is not a JWT") from None
        if algorithm not in ASYMMETRIC:
            raise unauthorized(f"The access token's algorithm {algorithm!r} is not accepted")
        try:
            key = self._key_client().get_signing_key_from_jwt(token)
        except (OSError, ValueError, KeyError, jwt.PyJWKClientConnectionError) as exc:
            log.warning("cannot fetch signing keys from %s: %s", self.issuer, exc)
            raise SandboxError(503, f"The sandbox cannot reach the token issuer {self.issuer}") from None
        except jwt.PyJWTError as exc:
            raise unauthorized(f"The access token's signing key is unknown ({exc})") from None
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("The access token has expired") from None
        except jwt.PyJWTError as exc:
            raise unauthorized(f"The access token is invalid: {exc}") from None

    async def verify(self, token: str) -> dict[str, Any]:
        # PyJWKClient and the discovery fetch use blocking urllib.
        return await anyio.to_thread.run_sync(self._verify, token)
