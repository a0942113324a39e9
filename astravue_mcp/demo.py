"""The server driven from the terminal: ``demo`` (a tour on the embedded sandbox and how to connect),
``tools`` (what each tool costs in tools/list) and ``call`` (one tool call, its structured result).
"""

from __future__ import annotations

import json
import os
import sys

import anyio
from mcp.client import Client

from astravue_mcp.catalogue import toolset_of
from astravue_mcp.config import Settings
from astravue_mcp.http_app import check_port, serve_http
from astravue_mcp.server import build_server, sandbox_server
from astravue_mcp.tools.registry import text_of

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
    if serve_port is not None:
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
    print(f"Now serving the sandbox over Streamable HTTP at http://127.0.0.1:{serve_port}/mcp (Ctrl-C stops).")
    print(
        f"  MCP Inspector:   npx @modelcontextprotocol/inspector --transport http --server-url http://127.0.0.1:{serve_port}/mcp",
        flush=True,
    )
    return serve_http(sandbox_server(settings), settings, "127.0.0.1", serve_port)


def tool_sizes(settings: Settings) -> list[tuple[str, str, int]]:
    """(toolset, tool, bytes in tools/list) for every tool these settings select (the README quotes them)."""

    async def sizes() -> list[tuple[str, str, int]]:
        tools = await sandbox_server(settings).list_tools()
        rows = []
        for t in tools:
            size = len(json.dumps(t.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":")))
            rows.append((toolset_of(t.name), t.name, size))
        return rows

    return anyio.run(sizes)


def print_tool_sizes(settings: Settings) -> int:
    """Each selected tool per toolset with the bytes it costs in tools/list."""
    rows = tool_sizes(settings)
    for toolset in dict.fromkeys(r[0] for r in rows):
        print(f"{toolset}:")
        for _, name, size in (r for r in rows if r[0] == toolset):
            print(f"  {name:<42} {size:>6} B")
    total = sum(r[2] for r in rows)
    print(f"{len(rows)} tools, {total} bytes in tools/list (~{total // 4} tokens), {total // max(len(rows), 1)} B/tool")
    return 0


def call_tool(settings: Settings, tool: str, arguments_json: str, sandbox: bool) -> int:
    """Call one tool and print its structured result (exit 1 on a tool error, 2 on bad arguments)."""
    try:
        arguments = json.loads(arguments_json)
        if not isinstance(arguments, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        print(f"astravue-mcp: --args must be a JSON object ({exc}).", file=sys.stderr)
        return 2
    server = sandbox_server(settings) if sandbox else build_server(settings)

    async def call() -> int:
        async with Client(server) as client:
            result = await client.call_tool(tool, arguments)
        if result.is_error:
            print(text_of(result) or "error", file=sys.stderr)
            return 1
        print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
        return 0

    return anyio.run(call)
