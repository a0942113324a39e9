"""The tool surface a model sees: the reviewed snapshot, the start-up cache, annotations, selection, bytes.

After changing a tool, refresh the snapshot (and manifest.json's tool list) and review the diff:
``UPDATE_SNAPSHOTS=1 python3 tasks.py test tests/test_surface.py tests/test_packaging.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx2
import pytest
from jsonschema import Draft202012Validator
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ToolAnnotations

from astravue_mcp import catalogue, surface
from astravue_mcp.config import SANDBOX_URL, SettingsError, load_settings
from astravue_mcp.sandbox import create_app
from astravue_mcp.server import build_server, sandbox_server
from astravue_mcp.state import LocalLogin
from astravue_mcp.tools import TOOLSETS
from astravue_mcp.tools.registry import SPEC_DEFAULTS, load_specs
from tests.support import sandbox_client

pytestmark = pytest.mark.anyio
BYTES_PER_TOOL = 1000
SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"
REGISTRY = load_specs()  # for the checks below (servers themselves build tools only when called)


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    return str(tmp_path / "cache")


@pytest.fixture
def warm(cache_dir: str) -> str:
    """A cache directory that already holds this install's tools (as after a first start-up)."""
    catalogue.Catalogue.for_settings(load_settings({}, cache_dir=cache_dir))
    return cache_dir


def dump(tools: list[Any]) -> list[dict]:
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


async def listed(**settings: object) -> list[dict]:
    async with sandbox_client(**settings) as client:
        tools = (await client.list_tools()).tools
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def size(tools: list[dict]) -> int:
    return len(json.dumps(tools, separators=(",", ":")))


async def test_tools_list_is_the_reviewed_snapshot(cache_dir: str) -> None:
    """Every change to what clients see in tools/list is a reviewed diff of tests/snapshots/tools_list.json.

    A test artefact only: the server never reads it. Refresh with UPDATE_SNAPSHOTS=1 (module docstring).
    """
    text = json.dumps(await listed(toolsets="all", cache_dir=cache_dir), indent=1, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8"), "tools/list changed: UPDATE_SNAPSHOTS=1, review the diff"


def test_a_stale_or_unreadable_cache_is_not_used(cache_dir: str) -> None:
    sandbox_server(load_settings({}, cache_dir=cache_dir))  # writes the cache
    path = surface.cache_file(cache_dir)
    good = json.loads(path.read_text(encoding="utf-8"))
    assert surface.load(cache_dir) is not None
    cases = [
        {**good, "runtime": {**good["runtime"], "pydantic": "1.0"}},  # made with another library
        {**good, "format": 0},
        {**good, "tools": [{**good["tools"][0], "tool": {"name": 3}}]},  # not a tool to this SDK
        {**good, "tools": [{"tool": good["tools"][0]["tool"]}]},  # toolsets missing
        {**good, "sources": {**good["sources"], "tools/gone.py": [1, 1, "0"]}},  # a source that no longer exists
        "{not json",
    ]
    for case in cases:
        path.write_text(case if isinstance(case, str) else json.dumps(case), encoding="utf-8")
        assert surface.load(cache_dir) is None, str(case)[:80]


def test_an_edited_comment_keeps_the_cache_and_an_edited_tool_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is the syntax trees of the modules the tools are built from, not their bytes."""
    package = tmp_path / "astravue_mcp"
    shutil.copytree(surface.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(surface, "PACKAGE", package)
    cache = str(tmp_path / "cache")
    surface.store(list(catalogue.Catalogue.for_settings(load_settings({}, toolsets="all")).published), cache)
    assert surface.load(cache) is not None

    def edit(relative: str, old: str, new: str) -> None:
        path = package / relative
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    edit("tools/args.py", "\n", "\n# a comment, and a blank line\n\n")  # shapes every tool, but only a comment
    edit(
        "doctor.py",
        '"""',
        '"""A docstring edit in a module no tool is built from. ',
    )
    edit("tools/spaces.py", "from __future__", "# why this module exists\nfrom __future__")
    assert surface.load(cache) is not None
    refreshed = json.loads(surface.cache_file(cache).read_text(encoding="utf-8"))
    assert refreshed["sources"]["tools/args.py"][:2] == [
        (package / "tools/args.py").stat().st_mtime_ns,
        (package / "tools/args.py").stat().st_size,
    ], "a comment edit is recorded, so the next start-up compares no syntax tree"
    edit("tools/spaces.py", '"""One space by id."""', '"""One space by its id."""')
    assert surface.load(cache) is None, "a changed tool description is a different tool: rebuild"


