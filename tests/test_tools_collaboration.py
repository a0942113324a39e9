"""Subtask, checklist and comment tools through the in-memory MCP client on the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mcp.client import Client

from astravue_mcp.tools.registry import MEMBER_TEXT_NOTE
from tests.support import call, day, error

pytestmark = pytest.mark.anyio

P1 = {"space_id": 1, "project_id": 1}


def hours_ago(value: str, hours: float) -> bool:
    """Seed times are relative to when the sandbox started: allow a minute of test run time."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    expected = datetime.now(UTC) - timedelta(hours=hours)
    return abs((when - expected).total_seconds()) < 60


async def test_list_subtasks_of_project_task(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_list_subtasks", task_id=2, **P1)
    assert out == {
        "items": [
            {
                "id": 67,
                "title": "Face ID on iOS",
                "status": "Done",
                "priority": "High",
                "completion": 100,
                "start": day(-14),
                "due": day(-2),
                "owners": ["Kenji Tanaka"],
                "project_id": 1,
                "space_id": 1,
                "parent_id": 2,
            },
            {
                "id": 68,
                "title": "Fingerprint unlock on Android",
                "status": "In Progress",
                "priority": "High",
                "completion": 50,
                "start": day(-10),
                "due": day(4),
                "owners": ["Kenji Tanaka"],
                "project_id": 1,
                "space_id": 1,
                "parent_id": 2,
            },
            {
                "id": 69,
                "title": "Fallback to device PIN",
                "status": "To Do",
                "priority": "Medium",
                "completion": 0,
                "start": day(1),
                "due": day(5),
                "owners": ["Amara Okafor"],
                "project_id": 1,
                "space_id": 1,
                "parent_id": 2,
            },
        ],
        "total": 3,
    }
    paged = await call(mcp_client, "astravue_list_subtasks", task_id=2, **P1, limit=2)
    assert ([t["id"] for t in paged["items"]], paged["total"], paged["next_page"]) == ([67, 68], 3, 2)


async def test_list_subtasks_of_personal_task(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_list_subtasks", task_id=61)
    assert out == {
        "items": [
            {
                "id": 77,
                "title": "Collect KPI numbers",
                "status": "Done",
                "priority": "Medium",
                "completion": 100,
                "start": day(-3),
                "due": day(1),
                "owners": ["Maya Patel"],
                "parent_id": 61,
            },
            {
                "id": 78,
                "title": "Draft slides",
                "status": "In Progress",
                "priority": "High",
                "completion": 20,
                "start": day(-1),
                "due": day(3),
                "owners": ["Maya Patel"],
                "parent_id": 61,
            },
        ],
        "total": 2,
    }
    assert await call(mcp_client, "astravue_list_subtasks", task_id=62) == {"items": [], "total": 0}


async def test_list_subtasks_errors(mcp_client: Client) -> None:
    assert (await error(mcp_client, "astravue_list_subtasks", task_id=999)).startswith("Task 999 was not found in any")
    assert (await error(mcp_client, "astravue_list_subtasks", task_id=15, **P1)).startswith(
        "Task 15 in project 1 was not found"
    )
    assert await error(mcp_client, "astravue_list_subtasks", task_id=2, space_id=1) == (
        "Invalid arguments: project_id is missing. Give space_id and project_id together for a project task, "
        "or neither to find the task by its id."
    )
    assert await error(mcp_client, "astravue_list_subtasks", task_id=0) == (
        "Invalid arguments for astravue_list_subtasks: task_id: Input should be greater than or equal to 1."
    )


async def test_get_task_checklists(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("astravue_get_task_checklists", {"task_id": 2})
    assert result.structured_content == {
        "items": [
            {"id": 4, "title": "Threat model reviewed", "done": True},
            {"id": 5, "title": "Keychain storage", "done": False},
            {"id": 6, "title": "QA sign-off", "done": False},
        ],
        "total": 3,
        "done": 1,
    }
    assert result.content[0].text.splitlines() == [
        MEMBER_TEXT_NOTE,
        "1 done; 3 item(s) of 3",
        '- id=4; title="Threat model reviewed"; done=yes',
        '- id=5; title="Keychain storage"; done=no',
        '- id=6; title="QA sign-off"; done=no',
    ]
    # The done count covers the whole checklist, not just the page shown.
    page2 = await call(mcp_client, "astravue_get_task_checklists", task_id=2, limit=2, page=2)
    assert page2 == {"items": [{"id": 6, "title": "QA sign-off", "done": False}], "total": 3, "done": 1}
    assert await call(mcp_client, "astravue_get_task_checklists", task_id=3) == {"items": [], "total": 0, "done": 0}


async def test_get_subtask_checklists(mcp_client: Client) -> None:
    assert await call(mcp_client, "astravue_get_task_checklists", task_id=2, subtask_id=67) == {
        "items": [
            {"id": 18, "title": "Enrol test device", "done": True},
            {"id": 19, "title": "Handle lockout", "done": True},
        ],
        "total": 2,
        "done": 2,
    }
    assert await error(mcp_client, "astravue_get_task_checklists", task_id=2, subtask_id=73) == (
        "Subtask 73 of task 2 was not found in org 1. Check the id with a list tool."
    )
    assert (await error(mcp_client, "astravue_get_task_checklists", task_id=999)).startswith(
        "Task 999 was not found in org 1."
    )


async def test_get_task_comments(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_get_task_comments", task_id=5)
    assert hours_ago(out["items"][0].pop("date"), 30) and hours_ago(out["items"][1].pop("date"), 6)
    assert out == {
        "items": [
            {
                "id": 1,
                "comment": "Reproduced on Pixel 8 with Android 14 QPR2. The picker returns a null URI.",
                "author": "Kenji Tanaka",
            },
            {
                "id": 2,
                "comment": "@Kenji Tanaka can you check whether the fix also covers tablets?",
                "author": "Maya Patel",
            },
        ],
        "total": 2,
    }
    # Personal tasks have comments too, on the same endpoint.
    personal = await call(mcp_client, "astravue_get_task_comments", task_id=61)
    assert [(c["id"], c["author"]) for c in personal["items"]] == [(12, "Liam O'Connor")]
    assert await call(mcp_client, "astravue_get_task_comments", task_id=1) == {"items": [], "total": 0}


async def test_get_task_comments_errors(mcp_client: Client) -> None:
    assert (await error(mcp_client, "astravue_get_task_comments", task_id=999)).startswith(
        "Task 999 was not found in org 1."
    )
    assert await error(mcp_client, "astravue_get_task_comments", task_id=5, space_id=1) == (
        "Invalid arguments for astravue_get_task_comments: unknown space_id; allowed: limit, page, task_id."
    )
