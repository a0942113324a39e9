"""The published tools, cached per install, so that start-up lists them without building any.

Building every tool (importing the area modules, an argument model and two JSON schemas per tool)
costs ~230 ms of CPU, more than everything else we add to the SDK's own start-up. So what
``tools/list`` publishes for every declared tool is kept in a file in the user's cache directory
(one per install), keyed by what shapes the tools:

- the syntax tree of every module the tools are built from: the catalogue, the areas in
  ``tools.AREAS`` and everything they import from this package. Comments, blank lines and
  formatting are not part of a syntax tree, and a module they do not import is not in the key;
- the Python, pydantic and MCP SDK that derive the schemas (versions, and the SDK files that build
  tools, by size and modification time).

While nothing changed, checking the key is one ``stat()`` per module. A module whose ``stat()``
changed is parsed: the same syntax tree (an edited comment) keeps the cache, which is rewritten with
the new ``stat()``. Anything else is a miss: every tool is built at start-up (as it was before the
cache), the cache is written, and the next start is fast again. Nothing is committed or regenerated
by hand, and the runtime never reads the ``tools/list`` snapshot the tests compare against.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import pydantic
from mcp_types import Tool
from pydantic import ValidationError

from astravue_mcp.tools import AREAS

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
ROOTS = ("astravue_mcp.catalogue", *(f"astravue_mcp.tools.{area}" for area in AREAS))
"""Where the modules that shape the tools are found from: the catalogue and the tool areas."""
SDK_MODULES = (
    "mcp.server.mcpserver.tools.base",
    "mcp.server.mcpserver.utilities.func_metadata",
    Tool.__module__,  # where the SDK defines Tool today, found without naming its private module
    "pydantic.json_schema",
)
"""The library modules that turn a tool function into its schemas (a server has imported them already)."""
FORMAT = 1


@dataclass(frozen=True)
class Published:
    """One tool as ``tools/list`` shows it, with what selection needs to know without building it."""

    name: str
    toolsets: tuple[str, ...]
    writes: bool
    module: str
    tool: Tool


def cache_file(directory: str | None) -> Path:
    """This install's cache file: in ``directory`` (``ASTRAVUE_CACHE_DIR``) or the user cache directory."""
    if directory:
        base = Path(directory)
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "astravue-mcp"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "astravue-mcp"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "astravue-mcp"
    install = hashlib.sha256(str(PACKAGE).encode()).hexdigest()[:16]
    return base / f"tools-{install}.json"


def runtime() -> dict[str, Any]:
    """What outside this package shapes the schemas."""
    sdk = []
    for name in SDK_MODULES:
        source = import_module(name).__file__
        found = os.stat(source) if source else None
        sdk.append([name, found.st_mtime_ns if found else None, found.st_size if found else None])
    return {"python": sys.version, "pydantic": pydantic.VERSION, "sdk": sdk}


def tree_digest(path: Path) -> str:
    """The module's syntax tree, hashed: the same for any two sources that differ only in comments or layout."""
    return hashlib.sha256(ast.dump(ast.parse(path.read_bytes())).encode()).hexdigest()


def module_file(name: str) -> Path | None:
    """The source of a module of this package (``astravue_mcp.tools.args`` -> ``tools/args.py``)."""
    parts = name.split(".")[1:]
    candidates = [PACKAGE.joinpath(*parts[:-1], f"{parts[-1]}.py")] if parts else []
    candidates.append(PACKAGE.joinpath(*parts, "__init__.py"))
    return next((c for c in candidates if c.is_file()), None)


def sources() -> list[Path]:
    """The package modules the tools are built from: the roots and what they import on import, transitively."""
    pending = ["astravue_mcp", *ROOTS]
    found: dict[str, Path] = {}
    while pending:
        name = pending.pop()
        path = module_file(name)
        if name in found or path is None:
            continue
        found[name] = path
        # Only what runs on import: imports inside functions or TYPE_CHECKING blocks shape no tool.
        for node in ast.parse(path.read_bytes()).body:
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                pending += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        pending = [p for p in pending if p == "astravue_mcp" or p.startswith("astravue_mcp.")]
    return sorted(found.values())


def load(directory: str | None) -> dict[str, Published] | None:
    """The cached tools by name, or None when there is no cache or it was made from other code."""
    path = cache_file(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["format"] != FORMAT or data["runtime"] != json.loads(json.dumps(runtime())):
            return None
        refreshed = False
        for relative, (mtime, size, digest) in data["sources"].items():
            found = (PACKAGE / relative).stat()
            if (found.st_mtime_ns, found.st_size) == (mtime, size):
                continue
            if tree_digest(PACKAGE / relative) != digest:
                return None
            data["sources"][relative] = [found.st_mtime_ns, found.st_size, digest]
            refreshed = True
        tools = {p.name: p for p in map(_published, data["tools"])}
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, ValidationError):
        return None
    if refreshed:
        _write(path, data)
    return tools


def _published(entry: dict[str, Any]) -> Published:
    tool = Tool.model_validate(entry["tool"])
    return Published(tool.name, tuple(entry["toolsets"]), bool(entry["writes"]), str(entry["module"]), tool)


def store(tools: list[Published], directory: str | None) -> None:
    """Cache these tools (every declared one, as just built) for the next start-up of this install."""
    recorded = {}
    try:
        for path in sources():
            found = path.stat()
            recorded[path.relative_to(PACKAGE).as_posix()] = [found.st_mtime_ns, found.st_size, tree_digest(path)]
    except (OSError, SyntaxError, ValueError) as exc:
        log.info("Could not read the package source to key the tool cache (%s): nothing cached", exc)
        return
    entries = [
        {
            "toolsets": list(t.toolsets),
            "writes": t.writes,
            "module": t.module,
            "tool": t.tool.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        for t in tools
    ]
    _write(cache_file(directory), {"format": FORMAT, "runtime": runtime(), "sources": recorded, "tools": entries})


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace the cache file whole (a concurrent reader sees the old or the new one); a failure only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as out:
            try:
                json.dump(data, out, separators=(",", ":"))
            except BaseException:
                os.unlink(out.name)
                raise
        os.replace(out.name, path)
    except OSError as exc:
        log.info("Could not write the tool cache %s (%s): the next start-up builds the tools again", path, exc)