SELECTIONS = [
    {},
    {"read_only": True},
    {"toolsets": "tasks,time"},
    {"toolsets": "all", "tools": "astravue_get_task,astravue_list_spaces"},
]


@pytest.mark.parametrize("settings", SELECTIONS)
async def test_listing_from_the_cache_equals_building_every_tool(settings: dict, tmp_path: Path) -> None:
    """What a start-up lists from the cache is byte for byte what a start-up without one builds."""
    cache_dir = str(tmp_path / "cache")
    built = sandbox_server(load_settings({}, cache_dir=cache_dir, **settings))
    assert len(built.catalogue.built) == len(await built.list_tools()), "no cache yet: the tools are built"
    published = sandbox_server(load_settings({}, cache_dir=cache_dir, **settings))
    assert published.catalogue.built == {}, "start-up must not build any tool"
    assert dump(await published.list_tools()) == dump(await built.list_tools())
    assert {p.name for p in await published.list_prompts()} == {p.name for p in await built.list_prompts()}


async def test_a_tool_whose_build_failed_is_built_again_on_the_next_call(
    monkeypatch: pytest.MonkeyPatch, warm: str
) -> None:
    real = catalogue.import_module
    failures = iter([ImportError("disk hiccup")])

    def flaky(name: str) -> object:
        for exc in failures:
            raise exc
        return real(name)

    monkeypatch.setattr(catalogue, "import_module", flaky)
    async with Client(sandbox_server(load_settings({}, toolsets="spaces", cache_dir=warm))) as client:
        first = await client.call_tool("astravue_get_space", {"space_id": 2})
        second = await client.call_tool("astravue_get_space", {"space_id": 2})
    assert first.is_error and "Unknown tool" not in first.content[0].text
    assert second.structured_content is not None and second.structured_content["id"] == 2


async def test_a_published_tool_is_built_on_its_first_call(warm: str) -> None:
    server = sandbox_server(load_settings({}, toolsets="spaces", cache_dir=warm))
    async with Client(server) as client:
        first = await client.call_tool("astravue_get_space", {"space_id": 2})
        assert list(server.catalogue.built) == ["astravue_get_space"]
        again = await client.call_tool("astravue_get_space", {"space_id": 2})
        bad = await client.call_tool("astravue_get_space", {"space_id": 0})
        with pytest.raises(MCPError, match="does not exist or is switched off") as off:
            await client.call_tool("astravue_get_project", {"space_id": 2, "project_id": 1})
    assert first.structured_content == again.structured_content and first.structured_content["id"] == 2
    assert bad.is_error and "space_id" in bad.content[0].text
    assert off.value.error.code == INVALID_PARAMS  # an unknown tool is a protocol error, as the spec gives it


async def test_every_tool_is_fully_described() -> None:
    for tool in await listed(toolsets="all"):
        name = tool["name"]
        assert name.startswith("astravue_") and tool.get("title"), name
        assert 10 <= len(tool["description"]) <= 300, name
        # What a client reads: the published hints, the spec's defaults for the ones left out.
        published = ToolAnnotations.model_validate(tool["annotations"]).model_dump(exclude_none=True)
        read_as = SPEC_DEFAULTS | published
        spec = REGISTRY[name]
        if spec.kind == "read":
            assert published == {"read_only_hint": True, "open_world_hint": False}, name
        else:
            assert read_as == spec.hints and read_as["read_only_hint"] is False, name
        assert tool["outputSchema"]["type"] == "object", name
        # Every result carries some fields: a client can rely on them, so an empty object is not a result.
        # Only a result that is any view's data (refresh_view) declares no fields at all.
        empty_is_valid = Draft202012Validator(tool["outputSchema"]).is_valid({})
        assert empty_is_valid is (name == "astravue_refresh_view"), f"{name}: {{}} validates: {empty_is_valid}"
        for field, schema in tool["inputSchema"].get("properties", {}).items():
            assert schema.get("description"), f"{name}.{field} has no description"


async def test_average_bytes_per_tool_within_budget() -> None:
    tools = await listed(toolsets="all")
    assert size(tools) / len(tools) <= BYTES_PER_TOOL, f"{size(tools) / len(tools):.0f} B/tool"


async def test_read_only_leaves_no_write_tool_and_refuses_calls() -> None:
    tools = await listed(toolsets="all", read_only=True)
    assert tools and all(t["annotations"]["readOnlyHint"] for t in tools)
    async with sandbox_client(toolsets="all", read_only=True) as client:
        with pytest.raises(MCPError, match="does not exist or is switched off"):
            await client.call_tool("astravue_delete_space", {"space_id": 1})
        assert (await client.call_tool("astravue_get_space", {"space_id": 1})).structured_content["name"] == "Product"


