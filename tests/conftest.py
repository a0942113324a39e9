"""Shared fixtures. Area-specific fixtures live in the test modules (or helper modules) that use them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mcp.client import Client

from astravue_mcp.config import load_settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sandbox_client(**settings: object) -> Client:
    """An in-memory MCP client on a server wired to a fresh embedded sandbox."""
    from astravue_mcp.server import sandbox_server

    return Client(sandbox_server(load_settings({}, **settings)))


@pytest.fixture
async def mcp_client() -> AsyncIterator[Client]:
    """Every toolset on, fresh sandbox data for each test."""
    async with sandbox_client(toolsets="all") as client:
        yield client
