"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

from mcp.client import Client

from astravue_mcp.config import load_settings


def sandbox_client(**settings: object) -> Client:
    """An in-memory MCP client on a server wired to a fresh embedded sandbox."""
    from astravue_mcp.server import sandbox_server

    return Client(sandbox_server(load_settings({}, **settings)))


async def call(client: Client, tool: str, /, **args: Any) -> Any:
    """Call a tool that must succeed; return its structured content."""
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def error(client: Client, tool: str, /, **args: Any) -> str:
    """Call a tool that must fail; return the message the model reads."""
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    return result.content[0].text
