"""Client integrations beyond a JSON snippet: the Claude Code plugin and its marketplace entry, the
Cursor plugin, the Gemini CLI extension and the skills they ship.

Each manifest parses and carries the fields its client requires; the server each one starts is
this package's ``serve``; every skill has front matter with a name and a description, and every
tool a skill (or the Gemini context file) names exists in the full catalogue. That the versions
agree is the release check's job (``tasks.version_problems``, tested in test_packaging.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from astravue_mcp.config import ENV, load_settings
from astravue_mcp.server import sandbox_server

ROOT = Path(__file__).resolve().parent.parent
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SKILLS = sorted((ROOT / "skills").glob("*/SKILL.md"))
# The workflows of the issue that the public API supports; custom fields and dependencies have no
# endpoint in docs/astravue-openapi.yaml (the README says so).
WORKFLOWS = {
    "breaking-down-work", "capturing-meeting-actions", "status-reports", "sprint-planning", "time-tracking",
    "triaging-overdue-work",
}  # fmt: skip


def load(path: str) -> dict[str, Any]:
    document = json.loads((ROOT / path).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def catalogue() -> set[str]:
    async def names() -> set[str]:
        return {t.name for t in await sandbox_server(load_settings({}, toolsets="all")).list_tools()}

    return anyio.run(names)


def front_matter(path: Path) -> tuple[dict[str, str], str]:
    """The YAML front matter (flat ``key: value`` lines, which is all a skill needs) and the body."""
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    assert match, f"{path} has no front matter"
    fields = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(": ")
        assert sep and re.fullmatch(r"[a-z-]+", key), f"{path}: not a 'key: value' line: {line!r}"
        assert not value.startswith(("'", '"', "[", "{", "|", ">")), f"{path}: keep {key} a plain scalar"
        fields[key] = value.strip()
    return fields, match.group(2)


def serves_this_package(entry: dict[str, Any]) -> None:
    """A server entry starts ``astravue-mcp serve`` through uvx, and sets only real settings."""
    assert entry["command"] == "uvx"
    args = entry["args"]
    assert args[-2:] == ["astravue-mcp", "serve"], args
    assert args[:-2] in ([], ["--from", args[1]]), args
    for var in entry.get("env", {}):
        assert var in ENV, f"{var} is not a setting"


# ---------------------------------------------------------------- Claude Code
def test_claude_code_plugin_manifest() -> None:
    plugin = load(".claude-plugin/plugin.json")
    assert KEBAB.match(plugin["name"]) and plugin["description"] and plugin["version"]
    assert plugin["author"]["name"] and plugin["license"] == "MIT"
    assert not {"skills", "mcpServers"} & set(plugin), "default locations: skills/ and .mcp.json"


def test_marketplace_lists_the_plugin_from_this_repository() -> None:
    market, plugin = load(".claude-plugin/marketplace.json"), load(".claude-plugin/plugin.json")
    assert KEBAB.match(market["name"]) and market["owner"]["name"]
    (entry,) = market["plugins"]
    assert entry["name"] == plugin["name"] and entry["source"] == "./"
    assert entry["description"] and entry["version"] == plugin["version"]


def test_plugin_starts_the_server_from_the_plugin_directory() -> None:
    servers = load(".mcp.json")["mcpServers"]
    assert list(servers) == ["astravue"]
    entry = servers["astravue"]
    serves_this_package(entry)
    # Installed as a plugin: the plugin's own directory; opened as a project: this checkout.
    assert entry["args"][:2] == ["--from", "${CLAUDE_PLUGIN_ROOT:-.}"]
    assert entry["env"] == {var: f"${{{var}:-}}" for var in entry["env"]}  # passed through, empty when unset
    assert set(entry["env"]) == {"ASTRAVUE_CLIENT_ID", "ASTRAVUE_CLIENT_SECRET", "ASTRAVUE_ORG_ID"}


# ---------------------------------------------------------------- Cursor
def test_cursor_plugin_manifest() -> None:
    plugin = load(".cursor-plugin/plugin.json")
    assert set(plugin) <= {
        "name", "displayName", "description", "version", "author", "publisher", "homepage", "repository", "license",
        "logo", "keywords", "category", "tags", "rules", "agents", "skills", "commands", "hooks", "mcpServers",
    }  # fmt: skip
    assert re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", plugin["name"])
    assert (ROOT / plugin["skills"]).is_dir()
    servers = json.loads((ROOT / plugin["mcpServers"]).read_text())["mcpServers"]
    serves_this_package(servers["astravue"])
    assert all(re.fullmatch(r"\$\{env:ASTRAVUE_\w+\}", v) for v in servers["astravue"]["env"].values())


# ---------------------------------------------------------------- Gemini CLI
def test_gemini_extension_manifest() -> None:
    extension = load("gemini-extension.json")
    assert KEBAB.match(extension["name"]) and extension["version"] and extension["description"]
    serves_this_package(extension["mcpServers"]["astravue"])
    assert extension["mcpServers"]["astravue"]["args"][:2] == ["--from", "${extensionPath}"]
    assert (ROOT / extension["contextFileName"]).is_file()
    settings = {s["envVar"]: s for s in extension["settings"]}
    assert set(settings) == {"ASTRAVUE_CLIENT_ID", "ASTRAVUE_CLIENT_SECRET", "ASTRAVUE_ORG_ID"}
    assert [v for v, s in settings.items() if s.get("sensitive")] == ["ASTRAVUE_CLIENT_SECRET"]
    assert all(s["name"] and s["description"] for s in settings.values())


# ---------------------------------------------------------------- skills
def test_the_workflows_have_skills() -> None:
    assert {path.parent.name for path in SKILLS} >= WORKFLOWS


@pytest.mark.parametrize("path", SKILLS, ids=lambda p: p.parent.name)
def test_skill_front_matter(path: Path) -> None:
    fields, body = front_matter(path)
    assert set(fields) == {"name", "description"}
    assert fields["name"] == path.parent.name and KEBAB.match(fields["name"]) and len(fields["name"]) <= 64
    assert 50 <= len(fields["description"]) <= 1024 and "Use when" in fields["description"]
    assert body.lstrip().startswith("# ")


def test_every_tool_a_skill_names_exists() -> None:
    known = catalogue()
    for path in [*SKILLS, ROOT / "GEMINI.md"]:
        named = set(re.findall(r"\bastravue_[a-z_]+\b", path.read_text(encoding="utf-8")))
        assert named <= known, f"{path.relative_to(ROOT)} names unknown tools: {sorted(named - known)}"
        assert named or path.name == "GEMINI.md", f"{path} names no tool"
