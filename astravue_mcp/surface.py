"""The published tool surface, precomputed, so start-up does not build 41 tools before ``tools/list``.

Building every tool (importing the area modules, an argument model and two JSON schemas per tool)
is ~150 ms of CPU: more than everything else we add to the SDK's own start-up. ``surface.json``
(generated, committed) holds what ``tools/list`` publishes for every tool, with the toolsets and
module each comes from, stamped with a fingerprint of this package's source and of the pydantic and
mcp versions. When the stamp matches, the server lists tools from the file and builds a tool the
first time it is called; when it does not (an edited checkout, other library versions), the server
builds every tool at start-up as before. Either way the list is the same: ``tests/test_surface.py``
compares the file with a fresh build. Regenerate with ``python3 tasks.py surface``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pydantic

PACKAGE = Path(__file__).resolve().parent
FILE = PACKAGE / "surface.json"


@dataclass(frozen=True)
class Published:
    """One tool as ``tools/list`` shows it, with what selection needs to know without building it."""

    name: str
    toolsets: tuple[str, ...]
    writes: bool
    module: str
    tool: dict[str, Any]


def fingerprint() -> str:
    """Changes whenever anything that shapes the published tools could have changed."""
    digest = hashlib.sha256(f"pydantic {pydantic.VERSION}; mcp {version('mcp')}".encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@cache
def load() -> dict[str, Published] | None:
    """The precomputed surface by tool name, or None when it is missing or was made from other code."""
    try:
        data = json.loads(FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != fingerprint():
        return None
    return {
        t["tool"]["name"]: Published(t["tool"]["name"], tuple(t["toolsets"]), t["writes"], t["module"], t["tool"])
        for t in data["tools"]
    }


async def generate() -> dict[str, Any]:
    """The surface file's content, from building every tool the way an edited checkout does."""
    from astravue_mcp.server import AstravueServer, register_tools
    from astravue_mcp.tools import load_all
    from astravue_mcp.tools.registry import REGISTRY

    load_all()
    server = AstravueServer("astravue")
    register_tools(server, REGISTRY.values())
    listed = {t.name: t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in await server.list_tools()}
    return {
        "fingerprint": fingerprint(),
        "tools": [
            {"toolsets": list(s.toolsets), "writes": s.writes, "module": s.fn.__module__, "tool": listed[s.name]}
            for s in REGISTRY.values()
        ],
    }


def render(surface: dict[str, Any]) -> str:
    return json.dumps(surface, indent=1, ensure_ascii=False) + "\n"


async def write() -> bool:
    """Regenerate ``surface.json``; True when it changed."""
    text = render(await generate())
    old = FILE.read_text(encoding="utf-8") if FILE.exists() else None
    if text != old:
        FILE.write_text(text, encoding="utf-8")
    load.cache_clear()
    return text != old


if __name__ == "__main__":
    import anyio

    print("surface.json " + ("regenerated" if anyio.run(write) else "already up to date"))
