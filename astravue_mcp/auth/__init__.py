"""Credentials for the API client: one seam, ``auth_for(settings)``, returning an ``httpx2.Auth``."""

from __future__ import annotations

import httpx2

from astravue_mcp.config import Settings


def auth_for(settings: Settings) -> httpx2.Auth:
    """A fixed token when one is configured, otherwise the stored OAuth login with silent refresh."""
    from astravue_mcp.api.client import BearerAuth

    if settings.access_token is not None:
        return BearerAuth(settings.access_token.get_secret_value(), "ASTRAVUE_ACCESS_TOKEN")
    from astravue_mcp.auth.manager import TokenManager

    return TokenManager(settings)
