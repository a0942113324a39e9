"""Personal-task tools through the in-memory MCP client on the sandbox (seed: Maya's tasks 61-66)."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client import Client

from tests.support import call, day, error, ids, personal_task_61

pytestmark = pytest.mark.anyio


async def test_list_personal_tasks(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_list_personal_tasks", limit=2)
    assert out == {
        "items": [
            personal_task_61(),
            {
                "id": 62,
                "title": "Review Q3 budget draft",
                "status": "To Do",
                "priority": "High",
                "completion": 0,
                "start": day(-6),
                "due": day(-2),
                "overdue": True,
                "owners": ["Maya Patel"],
                "tags": ["finance"],
            },
        ],
        "total": 6,
        "next_page": 2,
    }
    assert ids(await call(mcp_client, "astravue_list_personal_tasks", page=3, limit=2)) == [65, 66]


async def test_list_personal_tasks_filters_and_sort(mcp_client: Client) -> None:
    async def listed(**args: Any) -> list[int]:
        return ids(await call(mcp_client, "astravue_list_personal_tasks", **args))

    assert await listed(status="to do") == [62, 64, 65]
    assert await listed(priority="low") == [63, 65, 66]
    assert await listed(due_to=day(0)) == [62, 63]
    assert await listed(due_from=day(3), due_to=day(10)) == [61, 64]
    # A task without a due date stays last whichever the direction.
    assert await listed(sort="dueDate") == [63, 62, 61, 64, 65, 66]
    assert await listed(sort="-dueDate") == [65, 64, 61, 62, 63, 66]


async def test_list_personal_tasks_errors(mcp_client: Client) -> None:
    assert await error(mcp_client, "astravue_list_personal_tasks", status="Blocked") == (
        "Astravue rejected the request to list tasks. Fix these fields: "
        "status: unknown status 'Blocked'; allowed: To Do, In Progress, In Review, Done."
    )
    assert await error(mcp_client, "astravue_list_personal_tasks", owner_id=1) == (
        "Invalid arguments for astravue_list_personal_tasks: unknown owner_id; "
        "allowed: due_from, due_to, limit, page, priority, sort, status."
    )
    assert await error(mcp_client, "astravue_list_personal_tasks", page=0) == (
        "Invalid arguments for astravue_list_personal_tasks: page: Input should be greater than or equal to 1."
    )


async def test_create_personal_task_then_read_it_back(mcp_client: Client) -> None:
    created = await call(
        mcp_client,
        "astravue_create_personal_task",
        title="Renew passport",
        description="Before the offsite",
        due="2030-03-01",
        priority="critical",
        status="in progress",
        tags=["admin"],
    )
    expected = {
        "id": 79,
        "title": "Renew passport",
        "status": "In Progress",
        "priority": "Critical",
        "completion": 0,
        "due": "2030-03-01",
        "owners": ["Maya Patel"],
        "tags": ["admin"],
        "owner_ids": [1],
        "description": "Before the offsite",
    }
    assert created == {k: v for k, v in expected.items() if k not in ("owner_ids", "description")}
    got = await call(mcp_client, "astravue_get_task", task_id=79)
    assert got.pop("updated").endswith("Z")
    assert got == expected
    assert ids(await call(mcp_client, "astravue_list_personal_tasks", priority="Critical")) == [79]
    # It is personal: not reachable through a project.
    assert (await error(mcp_client, "astravue_get_task", task_id=79, space_id=1, project_id=1)).startswith(
        "Task 79 in project 1 was not found"
    )


async def test_create_personal_subtask(mcp_client: Client) -> None:
    created = await call(mcp_client, "astravue_create_personal_task", title="Hiring slide", parent_task_id=61)
    assert (created["id"], created["parent_id"], created["status"], created["priority"]) == (79, 61, "To Do", "Medium")
    assert ids(await call(mcp_client, "astravue_list_subtasks", task_id=61)) == [77, 78, 79]
    assert ids(await call(mcp_client, "astravue_list_personal_tasks", limit=200)) == [61, 62, 63, 64, 65, 66]


async def test_create_personal_task_validation(mcp_client: Client) -> None:
    prefix = "Invalid arguments for astravue_create_personal_task: "
    assert await error(mcp_client, "astravue_create_personal_task", title="x" * 501) == (
        prefix + "title: String should have at most 500 characters."
    )
    assert await error(mcp_client, "astravue_create_personal_task", title="x", owner_ids=[2]) == (
        prefix + "unknown owner_ids; allowed: description, due, parent_task_id, priority, start, status, tags, title."
    )
    assert await error(mcp_client, "astravue_create_personal_task", title="x", priority="Urgent") == (
        "Astravue rejected the request to create task. Fix these fields: "
        "priority: unknown priority 'Urgent'; allowed: Low, Medium, High, Critical."
    )
    assert await error(mcp_client, "astravue_create_personal_task", title="x", parent_task_id=2) == (
        "Astravue rejected the request to create task. Fix these fields: "
        "parentTaskId: task 2 is not a task of your personal tasks."
    )
    assert ids(await call(mcp_client, "astravue_list_personal_tasks")) == [61, 62, 63, 64, 65, 66]
