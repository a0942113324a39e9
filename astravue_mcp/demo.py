"""``astravue-mcp demo``: proves the server works on the embedded sandbox and shows how to connect."""

from __future__ import annotations

import os
import sys

import anyio

from astravue_mcp.config import Settings

CONNECT = """
Connect a client to a sandbox server of its own (stdio):
  Claude Code:     claude mcp add astravue-sandbox -- {exe} serve --sandbox
  MCP Inspector:   npx @modelcontextprotocol/inspector {exe} serve --sandbox
  Claude Desktop:  {{"mcpServers": {{"astravue": {{"command": "{exe}", "args": ["serve", "--sandbox"]}}}}}}
For your real workspace: set ASTRAVUE_CLIENT_ID, ASTRAVUE_CLIENT_SECRET, ASTRAVUE_ORG_ID,
run `astravue-mcp login` once, then use `astravue-mcp serve`.
"""


def exe_path() -> str:
    """How to run this very command again: clients and other terminals may not have the venv on PATH."""
    argv0 = sys.argv[0] if sys.argv else ""
    return os.path.abspath(argv0) if os.path.basename(argv0) == "astravue-mcp" else "astravue-mcp"


def run_demo(settings: Settings, serve_port: int | None = None) -> int:
    from mcp.client import Client

    from astravue_mcp.catalogue import toolset_of
    from astravue_mcp.server import sandbox_server
    from astravue_mcp.tools.registry import text_of

    if serve_port is not None:
        from astravue_mcp.http_app import check_port

        check_port("127.0.0.1", serve_port)  # before the tour, so nothing claims to serve on a taken port

    async def tour() -> None:
        async with Client(sandbox_server(settings)) as client:
            tools = (await client.list_tools()).tools
            print(f"astravue-mcp on the embedded sandbox: {len(tools)} tools")
            groups: dict[str, list[str]] = {}
            for tool in tools:
                groups.setdefault(toolset_of(tool.name), []).append(tool.name.removeprefix("astravue_"))
            for toolset, names in groups.items():
                print(f"  {toolset} ({len(names)}): {', '.join(names)}")
            print("\nCalling astravue_list_spaces:")
            result = await client.call_tool("astravue_list_spaces", {})
            print(text_of(result))

    anyio.run(tour)
    print(CONNECT.format(exe=exe_path()))
    if serve_port is None:
        return 0
    from astravue_mcp.http_app import serve_http

    print(f"Now serving the sandbox over Streamable HTTP at http://127.0.0.1:{serve_port}/mcp (Ctrl-C stops).")
    print(
        f"  MCP Inspector:   npx @modelcontextprotocol/inspector --transport http --server-url http://127.0.0.1:{serve_port}/mcp",
        flush=True,
    )
    return serve_http(sandbox_server(settings), settings, "127.0.0.1", serve_port)
