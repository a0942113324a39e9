"""The provider side: token-endpoint calls, discovery, revocation, and reading JWT claims.

Astravue's provider is a Keycloak realm; nothing here depends on Keycloak beyond the endpoint
paths in :class:`~astravue_mcp.config.Settings` and its logout endpoint as a fallback for
revocation. Every error raised here carries a message safe to show (no token, code or secret).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import httpx2

from astravue_mcp.config import Settings
from astravue_mcp.redact import redact, register_secret

TOKEN_TIMEOUT = httpx2.Timeout(15.0, connect=5.0)


class OAuthError(Exception):
    """The token endpoint answered with an OAuth error (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str | None, status: int) -> None:
        self.error = error
        self.description = description
        self.status = status
        detail = f": {description}" if description else ""
        super().__init__(f"{error}{detail} (HTTP {status})")


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered with a server error: worth retrying later."""


def http_client(transport: httpx2.AsyncBaseTransport | None = None) -> httpx2.AsyncClient:
    """A small client of its own for the provider (the API client's auth must not recurse into it)."""
    return httpx2.AsyncClient(timeout=TOKEN_TIMEOUT, transport=transport, follow_redirects=False)


def client_auth(settings: Settings, data: dict[str, str]) -> dict[str, str]:
    """Add client authentication to a token/revocation form; returns extra headers.

    ``client_secret_post`` (the default, what Keycloak's docs show) puts the secret in the body;
    ``client_secret_basic`` sends it in an ``Authorization: Basic`` header (RFC 6749 2.3.1:
    both parts form-urlencoded first). Without a secret the client is public (PKCE only).
    """
    assert settings.client_id is not None
    secret = settings.client_secret.get_secret_value() if settings.client_secret else None
    register_secret(secret, permanent=True)
    if secret and settings.token_auth_method == "client_secret_basic":
        pair = f"{quote(settings.client_id, safe='')}:{quote(secret, safe='')}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    data["client_id"] = settings.client_id
    if secret:
        data["client_secret"] = secret
    return {}


async def token_request(
    settings: Settings, data: dict[str, str], transport: httpx2.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """POST a grant to the token endpoint and return the JSON answer.

    Raises :class:`OAuthError` for an OAuth error answer and :class:`ProviderUnavailable` for
    network trouble, 5xx or a malformed answer.
    """
    data = dict(data)
    headers = client_auth(settings, data)
    headers["Accept"] = "application/json"
    try:
        async with http_client(transport) as http:
            response = await http.post(settings.token_endpoint, data=data, headers=headers)
    except httpx2.HTTPError as exc:
        raise ProviderUnavailable(
            f"could not reach {settings.token_endpoint} ({type(exc).__name__}: {redact(str(exc))})"
        ) from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code >= 500 or not isinstance(payload, dict):
        raise ProviderUnavailable(
            f"{settings.token_endpoint} answered HTTP {response.status_code}"
            + ("" if isinstance(payload, dict) else " without a JSON body")
        )
    if response.status_code != 200 or "error" in payload:
        description = payload.get("error_description")
        raise OAuthError(
            str(payload.get("error") or "invalid_request"),
            redact(str(description)) if description else None,
            response.status_code,
        )
    return payload


async def discover(settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> dict[str, Any]:
    """The provider's discovery document (raises :class:`ProviderUnavailable`)."""
    try:
        async with http_client(transport) as http:
            response = await http.get(settings.discovery_url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(f"could not read {settings.discovery_url} ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{settings.discovery_url} is not a JSON object")
    return document


async def revoke_refresh_token(
    settings: Settings, refresh_token: str, transport: httpx2.AsyncBaseTransport | None = None
) -> str:
    """End the login at the provider; returns which endpoint did it.

    Uses the RFC 7009 revocation endpoint when discovery advertises one, else Keycloak's logout
    endpoint, which accepts a confidential client's refresh token by POST. Raises
    :class:`ProviderUnavailable` when the provider cannot be reached, :class:`OAuthError` when
    it refuses, and ``LookupError`` when it advertises neither endpoint.
    """
    document = await discover(settings, transport)
    data = {"token": refresh_token, "token_type_hint": "refresh_token"}
    endpoint = document.get("revocation_endpoint")
    if not endpoint:
        endpoint = document.get("end_session_endpoint")
        data = {"refresh_token": refresh_token}
    if not isinstance(endpoint, str) or not endpoint:
        raise LookupError("the provider advertises no revocation or logout endpoint")
    headers = client_auth(settings, data)
    try:
        async with http_client(transport) as http:
            response = await http.post(endpoint, data=data, headers=headers)
    except httpx2.HTTPError as exc:
        raise ProviderUnavailable(f"could not reach {endpoint} ({type(exc).__name__})") from None
    if response.status_code >= 500:
        raise ProviderUnavailable(f"{endpoint} answered HTTP {response.status_code}")
    # RFC 7009: 200 whether or not the token was still valid; Keycloak's logout answers 204.
    if response.status_code >= 400:
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        raise OAuthError(str(payload.get("error") or "error"), payload.get("error_description"), response.status_code)
    return endpoint


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read WITHOUT verifying it: only ever for display and expiry hints.

    Returns {} for an opaque token. Never used to decide anything security-relevant: the API
    verifies its tokens, the ID token only labels the login in ``status``.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}