async def test_toolsets_and_allow_list_select_tools() -> None:
    names = {t["name"] for t in await listed(toolsets="spaces")}
    assert names == {n for n, s in REGISTRY.items() if "spaces" in s.toolsets}
    both = {
        t["name"] for t in await listed(toolsets="spaces,projects", tools="astravue_list_spaces,astravue_get_project")
    }
    assert both == {"astravue_list_spaces", "astravue_get_project"}
    every = {t["name"] for t in await listed(toolsets="all")}
    assert every == set(REGISTRY)
    assert {ts for s in REGISTRY.values() for ts in s.toolsets} == set(TOOLSETS)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"toolsets": "spaces,boards"}, "ASTRAVUE_TOOLSETS has unknown toolset(s) boards"),
        ({"tools": "astravue_fly"}, "ASTRAVUE_TOOLS names unknown tool(s): astravue_fly"),
    ],
)
def test_bad_selection_is_a_settings_error(settings: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sandbox_server(load_settings({}, **settings))


async def test_server_identity_and_instructions() -> None:
    async with sandbox_client() as client:
        assert client.server_info is not None and client.server_info.name == "astravue"
        assert "spaces > projects > tasks" in (client.instructions or "")


async def test_legacy_handshake_clients_see_the_same_tools() -> None:
    """Claude Desktop and most IDEs still use the initialize handshake."""
    server = sandbox_server(load_settings({}, toolsets="all"))
    async with Client(server, mode="legacy") as client:
        legacy = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("astravue_get_space", {"space_id": 2})
    assert legacy == set(REGISTRY)
    assert result.structured_content == {"id": 2, "name": "Marketing", "description": "Campaigns, website and content."}


async def test_prompts_that_name_a_switched_off_tool_are_withdrawn() -> None:
    async with sandbox_client(toolsets="all") as client:
        everything = {p.name for p in (await client.list_prompts()).prompts}
    assert len(everything) == 15 and "weekly_team_digest" in everything
    async with sandbox_client(toolsets="all", read_only=True) as client:
        read_only = {p.name for p in (await client.list_prompts()).prompts}
    # These offer to apply their plan with write tools, which read-only mode removes.
    assert read_only == everything - {
        "overdue_action_plan",
        "sprint_planner",
        "task_breakdown",
        "project_kickoff",
        "team_workload_balancer",
    }
    async with sandbox_client(toolsets="spaces,projects,tasks") as client:
        assert (await client.list_prompts()).prompts == []


def test_a_tool_spec_carries_meta_for_a_view() -> None:
    """The seam for MCP Apps views: a spec's meta is published as the tool's _meta, as the SDK would."""
    ui = {"ui": {"resourceUri": "ui://astravue/space.html", "visibility": ["model", "app"]}}
    spec = dataclasses.replace(REGISTRY["astravue_get_space"], meta=ui)
    tool, published = catalogue.build(spec)
    assert tool.meta == ui
    assert dump([published.tool])[0]["_meta"] == ui


async def test_a_tool_added_through_the_sdk_is_served_beside_the_catalogue(warm: str) -> None:
    """What the SDK's own API registers (add_tool, an extension such as Apps) is listed and called too."""
    server = sandbox_server(load_settings({}, toolsets="spaces", cache_dir=warm))
    server.add_tool(lambda: "pong", name="ping", description="Answer pong.")
    async with Client(server) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("ping", {})
    assert names == [n for n, s in REGISTRY.items() if "spaces" in s.toolsets] + ["ping"]
    assert not result.is_error and result.content[0].text == "pong"


async def test_every_request_gets_its_client_from_the_client_source(warm: str) -> None:
    """The seam for a multi-user server: tools and resources ask the source for each request's client."""
    settings = load_settings({}, cache_dir=warm).sandboxed(SANDBOX_URL)
    transport = httpx2.ASGITransport(app=create_app())
    asked: list[str] = []

    class Recorded(LocalLogin):
        def client_for(self, ctx: Any) -> Any:
            asked.append(ctx.request_context.method)
            return super().client_for(ctx)

    server = build_server(settings, transport, clients=lambda: Recorded(settings, transport))
    async with Client(server) as client:
        space = await client.call_tool("astravue_get_space", {"space_id": 2})
        spaces = await client.read_resource("astravue://spaces")
    assert space.structured_content is not None and space.structured_content["name"] == "Marketing"
    assert "Marketing" in spaces.contents[0].text
    assert asked == ["tools/call", "resources/read"]
