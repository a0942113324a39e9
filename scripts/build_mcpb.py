#!/usr/bin/env python3
"""Build the MCP Bundle (``.mcpb``) for Claude Desktop from ``manifest.json``.

    python3 scripts/build_mcpb.py              # validate + pack into dist/astravue-mcp-<version>.mcpb
    python3 scripts/build_mcpb.py --sync       # rewrite manifest.json's version and tool list from the server

The bundle always gets the server's current tool list (descriptions included); the committed
manifest.json is kept in step by tests/test_packaging.py (tool names) and ``--sync``.

The bundle is of server type ``uv``: it carries ``pyproject.toml`` and the package sources, and
Claude Desktop's uv runtime installs the dependencies. Packing uses the npm package
``@anthropic-ai/mcpb`` from ``tests/inspector/node_modules`` (installed by ``python3 tasks.py test``),
or ``npx`` when that is missing. Any ``python3`` runs it: without the package's dependencies it
sets up the project's ``.venv`` (as ``tasks.py`` does) and runs again from there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest.json"
LOCAL_MCPB = ROOT / "tests" / "inspector" / "node_modules" / ".bin" / "mcpb"
# What the bundle needs to run `uv run astravue-mcp serve` (sources, metadata, package data).
BUNDLE_FILES = ("manifest.json", "pyproject.toml", "README.md", "LICENSE")
PACKAGE_PATTERNS = ("*.py", "py.typed", "*.json")


def server_tools() -> list[dict[str, str]]:
    """Name and description of every tool the server exposes with the bundle's defaults."""
    import anyio

    sys.path.insert(0, str(ROOT))
    from astravue_mcp.config import load_settings
    from astravue_mcp.server import sandbox_server

    async def listing() -> list[dict[str, str]]:
        tools = await sandbox_server(load_settings({})).list_tools()
        # Tools only the interactive views call (MCP Apps visibility ["app"]) are not offered to the model.
        shown = [t for t in tools if "model" in ((t.meta or {}).get("ui") or {}).get("visibility", ["model"])]
        return [{"name": t.name, "description": t.description or ""} for t in shown]

    return anyio.run(listing)


def package_version() -> str:
    sys.path.insert(0, str(ROOT))
    from astravue_mcp import __version__

    return __version__


def sync_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    """The manifest at ``path`` with the package's version and the server's tool list, written back."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["version"] = package_version()
    manifest["tools"] = server_tools()
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def stage(target: Path) -> Path:
    """Copy what the bundle contains into ``target`` (nothing from .venv, tests or node_modules)."""
    for name in BUNDLE_FILES:
        shutil.copy2(ROOT / name, target / name)
    package = ROOT / "astravue_mcp"
    for pattern in PACKAGE_PATTERNS:
        for source in package.rglob(pattern):
            if "__pycache__" in source.parts:
                continue
            destination = target / source.relative_to(ROOT)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    # The packed tool list is always the server's own, descriptions included, whatever was committed.
    sync_manifest(target / "manifest.json")
    return target


def mcpb_command() -> list[str]:
    if LOCAL_MCPB.exists():
        return [str(LOCAL_MCPB)]
    npx = shutil.which("npx")
    if npx is None:
        raise SystemExit("mcpb needs Node.js: install it, or run `python3 tasks.py test` once to install mcpb locally.")
    return [npx, "--yes", "@anthropic-ai/mcpb"]


def build(output: Path, timeout: float = 120.0) -> Path:
    """Validate the manifest and pack the bundle; returns the .mcpb path."""
    mcpb = mcpb_command()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="astravue-mcpb-") as tmp:
        staged = stage(Path(tmp))
        for args in (["validate", str(staged / "manifest.json")], ["pack", str(staged), str(output)]):
            done = subprocess.run([*mcpb, *args], capture_output=True, text=True, timeout=timeout)
            if done.returncode != 0:
                raise SystemExit(f"mcpb {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return output


def ensure_environment() -> None:
    """Run from the project's .venv when this Python lacks the package's dependencies."""
    sys.path.insert(0, str(ROOT))
    try:
        importlib.import_module("astravue_mcp.server")
    except ImportError:
        import tasks

        if Path(sys.executable).resolve() == tasks.PY.resolve():
            raise  # the venv itself is broken: show why
        tasks.ensure_venv(dev=False)
        os.execv(tasks.PY, [str(tasks.PY), str(Path(__file__).resolve()), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    ensure_environment()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sync", action="store_true", help="update manifest.json's version and tools, then stop")
    parser.add_argument("--output", type=Path, help="where to write the .mcpb (default dist/)")
    args = parser.parse_args(argv)
    if args.sync:
        manifest = sync_manifest()
        print(f"manifest.json: version {manifest['version']}, {len(manifest['tools'])} tools")
        return 0
    output = args.output or ROOT / "dist" / f"astravue-mcp-{package_version()}.mcpb"
    print(build(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
