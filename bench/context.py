"""3. Context cost: bytes of tools/list (default toolsets, all, read-only), per tool, prompts and resources.

Sizes are of the compact JSON a client receives (the result objects, without the JSON-RPC
envelope); tokens are estimated as bytes / 4. Target: <= 1,000 bytes per tool with all toolsets on.
For scale: GitHub's MCP server publishes ~64,600 tokens for 102 tools (~2,500 bytes per tool).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, verdict, write_result

from astravue_mcp.config import load_settings
from astravue_mcp.server import sandbox_server

TARGET = 1000
GITHUB = {"tools": 102, "tokens": 64_600, "bytes_per_tool": 64_600 * 4 // 102}


def size(items: list[Any]) -> int:
    return len(
        json.dumps([i.model_dump(mode="json", by_alias=True, exclude_none=True) for i in items], separators=(",", ":"))
    )


async def surface(**settings: Any) -> dict[str, Any]:
    async with Client(sandbox_server(load_settings(env={}, **settings))) as client:
        tools = (await client.list_tools()).tools
        prompts = (await client.list_prompts()).prompts
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
    per_tool = {t.name: size([t]) for t in tools}
    total = size(tools)
    return {
        "tools": len(tools),
        "tools_bytes": total,
        "tokens_estimate": total // 4,
        "bytes_per_tool": round(total / max(len(tools), 1)),
        "per_tool": dict(sorted(per_tool.items(), key=lambda kv: -kv[1])),
        "prompts": {"count": len(prompts), "bytes": size(prompts)},
        "resources": {"count": len(resources), "bytes": size(resources)},
        "resource_templates": {"count": len(templates), "bytes": size(templates)},
    }


def run() -> dict[str, Any]:
    async def all_views() -> dict[str, Any]:
        return {
            "default": await surface(),
            "all": await surface(toolsets="all"),
            "all_read_only": await surface(toolsets="all", read_only=True),
        }

    views = anyio.run(all_views)
    per_tool = views["all"]["bytes_per_tool"]
    return {
        "views": views,
        "github_reference": GITHUB,
        "target": {"what": f"<= {TARGET} bytes/tool with all toolsets", "value": per_tool, "met": per_tool <= TARGET},
    }


def report(r: dict[str, Any]) -> str:
    rows = [
        [name, v["tools"], v["tools_bytes"], v["tokens_estimate"], v["bytes_per_tool"]]
        for name, v in r["views"].items()
    ]
    a = r["views"]["all"]
    extras = [
        ["prompts", a["prompts"]["count"], a["prompts"]["bytes"], a["prompts"]["bytes"] // 4, ""],
        ["resources", a["resources"]["count"], a["resources"]["bytes"], a["resources"]["bytes"] // 4, ""],
        [
            "resource templates",
            a["resource_templates"]["count"],
            a["resource_templates"]["bytes"],
            a["resource_templates"]["bytes"] // 4,
            "",
        ],
    ]
    biggest = list(a["per_tool"].items())[:5]
    return "\n".join(
        [
            "Context cost (compact JSON of the list results)",
            table(["tools/list", "tools", "bytes", "~tokens", "B/tool"], rows + extras),
            "largest tools: " + ", ".join(f"{n} {b} B" for n, b in biggest),
            f"target <= {TARGET} B/tool (all): {verdict(r['target']['met'])} ({r['target']['value']} B/tool; "
            f"GitHub's server ~{GITHUB['bytes_per_tool']} B/tool)",
        ]
    )


def main() -> None:
    result = run()
    write_result("context", result)
    print(report(result))


if __name__ == "__main__":
    main()
