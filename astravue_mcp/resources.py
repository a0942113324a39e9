"""Read-only context a client can attach without a tool call: ``astravue://`` resources."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp.server.mcpserver import Context

if TYPE_CHECKING:
    from astravue_mcp.server import AstravueServer

from astravue_mcp.tools import spaces


def register(server: AstravueServer, read_only: bool = False) -> None:
    @server.context_resource(
        "astravue://spaces", name="spaces", title="Spaces", description="Every space of the organisation (id, name)."
    )
    async def all_spaces(ctx: Context) -> str:
        return (await spaces.list_spaces(ctx, page=1, limit=200)).text()
