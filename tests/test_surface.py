"""The tool surface a model sees: the precomputed surface, annotations, schemas, selection, byte budget.

``astravue_mcp/surface.json`` is both the start-up cache and the reviewed snapshot of tools/list.
After any change to the package, refresh it with ``python3 tasks.py surface`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mcp.client import Client

from astravue_mcp import catalogue, surface
from astravue_mcp.config import SettingsError, load_settings
from astravue_mcp.server import sandbox_server
from astravue_mcp.tools import TOOLSETS
from tests.support import sandbox_client

pytestmark = pytest.mark.anyio
BYTES_PER_TOOL = 1000
REGISTRY = catalogue.load_specs()  # for the checks below (servers themselves build tools only when called)


async def listed(**settings: object) -> list[dict]:
    async with sandbox_client(**settings) as client:
        tools = (await client.list_tools()).tools
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def size(tools: list[dict]) -> int:
    return len(json.dumps(tools, separators=(",", ":")))


def test_precomputed_surface_is_fresh() -> None:
    """The committed surface is what building every tool publishes, stamped for this source."""
    if os.environ.get("UPDATE_SNAPSHOTS"):
        surface.write(catalogue.build_surface())
    fresh = surface.render(catalogue.build_surface())
    assert fresh == surface.FILE.read_text(encoding="utf-8"), (
        "astravue_mcp/surface.json is stale: run `python3 tasks.py surface`, review the diff, commit it"
    )
    assert surface.load() is not None


def test_a_stale_or_unreadable_surface_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = json.loads(surface.FILE.read_text(encoding="utf-8"))
    cases = [
        json.dumps({**good, "fingerprint": "0" * 64}),  # made from other source
        json.dumps({**good, "tools": [{**good["tools"][0], "tool": {"name": 3}}]}),  # not a tool to this SDK
        json.dumps({**good, "tools": [{"tool": good["tools"][0]["tool"]}]}),  # toolsets missing
        "{not json",
    ]
    try:
        for text in cases:
            (tmp_path / "surface.json").write_text(text, encoding="utf-8")
            monkeypatch.setattr(surface, "FILE", tmp_path / "surface.json")
            surface.load.cache_clear()
            assert surface.load() is None, text[:80]
    finally:
        monkeypatch.undo()
        surface.load.cache_clear()
    assert surface.load() is not None


SELECTIONS = [
    {},
    {"read_only": True},
    {"toolsets": "tasks,time"},
    {"toolsets": "all", "tools": "astravue_get_task,astravue_list_spaces"},
]


@pytest.mark.parametrize("settings", SELECTIONS)
async def test_listing_from_the_surface_equals_building_every_tool(
    settings: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a fresh checkout lists at once is byte for byte what an edited checkout builds."""
    assert surface.load() is not None
    published = sandbox_server(load_settings({}, **settings))
    assert published.catalogue.built == {}, "start-up must not build any tool"
    monkeypatch.setattr(surface, "load", lambda: None)  # a stale stamp: every tool is built at start-up
    built = sandbox_server(load_settings({}, **settings))
    assert len(built.catalogue.built) == len(await built.list_tools())

    def dump(tools: list) -> str:
        return json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools])

    assert dump(await published.list_tools()) == dump(await built.list_tools())
    assert {p.name for p in await published.list_prompts()} == {p.name for p in await built.list_prompts()}


async def test_a_tool_whose_build_failed_is_built_again_on_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    real = catalogue.import_module
    failures = iter([ImportError("disk hiccup")])

    def flaky(name: str) -> object:
        for exc in failures:
            raise exc
        return real(name)

    monkeypatch.setattr(catalogue, "import_module", flaky)
    async with Client(sandbox_server(load_settings({}, toolsets="spaces"))) as client:
        first = await client.call_tool("astravue_get_space", {"space_id": 2})
        second = await client.call_tool("astravue_get_space", {"space_id": 2})
    assert first.is_error and "Unknown tool" not in first.content[0].text
    assert second.structured_content is not None and second.structured_content["id"] == 2


async def test_a_published_tool_is_built_on_its_first_call() -> None:
    server = sandbox_server(load_settings({}, toolsets="spaces"))
    async with Client(server) as client:
        first = await client.call_tool("astravue_get_space", {"space_id": 2})
        assert list(server.catalogue.built) == ["astravue_get_space"]
        again = await client.call_tool("astravue_get_space", {"space_id": 2})
        bad = await client.call_tool("astravue_get_space", {"space_id": 0})
        off = await client.call_tool("astravue_get_project", {"space_id": 2, "project_id": 1})
    assert first.structured_content == again.structured_content and first.structured_content["id"] == 2
    assert bad.is_error and "space_id" in bad.content[0].text
    assert off.is_error and "does not exist or is switched off" in off.content[0].text


async def test_every_tool_is_fully_described() -> None:
    for tool in await listed(toolsets="all"):
        name = tool["name"]
        assert name.startswith("astravue_") and tool.get("title"), name
        assert 10 <= len(tool["description"]) <= 300, name
        hints = tool["annotations"]
        assert set(hints) == {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}, name
        spec = REGISTRY[name]
        assert hints["readOnlyHint"] is (spec.kind == "read"), name
        assert hints["destructiveHint"] is (spec.kind == "delete"), name
        assert tool["outputSchema"]["type"] == "object", name
        for field, schema in tool["inputSchema"].get("properties", {}).items():
            assert schema.get("description"), f"{name}.{field} has no description"


async def test_average_bytes_per_tool_within_budget() -> None:
    tools = await listed(toolsets="all")
    assert size(tools) / len(tools) <= BYTES_PER_TOOL, f"{size(tools) / len(tools):.0f} B/tool"


async def test_read_only_leaves_no_write_tool_and_refuses_calls() -> None:
    tools = await listed(toolsets="all", read_only=True)
    assert tools and all(t["annotations"]["readOnlyHint"] for t in tools)
    async with sandbox_client(toolsets="all", read_only=True) as client:
        result = await client.call_tool("astravue_delete_space", {"space_id": 1})
        assert result.is_error
        assert "does not exist or is switched off" in result.content[0].text
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
    assert everything == {
        "daily_standup",
        "project_status_report",
        "overdue_action_plan",
        "sprint_planner",
        "time_tracking_report",
        "task_breakdown",
    }
    async with sandbox_client(toolsets="all", read_only=True) as client:
        read_only = {p.name for p in (await client.list_prompts()).prompts}
    # These offer to apply their plan with write tools, which read-only mode removes.
    assert read_only == everything - {"overdue_action_plan", "sprint_planner", "task_breakdown"}
    async with sandbox_client(toolsets="spaces,projects,tasks") as client:
        assert (await client.list_prompts()).prompts == []
