"""Resources, completion and prompts through the in-memory MCP client on the sandbox.

Each resource must read exactly like the text mirror of the tool it stands for.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from astravue_mcp.tools.registry import MEMBER_TEXT_NOTE, load_specs
from tests.support import sandbox_client

pytestmark = pytest.mark.anyio

PROJECTS = "astravue://spaces/{space_id}/projects"
PROJECT = "astravue://spaces/{space_id}/projects/{project_id}"
STATUS_REPORT = PromptReference(type="ref/prompt", name="project_status_report")


async def read(client: Client, uri: str) -> str:
    result = await client.read_resource(uri)
    assert [(str(c.uri), c.mime_type) for c in result.contents] == [(uri, "text/plain")]
    return result.contents[0].text


async def tool_text(client: Client, name: str, **args: Any) -> str:
    result = await client.call_tool(name, args)
    assert not result.is_error, result.content[0].text
    return result.content[0].text


async def read_error(client: Client, uri: str) -> str:
    with pytest.raises(MCPError) as caught:
        await client.read_resource(uri)
    return str(caught.value)


# ---------------------------------------------------------------- listing
async def test_static_resources_are_listed(mcp_client: Client) -> None:
    # The ui:// pages of the interactive views are listed too (tests/test_views.py checks them).
    listed = [r for r in (await mcp_client.list_resources()).resources if str(r.uri).startswith("astravue:")]
    assert [(str(r.uri), r.name, r.title, r.mime_type) for r in listed] == [
        ("astravue://me", "me", "Me", "text/plain"),
        ("astravue://people", "people", "People", "text/plain"),
        ("astravue://labels", "labels", "Status and priority labels", "text/plain"),
        ("astravue://spaces", "spaces", "Spaces", "text/plain"),
        ("astravue://timers/active", "active_timers", "Active timers", "text/plain"),
        ("astravue://notifications/unread", "unread_notifications", "Unread notifications", "text/plain"),
    ]
    assert all(r.description for r in listed)


async def test_resource_templates_are_listed(mcp_client: Client) -> None:
    listed = (await mcp_client.list_resource_templates()).resource_templates
    assert [(t.uri_template, t.name, t.title) for t in listed] == [
        (PROJECTS, "space_projects", "Projects in a space"),
        (PROJECT, "project", "Project overview"),
        ("astravue://tasks/{task_id}", "task", "Task"),
    ]
    assert all(t.description for t in listed)


async def test_read_only_keeps_every_resource() -> None:
    async with sandbox_client(read_only=True) as client:
        assert sum(str(r.uri).startswith("astravue:") for r in (await client.list_resources()).resources) == 6
        assert len((await client.list_resource_templates()).resource_templates) == 3
        assert (await read(client, "astravue://spaces")).startswith(f"{MEMBER_TEXT_NOTE}\n3 item(s) of 3")


# ---------------------------------------------------------------- reading
async def test_spaces_resource_reads_like_the_tool(mcp_client: Client) -> None:
    text = await read(mcp_client, "astravue://spaces")
    assert text == await tool_text(mcp_client, "astravue_list_spaces", limit=200)
    assert text.splitlines()[2] == '- id=1; name=Product; description="Product development: apps and platform."'


async def test_projects_of_a_space(mcp_client: Client) -> None:
    text = await read(mcp_client, "astravue://spaces/1/projects")
    assert text == await tool_text(mcp_client, "astravue_list_projects", space_id=1, limit=200)
    assert text.startswith(f'{MEMBER_TEXT_NOTE}\n2 item(s) of 2\n- id=1; space_id=1; name="Mobile App v2";')


async def test_project_overview_has_task_counts(mcp_client: Client) -> None:
    text = await read(mcp_client, "astravue://spaces/1/projects/1")
    project = await tool_text(mcp_client, "astravue_get_project", space_id=1, project_id=1)
    counts = await tool_text(mcp_client, "astravue_get_task_counts", space_id=1, project_id=1)
    assert text == f"{project}\ntasks: {counts}"
    assert text.endswith("tasks: total=12; open=10; completed=2; overdue=2")


async def test_project_task_resource_finds_the_project(mcp_client: Client) -> None:
    text = await read(mcp_client, "astravue://tasks/22")
    found = await mcp_client.call_tool("astravue_find_tasks", {"query": "pen-test"})
    scope = {k: found.structured_content["items"][0][k] for k in ("space_id", "project_id")}
    assert text == await tool_text(mcp_client, "astravue_get_task", task_id=22, **scope)
    assert text.startswith(f'{MEMBER_TEXT_NOTE}\nid=22; title="Security pen-test remediation";')


async def test_personal_task_resource(mcp_client: Client) -> None:
    personal = await mcp_client.call_tool("astravue_list_personal_tasks", {"limit": 1})
    task_id = personal.structured_content["items"][0]["id"]
    text = await read(mcp_client, f"astravue://tasks/{task_id}")
    assert text == await tool_text(mcp_client, "astravue_get_task", task_id=task_id)


async def test_task_resource_errors_keep_their_message(mcp_client: Client) -> None:
    assert await read_error(mcp_client, "astravue://tasks/999") == (
        "Task 999 was not found in any of the 5 project(s) you can see, nor among your personal tasks. "
        "Check the id with astravue_find_tasks."
    )
    for odd in ("abc", "²", "1_0", "0", "9" * 5000):
        assert await read_error(mcp_client, f"astravue://tasks/{odd}") == (
            f"task_id must be a positive integer of at most 18 digits (got {odd[:40]!r})."
        )
    assert await read_error(mcp_client, "astravue://spaces/9/projects") == (
        "Space 9 was not found in org 1. Check the id with a list tool."
    )


async def test_active_timers_and_unread_notifications(mcp_client: Client) -> None:
    timers = await read(mcp_client, "astravue://timers/active")
    assert timers == await tool_text(mcp_client, "astravue_get_active_timers")
    unread = await read(mcp_client, "astravue://notifications/unread")
    assert unread == await tool_text(mcp_client, "astravue_list_notifications", unread_only=True, limit=200)
    count = len(unread.splitlines()) - 2
    assert unread.splitlines()[:2] == [MEMBER_TEXT_NOTE, f"{count} item(s) of {count}"]


# ---------------------------------------------------------------- completion
async def complete(client: Client, ref: Any, name: str, value: str, **known: str) -> list[str]:
    result = await client.complete(ref, {"name": name, "value": value}, known or None)
    assert result.completion.total in (None, len(result.completion.values))
    return result.completion.values


async def test_complete_space_ids_by_name_or_id(mcp_client: Client) -> None:
    ref = ResourceTemplateReference(type="ref/resource", uri=PROJECTS)
    assert await complete(mcp_client, ref, "space_id", "") == ["1", "2", "3"]
    assert await complete(mcp_client, ref, "space_id", "mar") == ["2"]
    assert await complete(mcp_client, ref, "space_id", "3") == ["3"]
    assert await complete(mcp_client, ref, "space_id", "nothing like it") == []


async def test_complete_project_ids_within_the_chosen_space(mcp_client: Client) -> None:
    ref = ResourceTemplateReference(type="ref/resource", uri=PROJECT)
    assert await complete(mcp_client, ref, "project_id", "", space_id="1") == ["1", "2"]
    assert await complete(mcp_client, ref, "project_id", "web", space_id="2") == ["4"]
    assert await complete(mcp_client, ref, "project_id", "web") == ["2", "4"]  # no space chosen: every space


async def test_complete_prompt_arguments(mcp_client: Client) -> None:
    assert await complete(mcp_client, STATUS_REPORT, "project_id", "office") == ["5"]
    assert await complete(mcp_client, STATUS_REPORT, "space_id", "ops") == []
    assert await complete(mcp_client, STATUS_REPORT, "space_id", "oper") == ["3"]
    task_ref = PromptReference(type="ref/prompt", name="task_breakdown")
    # No task seen yet in this session, and completion never starts a scan.
    assert await complete(mcp_client, task_ref, "task_id", "1") == []


# ---------------------------------------------------------------- prompts
PROMPT_ARGS = {
    "daily_standup": [],
    "project_status_report": [("space_id", False), ("project_id", False)],
    "weekly_team_digest": [("space_id", False)],
    "task_breakdown": [("task_id", True)],
    "overdue_action_plan": [("mine", False)],
    "sprint_planner": [("sprint_goal", True), ("space_id", False)],
    "risk_assessment": [("space_id", False), ("project_id", False)],
    "time_tracking_report": [("start", False), ("end", False)],
    "meeting_agenda_generator": [("space_id", False), ("project_id", False), ("minutes", False)],
    "retrospective_summary": [("space_id", False), ("project_id", False)],
    "capacity_planning": [("days", False)],
    "project_kickoff": [("space_id", True), ("project_name", True)],
    "blockers_escalation": [("space_id", False)],
    "milestone_review": [("space_id", True), ("project_id", True)],
    "team_workload_balancer": [("space_id", False)],
}
"""The fifteen workflows of Astravue's hosted server, in the order they are listed."""


