"""Project-task tools (and get/update/delete of any task) through the in-memory MCP client on the sandbox."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp.client import Client

from astravue_mcp.tools.insights import NewTask, TaskChange
from astravue_mcp.tools.registry import MEMBER_TEXT_NOTE, load_specs
from astravue_mcp.tools.task_api import task_write
from tests.support import call, day, error, ids, personal_task_61

pytestmark = pytest.mark.anyio

P1 = {"space_id": 1, "project_id": 1}
"""Mobile App v2: seed tasks 1-12 at the top level, 67-69 under task 2, 70-71 under task 4."""


def brief(task: dict[str, Any]) -> dict[str, Any]:
    """What create and update answer: the list view of a task, without the detail-only fields."""
    return {k: v for k, v in task.items() if k not in ("updated", "owner_ids", "description")}


def without_updated(task: dict[str, Any]) -> dict[str, Any]:
    """``updated`` is a wall-clock time; check it is recent-ish, then compare the rest exactly."""
    updated = datetime.fromisoformat(task["updated"].replace("Z", "+00:00"))
    assert datetime.now(UTC) - timedelta(days=10) < updated <= datetime.now(UTC) + timedelta(seconds=1)
    return {k: v for k, v in task.items() if k != "updated"}


TASK_5 = {
    "id": 5,
    "title": "Fix crash on Android 14 photo picker",
    "status": "In Progress",
    "priority": "Critical",
    "completion": 60,
    "start": day(-5),
    "due": day(-2),
    "overdue": True,
    "owners": ["Maya Patel", "Kenji Tanaka"],
    "tags": ["android", "bug"],
    "project_id": 1,
    "space_id": 1,
}


# ---------------------------------------------------------------- list
async def test_list_project_tasks_pages_top_level_tasks(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_list_project_tasks", **P1, limit=5)
    assert ids(out) == [1, 2, 3, 4, 5]
    assert out["total"] == 12 and out["next_page"] == 2
    assert out["items"][0] == {
        "id": 1,
        "title": "Design onboarding flow screens",
        "status": "Done",
        "priority": "High",
        "completion": 100,
        "start": day(-40),
        "due": day(-25),
        "owners": ["Sofia Rossi"],
        "tags": ["ux", "design"],
        "project_id": 1,
        "space_id": 1,
    }
    assert out["items"][4] == TASK_5
    last = await mcp_client.call_tool("astravue_list_project_tasks", P1 | {"limit": 5, "page": 3})
    assert last.structured_content == {"items": last.structured_content["items"], "total": 12}
    assert ids(last.structured_content) == [11, 12]
    assert last.content[0].text.splitlines() == [
        MEMBER_TEXT_NOTE,
        "2 item(s) of 12",
        f'- id=11; title="In-app feedback widget"; status="To Do"; priority=Low; completion=0; due={day(30)}; '
        "project_id=1; space_id=1",
        "  tags=ux",  # indented: each line visibly belongs to its item
        f'- id=12; title="Reduce cold start time below 2 seconds"; status="In Review"; priority=Medium; '
        f"completion=80; start={day(-10)}; due={day(6)}; project_id=1; space_id=1",
        '  owners="Kenji Tanaka"',
        "  tags=performance",
    ]


async def test_list_project_tasks_filters_case_insensitive_labels(mcp_client: Client) -> None:
    async def listed(**filters: Any) -> list[int]:
        return ids(await call(mcp_client, "astravue_list_project_tasks", **P1, **filters))

    assert await listed(status="in progress") == [2, 4, 5]
    assert await listed(priority="CRITICAL") == [4, 5]
    assert await listed(owner_id=4) == [2, 3, 5, 12]
    # Date-only bounds are whole UTC days, both ends inclusive.
    assert await listed(due_from=day(-2), due_to=day(2)) == [3, 5, 9]
    assert await listed(status="In Progress", priority="critical", owner_id=5) == [4]


async def test_list_project_tasks_sorts(mcp_client: Client) -> None:
    async def order(**sort: Any) -> list[int]:
        return ids(await call(mcp_client, "astravue_list_project_tasks", **P1, **sort))

    assert await order(sort="-dueDate") == [11, 6, 7, 4, 12, 2, 10, 3, 9, 5, 8, 1]
    assert await order(sort="-priority") == [4, 5, 1, 2, 9, 10, 3, 7, 8, 12, 6, 11]
    assert (await order(sort="title"))[:3] == [9, 6, 10]


async def test_list_project_tasks_errors(mcp_client: Client) -> None:
    assert (await error(mcp_client, "astravue_list_project_tasks", space_id=1, project_id=3)).startswith(
        "Project 3 in space 1 was not found in org 1."
    )
    assert await error(mcp_client, "astravue_list_project_tasks", **P1, status="Blocked") == (
        "Astravue rejected the request to list project tasks. Fix these fields: "
        "status: unknown status 'Blocked'; allowed: To Do, In Progress, In Review, Done."
    )
    assert await error(mcp_client, "astravue_list_project_tasks", **P1, sort="owner") == (
        "Invalid arguments for astravue_list_project_tasks: sort: "
        "Input should be 'dueDate', 'priority', 'title', 'updateTime', '-dueDate', '-priority', '-title' or "
        "'-updateTime'."
    )
    assert await error(mcp_client, "astravue_list_project_tasks", **P1, limit=201) == (
        "Invalid arguments for astravue_list_project_tasks: limit: Input should be less than or equal to 200."
    )


# ---------------------------------------------------------------- create, get
async def test_create_task_then_read_it_back(mcp_client: Client) -> None:
    created = await call(
        mcp_client,
        "astravue_create_task",
        **P1,
        title="  Tablet layout  ",
        description="Two-pane layout",
        owner_ids=[4, 5],
        start=day(1),
        due=day(8),
        completion=10,
        status="in review",
        priority="high",
        tags=["ux", "tablet"],
    )
    expected = {
        "id": 79,
        "title": "Tablet layout",
        "status": "In Review",
        "priority": "High",
        "completion": 10,
        "start": day(1),
        "due": day(8),
        "owners": ["Kenji Tanaka", "Amara Okafor"],
        "tags": ["ux", "tablet"],
        "project_id": 1,
        "space_id": 1,
        "owner_ids": [4, 5],
        "description": "Two-pane layout",
    }
    assert created == brief(expected)
    assert without_updated(await call(mcp_client, "astravue_get_task", task_id=79, **P1)) == expected
    listed = await call(mcp_client, "astravue_list_project_tasks", **P1, status="In Review")
    assert ids(listed) == [3, 12, 79]


async def test_create_subtask_with_defaults(mcp_client: Client) -> None:
    created = await call(mcp_client, "astravue_create_task", **P1, title="Face unlock on tablets", parent_task_id=2)
    assert created == {
        "id": 79,
        "title": "Face unlock on tablets",
        "status": "To Do",
        "priority": "Medium",
        "completion": 0,
        "project_id": 1,
        "space_id": 1,
        "parent_id": 2,
    }
    subtasks = await call(mcp_client, "astravue_list_subtasks", task_id=2, **P1)
    assert ids(subtasks) == [67, 68, 69, 79]
    # Subtasks are not top-level tasks of the project.
    assert 79 not in ids(await call(mcp_client, "astravue_list_project_tasks", **P1, limit=200))


async def test_friendly_inputs(mcp_client: Client) -> None:
    """Labels in any case; a date-only due is midnight UTC; a time without offset is UTC; offsets convert."""
    created = await call(
        mcp_client,
        "astravue_create_task",
        **P1,
        title="Dates",
        status="DONE",
        priority="low",
        start="2030-01-15T09:30:00",
        due="2030-01-20",
    )
    assert (created["status"], created["priority"]) == ("Done", "Low")
    assert created["start"] == "2030-01-15T09:30:00Z"
    assert created["due"] == "2030-01-20"  # midnight UTC is shown as the bare date
    task = {"task_id": created["id"], **P1}
    updated = await call(mcp_client, "astravue_update_task", **task, due="2030-01-20T17:00:00+01:00")
    assert updated["due"] == "2030-01-20T16:00:00Z"
    assert (await call(mcp_client, "astravue_get_task", **task))["due"] == "2030-01-20T16:00:00Z"


async def test_create_task_validation(mcp_client: Client) -> None:
    prefix = "Invalid arguments for astravue_create_task: "
    assert await error(mcp_client, "astravue_create_task", **P1, title="x", completion=101) == (
        prefix + "completion: Input should be less than or equal to 100."
    )
    assert await error(mcp_client, "astravue_create_task", **P1, title="x" * 501) == (
        prefix + "title: String should have at most 500 characters."
    )
    assert await error(mcp_client, "astravue_create_task", **P1, title="") == (
        prefix + "title: String should have at least 1 character."
    )
    assert await error(mcp_client, "astravue_create_task", **P1, title="x", due="next friday") == (
        prefix + "due: Input should be a valid datetime or date, invalid character in year."
    )
    assert await error(mcp_client, "astravue_create_task", **P1, title="x", assignee=4) == (
        prefix + "unknown assignee; allowed: completion, description, due, owner_ids, parent_task_id, priority, "
        "project_id, space_id, start, status, tags, title."
    )
    assert await error(mcp_client, "astravue_create_task", **P1, title="x", owner_ids=[99]) == (
        "Astravue rejected the request to create project task. Fix these fields: owners: unknown user id(s): 99."
    )
    assert await error(mcp_client, "astravue_create_task", **P1, title="x", parent_task_id=67) == (
        "Astravue rejected the request to create project task. Fix these fields: "
        "parentTaskId: task 67 is itself a subtask; subtasks cannot have subtasks."
    )
    assert ids(await call(mcp_client, "astravue_list_project_tasks", **P1, limit=200)) == list(range(1, 13))


async def test_get_task_project_and_personal(mcp_client: Client) -> None:
    task = await call(mcp_client, "astravue_get_task", task_id=5, **P1)
    assert without_updated(task) == TASK_5 | {
        "owner_ids": [1, 4],
        "description": "Crash when the user picks a photo with the new Android 14 picker. @Kenji Tanaka has a repro.",
    }
    personal = await call(mcp_client, "astravue_get_task", task_id=61)
    assert without_updated(personal) == personal_task_61() | {
        "owner_ids": [1],
        "description": "Board deck for the quarter: revenue, hiring, roadmap and risks.",
    }


async def test_get_task_not_found_and_scope_errors(mcp_client: Client) -> None:
    assert (await error(mcp_client, "astravue_get_task", task_id=999, **P1)).startswith(
        "Task 999 in project 1 was not found in org 1."
    )
    # Task 13 lives in project 2; a project task is not a personal task.
    assert (await error(mcp_client, "astravue_get_task", task_id=13, **P1)).startswith(
        "Task 13 in project 1 was not found"
    )
    # Without scope ids a task is looked for everywhere: personal first, then every project.
    assert (await call(mcp_client, "astravue_get_task", task_id=5))["project_id"] == 1
    assert await error(mcp_client, "astravue_get_task", task_id=999) == (
        "Task 999 was not found in any of the 5 project(s) you can see, nor among your personal tasks. "
        "Check the id with astravue_find_tasks."
    )
    assert await error(mcp_client, "astravue_get_task", task_id=5, space_id=1) == (
        "Invalid arguments: project_id is missing. Give space_id and project_id together for a project task, "
        "or neither to find the task by its id."
    )
    assert await error(mcp_client, "astravue_get_task", task_id=5, project_id=1) == (
        "Invalid arguments: space_id is missing. Give space_id and project_id together for a project task, "
        "or neither to find the task by its id."
    )
    assert await error(mcp_client, "astravue_get_task", task_id=-1) == (
        "Invalid arguments for astravue_get_task: task_id: Input should be greater than or equal to 1."
    )


# ---------------------------------------------------------------- update
async def test_update_project_task_sends_only_given_fields(mcp_client: Client) -> None:
    before = without_updated(await call(mcp_client, "astravue_get_task", task_id=2, **P1))
    updated = await call(
        mcp_client, "astravue_update_task", task_id=2, **P1, status="in review", completion=90, tags=["ios"]
    )
    assert updated == brief(before) | {"status": "In Review", "completion": 90, "tags": ["ios"]}
    after = without_updated(await call(mcp_client, "astravue_get_task", task_id=2, **P1))
    assert after == before | {"status": "In Review", "completion": 90, "tags": ["ios"]}
    # Owners replace the list; the title and everything else stay.
    reassigned = await call(mcp_client, "astravue_update_task", task_id=2, **P1, owner_ids=[5], title="Biometrics")
    assert reassigned == updated | {"title": "Biometrics", "owners": ["Amara Okafor"]}
    assert without_updated(await call(mcp_client, "astravue_get_task", task_id=2, **P1))["owner_ids"] == [5]


async def test_update_personal_task(mcp_client: Client) -> None:
    updated = await call(mcp_client, "astravue_update_task", task_id=64, priority="HIGH", due=day(2))
    assert updated == {
        "id": 64,
        "title": "Book flights for team offsite",
        "status": "To Do",
        "priority": "High",
        "completion": 0,
        "due": day(2),
        "owners": ["Maya Patel"],
        "tags": ["travel"],
    }
    listed = await call(mcp_client, "astravue_list_personal_tasks", priority="High")
    assert ids(listed) == [61, 62, 64]


async def test_update_task_errors(mcp_client: Client) -> None:
    assert await error(mcp_client, "astravue_update_task", task_id=2, **P1) == (
        "Invalid arguments: nothing to change; give at least one field besides the ids."
    )
    assert await error(mcp_client, "astravue_update_task", task_id=2, project_id=1, title="x") == (
        "Invalid arguments: space_id is missing. Give space_id and project_id together for a project task, "
        "or neither to find the task by its id."
    )
    assert (await error(mcp_client, "astravue_update_task", task_id=999, **P1, title="x")).startswith(
        "Task 999 in project 1 was not found in org 1."
    )
    assert await error(mcp_client, "astravue_update_task", task_id=2, **P1, completion=-1) == (
        "Invalid arguments for astravue_update_task: completion: Input should be greater than or equal to 0."
    )
    assert await error(mcp_client, "astravue_update_task", task_id=2, **P1, status="Blocked") == (
        "Astravue rejected the request to update project task. Fix these fields: "
        "status: unknown status 'Blocked'; allowed: To Do, In Progress, In Review, Done."
    )
    assert await error(mcp_client, "astravue_update_task", task_id=2, **P1, start=day(10), due=day(1)) == (
        "Astravue rejected the request to update project task. Fix these fields: dueDate: must not be before startDate."
    )
    unchanged = await call(mcp_client, "astravue_get_task", task_id=2, **P1)
    assert (unchanged["status"], unchanged["due"]) == ("In Progress", day(5))


# ---------------------------------------------------------------- delete
async def test_delete_project_task(mcp_client: Client) -> None:
    assert await call(mcp_client, "astravue_delete_task", task_id=2, **P1) == {"deleted": "task 2 in project 1"}
    assert (await error(mcp_client, "astravue_get_task", task_id=2, **P1)).startswith(
        "Task 2 in project 1 was not found"
    )
    assert ids(await call(mcp_client, "astravue_list_project_tasks", **P1, limit=200)) == [1] + list(range(3, 13))


async def test_delete_personal_task(mcp_client: Client) -> None:
    assert await call(mcp_client, "astravue_delete_task", task_id=65) == {"deleted": "task 65 (personal)"}
    assert ids(await call(mcp_client, "astravue_list_personal_tasks")) == [61, 62, 63, 64, 66]


async def test_delete_task_errors(mcp_client: Client) -> None:
    assert (await error(mcp_client, "astravue_delete_task", task_id=999)).startswith("Task 999 was not found in any")
    assert (await error(mcp_client, "astravue_delete_task", task_id=999, **P1)).startswith(
        "Task 999 in project 1 was not found"
    )
    assert await error(mcp_client, "astravue_delete_task", task_id=2, space_id=1) == (
        "Invalid arguments: project_id is missing. Give space_id and project_id together for a project task, "
        "or neither to find the task by its id."
    )
    assert (await call(mcp_client, "astravue_get_task", task_id=2, **P1))["id"] == 2


def test_every_task_write_uses_the_one_task_field_set() -> None:
    """Task fields are named once, by task_write's keywords: each tool that writes a task passes them
    by name, so a renamed parameter fails here (and at its call) instead of silently sending nothing."""
    fields = set(inspect.signature(task_write).parameters)
    specs = load_specs()
    scope = {"ctx", "space_id", "project_id", "task_id"}
    for name in ("astravue_create_task", "astravue_update_task", "astravue_create_personal_task"):
        given = set(inspect.signature(specs[name].fn).parameters) - scope
        assert given and given <= fields, (name, given - fields)
    assert set(NewTask.model_fields) <= fields
    assert set(TaskChange.model_fields) - scope <= fields


async def test_task_text_cannot_forge_a_record_or_an_instruction(mcp_client: Client) -> None:
    """Pinned bug: the title below showed up as a fourth '- id=' row and a free-standing instruction."""
    from tests.support import INJECTION, assert_member_text_is_data

    await call(mcp_client, "astravue_create_task", **P1, title=INJECTION, description=INJECTION, tags=[INJECTION[:40]])
    result = await mcp_client.call_tool("astravue_list_project_tasks", {**P1, "limit": 200})
    assert_member_text_is_data(result.content[0].text, result.structured_content["items"])
    assert any(t["title"] == INJECTION for t in result.structured_content["items"])  # the data itself is intact
