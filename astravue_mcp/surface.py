"""The published tool surface, precomputed, so start-up does not build 41 tools before ``tools/list``.

Building every tool (importing the area modules, an argument model and two JSON schemas per tool)
is 150-230 ms of CPU: more than everything else we add to the SDK's own start-up. ``surface.json``
(generated, committed, shipped in the wheel) holds what ``tools/list`` publishes for every tool,
with the toolsets and module each comes from, stamped with a hash of this package's source. When
the stamp matches, the server lists tools from the file and builds a tool the first time it is
called; when it does not (an edited checkout), every tool is built at start-up as before. Either
way the list is the same: ``tests/test_surface.py`` compares the file with a fresh build.
Regenerate with ``python3 tasks.py surface`` (``python -m astravue_mcp.catalogue``).

The stamp leaves out the pydantic and mcp versions on purpose: an install resolves whatever
versions are current, and the schemas the file holds are the ones the test suite checked against
this source. Arguments are always validated by the built tool, so another pydantic could at most
word a published schema differently. A file the installed SDK cannot read as tools makes the
server build them instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mcp_types import Tool
from pydantic import ValidationError

PACKAGE = Path(__file__).resolve().parent
FILE = PACKAGE / "surface.json"


@dataclass(frozen=True)
class Published:
    """One tool as ``tools/list`` shows it, with what selection needs to know without building it."""

    name: str
    toolsets: tuple[str, ...]
    writes: bool
    module: str
    tool: Tool


def fingerprint() -> str:
    """Changes whenever anything in the package, and so anything that shapes the published tools, changes."""
    digest = hashlib.sha256()
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
    try:
        return {p.name: p for p in map(_published, data["tools"])}
    except (KeyError, TypeError, ValidationError):
        return None


def _published(entry: dict[str, Any]) -> Published:
    tool = Tool.model_validate(entry["tool"])
    return Published(tool.name, tuple(entry["toolsets"]), bool(entry["writes"]), str(entry["module"]), tool)


def render(tools: list[Published]) -> str:
    """The surface file's text for these published tools (``catalogue.build_surface()``)."""
    entries = [
        {
            "toolsets": list(t.toolsets),
            "writes": t.writes,
            "module": t.module,
            "tool": t.tool.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        for t in tools
    ]
    return json.dumps({"fingerprint": fingerprint(), "tools": entries}, indent=1, ensure_ascii=False) + "\n"


def write(tools: list[Published]) -> bool:
    """Regenerate ``surface.json``; True when it changed."""
    text = render(tools)
    old = FILE.read_text(encoding="utf-8") if FILE.exists() else None
    if text != old:
        FILE.write_text(text, encoding="utf-8")
    load.cache_clear()
    return text != old
