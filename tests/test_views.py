"""Interactive views (MCP Apps) at the protocol level: tool metadata, the pages as resources, the data.

Every ``_meta.ui`` is checked against the JSON Schema that ``@modelcontextprotocol/ext-apps`` publishes
(installed with the test suite's Node packages); the browser end-to-end test is test_views_browser.py.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from mcp.client import Client
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.shared.exceptions import MCPError

from astravue_mcp.config import load_settings
from astravue_mcp.identity import Identity
from astravue_mcp.server import sandbox_server
from astravue_mcp.tools.registry import MEMBER_TEXT_NOTE
from astravue_mcp.views import PAGE_BUDGET, PAGES
from tests.apps_host import apps_client, ext_apps
from tests.support import call, error, sandbox_client

pytestmark = pytest.mark.anyio
VIEW_TOOLS = {
    "astravue_preview_task_list": "ui://astravue/task-list.html",
    "astravue_preview_my_tasks": "ui://astravue/my-tasks.html",
    "astravue_preview_project_overview": "ui://astravue/project-overview.html",
}
APP_ONLY = {"astravue_refresh_view", "astravue_change_task"}
CALLS = [
    ("astravue_preview_task_list", {"space_id": 1, "project_id": 1}),
    ("astravue_preview_my_tasks", {}),
    ("astravue_preview_project_overview", {"space_id": 1, "project_id": 1}),
]


def model_sees(tool: Any) -> bool:
    """What a host does with tools/list before showing it to the model (spec: Visibility)."""
    ui = (tool.meta or {}).get("ui") or {}
    return "model" in ui.get("visibility", ["model", "app"])


async def test_view_tools_name_their_pages_and_app_only_tools_are_hidden_from_the_model() -> None:
    async with sandbox_client(toolsets="all") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert EXTENSION_ID in (client.server_capabilities.extensions or {})
        for name, uri in VIEW_TOOLS.items():
            assert tools[name].meta == {"ui": {"resourceUri": uri}}  # visible to the model and the page
        for name in APP_ONLY:
            assert tools[name].meta["ui"]["visibility"] == ["app"]
        for tool in tools.values():
            if tool.meta is not None:
                ext_apps().validate(tool.meta["ui"], "McpUiToolMeta")
        model = {t.name for t in tools.values() if model_sees(t)}
        assert set(VIEW_TOOLS) <= model
        assert not APP_ONLY & model
        assert len(model) == len(tools) - len(APP_ONLY)


async def test_pages_are_self_contained_app_resources_within_budget() -> None:
    async with sandbox_client(toolsets="all") as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        for page in PAGES:
            assert listed[page.uri].mime_type == APP_MIME_TYPE
            content = (await client.read_resource(page.uri)).contents[0]
            assert content.mime_type == APP_MIME_TYPE
            ui = content.meta["ui"]
            ext_apps().validate(ui, "McpUiResourceMeta")
            assert ui["csp"] == {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []}
            html = content.text
            assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
            assert len(html.encode()) <= PAGE_BUDGET, f"{page.name}: {len(html.encode())} bytes"
            assert "/*" + "BRIDGE_JS*/" not in html and "ui/initialize" in html
            # No origin other than the page's own: the only URL is the SVG namespace name.
            assert set(re.findall(r"[a-z]+://[^\s\"'`)]+", html)) <= {"http://www.w3.org/2000/svg"}
            assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


@pytest.mark.parametrize(("tool", "args"), CALLS)
async def test_views_answer_text_clients_in_full_and_app_clients_briefly(tool: str, args: dict) -> None:
    server = sandbox_server(load_settings({}, toolsets="all"))  # one sandbox: the same data for both clients
    async with Client(server) as plain, apps_client(server) as apps:
        schema = next(t for t in (await plain.list_tools()).tools if t.name == tool).output_schema
        full = await plain.call_tool(tool, args)
        brief = await apps.call_tool(tool, args)
    assert not full.is_error and not brief.is_error
    assert full.structured_content == brief.structured_content
    jsonschema.validate(full.structured_content, schema)
    data = full.structured_content
    assert data["editable"] is True
    assert "- id=" in text_of(full)  # every task of the view, one line each
    assert "- id=" not in text_of(brief) and text_of(brief).split("\n")[0] == text_of(full).split("\n")[0]
    assert len(text_of(full)) < len(str(data))


async def test_task_list_is_the_project_board() -> None:
    async with sandbox_client(toolsets="all") as client:
        data = await call(client, "astravue_preview_task_list", space_id=1, project_id=1)
        listed = await call(client, "astravue_list_project_tasks", space_id=1, project_id=1, limit=200)
        overdue = await call(client, "astravue_list_overdue_tasks", space_id=1, project_id=1)
    assert data["title"] == "Mobile App v2" and data["total"] == listed["total"] == len(data["items"])
    assert {t["id"] for t in data["items"]} == {t["id"] for t in listed["items"]}
    assert data["statuses"] == ["To Do", "In Progress", "In Review", "Done"]
    assert data["priorities"] == ["Critical", "High", "Medium", "Low"]
    assert {t["id"] for t in data["items"] if t.get("overdue")} == {t["id"] for t in overdue["items"]}
    assert data["overdue"] == overdue["total"] > 0
    dues = [t["due"] for t in data["items"] if "due" in t]
    assert dues == sorted(dues)


async def test_task_list_of_a_search_spans_projects() -> None:
    async with sandbox_client(toolsets="all") as client:
        data = await call(client, "astravue_preview_task_list", query="launch")
        found = await call(client, "astravue_find_tasks", query="launch")
    assert data["title"] == 'Tasks "launch"'
    assert {t["id"] for t in data["items"]} == {t["id"] for t in found["items"]}
    assert len({t["project"] for t in data["items"]}) > 1  # each card names its project


async def test_my_tasks_are_the_logins_open_tasks_grouped_by_due() -> None:
    async with sandbox_client(toolsets="all") as client:
        data = await call(client, "astravue_preview_my_tasks")
        personal = await call(client, "astravue_list_personal_tasks", limit=200)
    assert data["who"] == "Maya Patel" and "maya.patel@northwind.example" in data["basis"]
    items = [t for g in data["groups"] for t in g["items"]]
    assert data["total"] == len(items)
    assert all("Maya Patel" in t["owners"] for t in items)
    assert all(t["status"] != "Done" for t in items)
    assert {t["id"] for t in personal["items"] if t["status"] != "Done" and "parent_id" not in t} <= {
        t["id"] for t in items
    }
    assert any(t.get("project_id") for t in items)  # project tasks too, not only personal ones
    keys = [g["key"] for g in data["groups"]]
    assert keys == sorted(keys, key=["overdue", "today", "week", "later", "none"].index)
    overdue = next(g for g in data["groups"] if g["key"] == "overdue")
    assert overdue["items"] and all(t["overdue"] for t in overdue["items"])
    assert not any(t.get("overdue") for g in data["groups"] if g["key"] != "overdue" for t in g["items"])


def test_my_tasks_find_me_as_the_owner_filters_do_and_say_how() -> None:
    from astravue_mcp.api import models
    from astravue_mcp.tools.directory import Directory
    from astravue_mcp.tools.views import _whose  # here: importing an area module at collection reorders tools

    maya = {"userId": 1, "firstName": "Maya", "lastName": "Patel", "email": "maya@x.example"}
    liam = {"userId": 2, "firstName": "Liam", "lastName": "Moss"}
    personal = [
        models.Task.model_validate({"taskId": i, "owners": owners, "createdBy": maya})
        for i, owners in ((1, [maya]), (2, [maya, liam]))
    ]

    def whose(identity: Identity | None, tasks: list[models.Task]) -> tuple[str | None, str]:
        return _whose(Directory.from_tasks([], tasks, identity))

    who, basis = whose(None, personal)
    assert who == "Maya Patel" and "creator of your personal tasks" in basis
    who, basis = whose(None, [])
    assert who is None and basis.startswith("Only your personal tasks")
    who, basis = whose(Identity(name="Liam Moss"), personal)
    assert who == "Liam Moss" and "by name" in basis
    who, basis = whose(Identity(name="Someone", email="MAYA@x.example"), personal)
    assert who == "Someone" and "maya@x.example (the login's email)" in basis  # named as the login names them


async def test_project_overview_counts_agree_with_the_other_tools() -> None:
    async with sandbox_client(toolsets="all") as client:
        data = await call(client, "astravue_preview_project_overview", space_id=1, project_id=1)
        counts = await call(client, "astravue_get_task_counts", space_id=1, project_id=1)
        summary = await call(client, "astravue_get_project_time_summary", project_id=1)
    assert data["project"]["name"] == "Mobile App v2"
    assert (data["total"], data["open"], data["completed"], data["overdue_count"]) == (
        counts["total"],
        counts["open"],
        counts["completed"],
        counts["overdue"],
    )
    assert sum(t["count"] for t in data["by_status"]) == sum(t["count"] for t in data["by_priority"]) == data["total"]
    assert data["time"]["total_minutes"] == summary["total_minutes"]
    assert sum(p["minutes"] for p in data["time"]["by_person"]) == pytest.approx(summary["total_minutes"], abs=0.5)
    assert len(data["overdue"]) == data["overdue_count"] and len(data["recent"]) == 8


async def test_change_task_writes_through_the_same_path_as_update_task() -> None:
    async with sandbox_client(toolsets="all") as client:
        changed = await call(
            client, "astravue_change_task", task_id=9, space_id=1, project_id=1, status="Done", completion=100
        )
        assert changed == {"id": 9, "status": "Done", "due": changed["due"], "completion": 100}
        again = await call(client, "astravue_get_task", task_id=9, space_id=1, project_id=1)
        assert again["status"] == "Done"
        moved = await call(client, "astravue_change_task", task_id=62, due="2031-05-06")
        assert moved["due"] == "2031-05-06"
        assert "completion: Input should be less than or equal to 100" in await error(
            client, "astravue_change_task", task_id=9, space_id=1, project_id=1, completion=150
        )
        assert "project_id is missing" in await error(client, "astravue_change_task", task_id=9, space_id=1)
        assert "unknown title" in await error(client, "astravue_change_task", task_id=9, title="x")
        args = {"space_id": 1, "project_id": 1}
        refreshed = await call(client, "astravue_refresh_view", view="task-list", arguments=args)
        assert refreshed == await call(client, "astravue_preview_task_list", **args)
        assert next(t for t in refreshed["items"] if t["id"] == 9)["status"] == "Done"
        # The view tool's own checks apply: a missing or unknown argument is refused the same way.
        assert "project_id: Field required" in await error(
            client, "astravue_refresh_view", view="project-overview", arguments={"space_id": 1}
        )
        assert "unknown nope" in await error(client, "astravue_refresh_view", view="my-tasks", arguments={"nope": 1})


@pytest.mark.parametrize(
    ("settings", "present", "absent"),
    [
        ({"read_only": True}, {*VIEW_TOOLS, "astravue_refresh_view"}, {"astravue_change_task"}),
        ({"toolsets": "tasks,insights"}, set(), {*VIEW_TOOLS, *APP_ONLY}),
        ({"toolsets": "views"}, {*VIEW_TOOLS, *APP_ONLY}, set()),
    ],
)
async def test_selection_switches_views_and_their_writes(settings: dict, present: set, absent: set) -> None:
    async with sandbox_client(**settings) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert present <= names and not absent & names
        if "astravue_preview_task_list" in names:
            data = await call(client, "astravue_preview_task_list", space_id=1, project_id=1)
            assert data["editable"] is ("astravue_change_task" in names)
        if settings.get("read_only"):
            with pytest.raises(MCPError, match="switched off"):  # an unknown tool is a protocol error
                await client.call_tool("astravue_change_task", {"task_id": 9, "status": "Done"})


async def test_views_over_the_real_stdio_process() -> None:
    """The same views from `astravue-mcp serve --sandbox` over stdio, to a client that renders MCP Apps."""
    import os
    import sys

    from mcp.client.extension import advertise
    from mcp.client.stdio import StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "astravue_mcp", "serve", "--sandbox"], env=env)
    apps = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
    async with Client(params, extensions=[apps]) as client:
        assert EXTENSION_ID in (client.server_capabilities.extensions or {})
        tools = {t.name: t for t in (await client.list_tools()).tools}
        uri = tools["astravue_preview_project_overview"].meta["ui"]["resourceUri"]
        page = (await client.read_resource(uri)).contents[0]
        assert page.mime_type == APP_MIME_TYPE and "ui/initialize" in page.text
        result = await client.call_tool("astravue_preview_project_overview", {"space_id": 1, "project_id": 1})
    assert not result.is_error and result.structured_content["project"]["name"] == "Mobile App v2"
    assert text_of(result).startswith(f'{MEMBER_TEXT_NOTE}\n"Mobile App v2": 12 task(s)')
    assert "- id=" not in text_of(result)
