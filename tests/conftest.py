"""Shared fixtures. Area-specific fixtures live in the test modules (or helper modules) that use them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp.client import Client

from tests.support import sandbox_client

# The OpenID provider fixtures (`oidc`, `settings`) for the auth, doctor and secret tests; a real
# redis-server (`redis_server`) for the shared-state tests.
pytest_plugins = ["tests.oidc", "tests.redis_server"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def mcp_client() -> AsyncIterator[Client]:
    """Every toolset on, fresh sandbox data for each test."""
    async with sandbox_client(toolsets="all") as client:
        yield client