async def test_prompts_are_listed_with_their_arguments(mcp_client: Client) -> None:
    prompts = (await mcp_client.list_prompts()).prompts
    assert {p.name: [(a.name, a.required) for a in p.arguments or []] for p in prompts} == PROMPT_ARGS
    assert all(p.title and p.description for p in prompts)
    assert all(a.description for p in prompts for a in p.arguments or [])


async def prompt_text(client: Client, name: str, **args: str) -> str:
    result = await client.get_prompt(name, args or None)
    assert len(result.messages) == 1 and result.messages[0].role == "user"
    return result.messages[0].content.text


async def test_prompts_use_their_arguments(mcp_client: Client) -> None:
    text = await prompt_text(mcp_client, "sprint_planner", sprint_goal="Ship offline mode")
    assert text.startswith("Plan a two-week sprint with this goal: Ship offline mode\n")
    one = await prompt_text(mcp_client, "project_status_report", space_id="1", project_id="2")
    assert one.startswith("Write a status report for project 2 in space 1.")
    assert "with space_id=1, project_id=2" in one
    space = await prompt_text(mcp_client, "project_status_report", space_id="3")
    assert space.startswith("Write a status report for space 3.") and "with space_id=3" in space
    whole = await prompt_text(mcp_client, "project_status_report")
    assert whole.startswith("Write a status report for the whole workspace.")
    week = await prompt_text(mcp_client, "time_tracking_report", start="2026-01-05", end="2026-01-11")
    assert week.startswith("Report tracked time from 2026-01-05 to 2026-01-11.")
    assert (await prompt_text(mcp_client, "time_tracking_report")).startswith(
        "Report tracked time from 7 days ago to today."
    )
    assert "astravue_get_task (task_id=42;" in await prompt_text(mcp_client, "task_breakdown", task_id="42")


