"""Credentials for the API client: one seam, ``auth_for(settings)``, returning an ``httpx2.Auth``."""

from __future__ import annotations

from collections.abc import Generator

import httpx2

from astravue_mcp.auth.manager import TokenManager
from astravue_mcp.config import Settings
from astravue_mcp.errors import AuthError


class BearerAuth(httpx2.Auth):
    """A fixed access token (the sandbox's, or ``ASTRAVUE_ACCESS_TOKEN``)."""

    def __init__(self, token: str, source: str) -> None:
        self._token = token
        self.source = source

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            raise AuthError(f"Astravue rejected the access token from {self.source}. Set a fresh token there.")


def auth_for(settings: Settings) -> httpx2.Auth:
    """A fixed token when one is configured, otherwise the stored OAuth login with silent refresh."""
    if settings.access_token is not None:
        return BearerAuth(settings.access_token.get_secret_value(), "ASTRAVUE_ACCESS_TOKEN")
    return TokenManager(settings)