async def test_prompt_argument_mistakes_are_invalid_params_naming_the_argument(mcp_client: Client) -> None:
    with pytest.raises(MCPError) as missing:
        await mcp_client.get_prompt("sprint_planner", None)
    assert (missing.value.error.code, missing.value.error.message) == (
        -32602,
        "Prompt sprint_planner: missing sprint_goal.",
    )
    with pytest.raises(MCPError) as unknown:
        await mcp_client.get_prompt("task_breakdown", {"task_id": "1", "depth": "3"})
    assert unknown.value.error.message == "Prompt task_breakdown: unknown depth."
    with pytest.raises(MCPError) as nothing:
        await mcp_client.get_prompt("weekly_digest", None)
    assert nothing.value.error.message == "Unknown prompt 'weekly_digest'."


async def test_prompts_name_only_existing_tools(mcp_client: Client) -> None:
    every_tool = set(load_specs())
    samples = {"sprint_goal": "x", "task_id": "1", "space_id": "1", "project_id": "1", "mine": "yes"}
    samples |= {"minutes": "30", "days": "14", "project_name": "Launch"}
    for name, args in PROMPT_ARGS.items():
        text = await prompt_text(mcp_client, name, **{a: samples.get(a, "2026-01-01") for a, _ in args})
        named = set(re.findall(r"astravue_\w+", text))
        assert named, name
        assert named <= every_tool, f"{name} names unknown tools: {named - every_tool}"
        assert len(text) < 700, f"{name} is {len(text)} characters"
