"""Composite insight tools (search, overdue, scheduled, counts, bulk) through the in-memory client on the sandbox.

Expected answers are computed independently: which tasks qualify from the sandbox's own rows
(``app.state.sandbox``), and what each task looks like from the plain list tool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp_types import ElicitResult
from starlette.applications import Starlette

from astravue_mcp.config import SANDBOX_URL, load_settings
from astravue_mcp.sandbox import create_app
from astravue_mcp.sandbox.faults import FaultSpec
from astravue_mcp.sandbox.records import TaskRow
from astravue_mcp.sandbox.store import Store
from astravue_mcp.server import build_server
from astravue_mcp.tools.registry import MEMBER_TEXT_NOTE
from tests.support import call, error

pytestmark = pytest.mark.anyio

P1 = {"space_id": 1, "project_id": 1}
HINT = "More matched than the limit: narrow with space_id or filters, or raise limit (max 200)."


@dataclass
class Env:
    client: Client
    app: Starlette
    transport: Counting

    @property
    def store(self) -> Store:
        return self.app.state.sandbox

    def fault(self, **spec: Any) -> None:
        self.app.state.faults.add(FaultSpec(**spec))

    def requests(self, operation: str) -> int:
        return self.app.state.stats.operations[operation]

    def project_rows(self, keep: Callable[[TaskRow], bool] = lambda t: True) -> list[TaskRow]:
        """Top-level project tasks (what the project-task list endpoint shows) that ``keep`` selects."""
        rows = [t for t in self.store.tasks.values() if t.project_id is not None and t.parent_id is None]
        return [t for t in rows if keep(t)]

    def visible_rows(self, keep: Callable[[TaskRow], bool] = lambda t: True) -> list[TaskRow]:
        """What a cross-project answer covers: the top-level project tasks and your personal tasks."""
        personal = [
            t
            for t in self.store.tasks.values()
            if t.project_id is None and t.parent_id is None and t.created_by == self.store.current_user_id
        ]
        return self.project_rows(keep) + [t for t in personal if keep(t)]

    def is_overdue(self, t: TaskRow, now: datetime) -> bool:
        return t.due is not None and t.due < now and not self.store.is_done(t)


class Counting(httpx2.ASGITransport):
    """Counts requests in flight, to check the fan-out's concurrency bound."""

    def __init__(self, app: Starlette) -> None:
        super().__init__(app=app)
        self.in_flight = self.peak = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().handle_async_request(request)
        finally:
            self.in_flight -= 1


@asynccontextmanager
async def sandbox(elicit: Any = None, latency_ms: float = 0, **settings: Any) -> AsyncIterator[Env]:
    app = create_app(latency_ms=latency_ms)
    transport = Counting(app)
    server = build_server(load_settings({}, toolsets="all", **settings).sandboxed(SANDBOX_URL), transport=transport)
    # Legacy mode: the handshake-era protocol carries server-to-client requests (the confirmation form).
    mode = "legacy" if elicit else "auto"
    async with Client(server, elicitation_callback=elicit, mode=mode) as client:
        yield Env(client, app, transport)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with sandbox() as e:
        yield e


async def listed(client: Client) -> dict[int, dict[str, Any]]:
    """Every top-level project task as the plain list tool shows it, and every personal task marked so, by id."""
    personal = await call(client, "astravue_list_personal_tasks", limit=200)
    out: dict[int, dict[str, Any]] = {t["id"]: t | {"personal": True} for t in personal["items"]}
    for space in (await call(client, "astravue_list_spaces", limit=200))["items"]:
        for project in (await call(client, "astravue_list_projects", space_id=space["id"], limit=200))["items"]:
            page = await call(
                client, "astravue_list_project_tasks", space_id=space["id"], project_id=project["id"], limit=200
            )
            out.update({t["id"]: t for t in page["items"]})
    return out


def in_order(rows: list[TaskRow]) -> list[int]:
    return [t.task_id for t in sorted(rows, key=lambda t: (t.space_id or 0, t.project_id or 0, t.task_id))]


def by_due(rows: list[TaskRow]) -> list[TaskRow]:
    return sorted(rows, key=lambda t: (t.due, t.task_id))


def text_of(t: TaskRow) -> str:
    return " ".join([t.title, t.description or "", *t.tags]).lower()


def today() -> datetime:
    return datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)


# ---------------------------------------------------------------- find_tasks
async def test_find_tasks_by_keyword_across_projects(env: Env) -> None:
    expected = in_order(env.project_rows(lambda t: "security" in text_of(t)))
    assert len(expected) > 3  # the keyword must hit tags, titles and several projects to mean something
    tasks = await listed(env.client)
    out = await call(env.client, "astravue_find_tasks", query="SeCuRiTy")
    assert out == {"items": [tasks[i] for i in expected], "total": len(expected), "projects": 5}


async def test_find_tasks_matches_descriptions(env: Env) -> None:
    expected = in_order(env.project_rows(lambda t: "face id" in (t.description or "").lower()))
    out = await call(env.client, "astravue_find_tasks", query="Face ID")
    assert [t["id"] for t in out["items"]] == expected == [2]


async def test_find_tasks_filters_and_space(env: Env) -> None:
    high = env.store.priority_by_label("High")
    expected = in_order(env.project_rows(lambda t: t.space_id == 1 and t.priority_id == high and 4 in t.owners))
    tasks = await listed(env.client)
    out = await call(env.client, "astravue_find_tasks", priority="high", owner_id=4, space_id=1)
    assert out == {"items": [tasks[i] for i in expected], "total": len(expected), "projects": 2}


async def test_find_tasks_status_and_due_range(env: Env) -> None:
    start, end = today() - timedelta(days=3), today() + timedelta(days=3)
    in_progress = env.store.status_by_label(1, "In Progress")
    names = {sid for sid, s in env.store.statuses.items() if s.status_name == "In Progress"}
    assert in_progress in names
    expected = in_order(
        env.visible_rows(lambda t: t.status_id in names and t.due is not None and start <= t.due < end + timedelta(1))
    )
    out = await call(
        env.client,
        "astravue_find_tasks",
        status="In Progress",
        due_from=start.date().isoformat(),
        due_to=end.date().isoformat(),
    )
    assert [t["id"] for t in out["items"]] == expected and out["total"] == len(expected) > 0


async def test_find_tasks_stops_at_the_cap_and_says_so(env: Env) -> None:
    tasks = await listed(env.client)
    out = await call(env.client, "astravue_find_tasks", limit=3)
    assert len(out["items"]) == 3 and all(t == tasks[t["id"]] for t in out["items"])
    assert out["truncated"] is True and out["hint"] == HINT
    assert "total" not in out  # the search stopped early, so the total is unknown
    result = await env.client.call_tool("astravue_find_tasks", {"limit": 3})
    assert result.content[0].text.splitlines()[:3] == [
        MEMBER_TEXT_NOTE,
        "3 of more than 3 task(s) in 5 project(s)",
        HINT,
    ]


async def test_find_tasks_exact_total_when_the_cap_is_not_reached(env: Env) -> None:
    expected = in_order(env.project_rows(lambda t: "api" in text_of(t)))
    out = await call(env.client, "astravue_find_tasks", query="api", limit=len(expected))
    assert [t["id"] for t in out["items"]] == expected and out["total"] == len(expected)
    assert "truncated" not in out


async def test_find_tasks_reports_progress_per_project(env: Env) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    result = await env.client.call_tool("astravue_find_tasks", {"query": "login"}, progress_callback=progress)
    assert not result.is_error
    assert [(d, t) for d, t, _ in seen] == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]
    names = {p.name for p in env.store.projects.values()} | {"personal tasks"}
    assert {m.split(":")[0] for _, _, m in seen if m} == names


async def test_find_tasks_reports_a_failing_project_and_keeps_the_rest() -> None:
    async with sandbox(max_concurrency=1) as env:
        env.fault(status=403, operations=["list_project_tasks"])  # the first project asked (sequential: project 1)
        out = await call(env.client, "astravue_find_tasks", query="security")
        expected = in_order(env.project_rows(lambda t: "security" in text_of(t) and t.project_id != 1))
        assert [t["id"] for t in out["items"]] == expected
        assert out["skipped"] == [
            "project 1 (space 1): Your Astravue role does not allow you to list project tasks in org 1. "
            "Astravue said: Simulated fault (HTTP 403)"
        ]


@pytest.mark.parametrize("limit", [1, 3])
async def test_fan_out_keeps_to_max_concurrency(limit: int) -> None:
    async with sandbox(max_concurrency=limit, latency_ms=20) as env:
        await call(env.client, "astravue_get_task_counts")
        assert env.transport.peak == limit  # 5 projects (and 3 spaces) queue behind the limit
        await call(env.client, "astravue_bulk_delete_tasks", **P1, task_ids=[1, 2, 3, 4, 5, 6])
        assert env.transport.peak == limit


async def test_find_tasks_rejects_bad_arguments(env: Env) -> None:
    assert "limit" in await error(env.client, "astravue_find_tasks", limit=201)
    assert "query" in await error(env.client, "astravue_find_tasks", query="")
    assert await error(env.client, "astravue_find_tasks", space_id=99) == (
        "Space 99 was not found in org 1. Check the id with a list tool."
    )


# ---------------------------------------------------------------- overdue and scheduled
async def test_list_overdue_tasks_most_overdue_first(env: Env) -> None:
    now = datetime.now(UTC)
    late = by_due(env.visible_rows(lambda t: env.is_overdue(t, now)))
    assert any(t.project_id is None for t in late)  # a personal task is overdue too
    tasks = await listed(env.client)
    out = await call(env.client, "astravue_list_overdue_tasks")
    assert out == {
        "items": [tasks[t.task_id] | {"days_overdue": (now - t.due).days} for t in late],
        "total": len(late),
        "projects": 5,
    }
    assert out["items"][0]["days_overdue"] >= out["items"][-1]["days_overdue"]


async def test_list_overdue_tasks_in_one_project_by_id_alone(env: Env) -> None:
    now = datetime.now(UTC)
    late = [t.task_id for t in by_due(env.project_rows(lambda t: t.project_id == 2 and env.is_overdue(t, now)))]
    out = await call(env.client, "astravue_list_overdue_tasks", project_id=2, limit=1)
    assert [t["id"] for t in out["items"]] == late[:1]
    assert out["total"] == len(late) == 2 and out["truncated"] is True and out["projects"] == 1


async def test_list_overdue_tasks_unknown_project(env: Env) -> None:
    assert await error(env.client, "astravue_list_overdue_tasks", project_id=99) == (
        "Project 99 was not found in any space you can see. Check the id with astravue_list_projects."
    )


async def test_list_scheduled_tasks_default_window(env: Env) -> None:
    start, end = today(), today() + timedelta(days=8)
    due = by_due(env.visible_rows(lambda t: t.due is not None and start <= t.due < end and not env.store.is_done(t)))
    tasks = await listed(env.client)
    out = await call(env.client, "astravue_list_scheduled_tasks", limit=200)
    assert out == {"items": [tasks[t.task_id] for t in due], "total": len(due), "projects": 5}


async def test_list_scheduled_tasks_custom_window_in_a_space(env: Env) -> None:
    start, end = today() + timedelta(days=10), today() + timedelta(days=30)
    due = by_due(
        env.project_rows(
            lambda t: t.space_id == 2 and t.due is not None and start <= t.due <= end and not env.store.is_done(t)
        )
    )
    out = await call(
        env.client,
        "astravue_list_scheduled_tasks",
        due_from=start.date().isoformat(),
        due_to=end.date().isoformat(),
        space_id=2,
    )
    assert [t["id"] for t in out["items"]] == [t.task_id for t in due] and out["total"] == len(due) > 0


# ---------------------------------------------------------------- counts
def counts(env: Env, rows: list[TaskRow]) -> dict[str, int]:
    now = datetime.now(UTC)
    done = sum(env.store.is_done(t) for t in rows)
    late = sum(env.is_overdue(t, now) for t in rows)
    return {"total": len(rows), "open": len(rows) - done, "completed": done, "overdue": late}


async def test_get_task_counts_overall_with_breakdown(env: Env) -> None:
    out = await call(env.client, "astravue_get_task_counts")
    assert out == counts(env, env.visible_rows()) | {
        "projects": [
            {"project_id": p.project_id, "space_id": p.space_id, "name": p.name}
            | counts(env, env.project_rows(lambda t, p=p: t.project_id == p.project_id))
            for p in env.store.projects.values()
        ],
        "personal": counts(env, [t for t in env.visible_rows() if t.project_id is None]),
    }


async def test_get_task_counts_one_project(env: Env) -> None:
    out = await call(env.client, "astravue_get_task_counts", **P1)
    assert out == counts(env, env.project_rows(lambda t: t.project_id == 1))
    assert out["total"] == 12


async def test_get_task_counts_unknown_project(env: Env) -> None:
    assert await error(env.client, "astravue_get_task_counts", space_id=2, project_id=1) == (
        "Project 1 in space 2 was not found in org 1. Check the id with a list tool."
    )


# ---------------------------------------------------------------- bulk create
async def test_bulk_create_tasks(env: Env) -> None:
    seen: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(done)

    first_new = max(env.store.tasks) + 1
    result = await env.client.call_tool(
        "astravue_bulk_create_tasks",
        {
            **P1,
            "tasks": [
                {"title": "Write release notes", "priority": "High", "owner_ids": [4], "due": "2030-01-15"},
                {"title": "Update store screenshots", "description": "All five locales"},
            ],
        },
        progress_callback=progress,
    )
    assert not result.is_error and sorted(seen) == seen == [1, 2]
    out = result.structured_content
    assert out["succeeded"] == 2 and out["failed"] == 0
    new_ids = sorted(r["id"] for r in out["results"])
    assert new_ids == [first_new, first_new + 1]
    assert [r["index"] for r in out["results"]] == [0, 1] and all(r["ok"] for r in out["results"])
    created = {t["title"]: t for t in (await listed(env.client)).values() if t["id"] in new_ids}
    assert created["Write release notes"] | {"id": 0} == {
        "id": 0,
        "title": "Write release notes",
        "status": "To Do",
        "priority": "High",
        "completion": 0,
        "due": "2030-01-15",
        "owners": ["Kenji Tanaka"],
        "project_id": 1,
        "space_id": 1,
    }
    second = await call(env.client, "astravue_get_task", task_id=created["Update store screenshots"]["id"], **P1)
    assert second["description"] == "All five locales"


async def test_bulk_create_partial_failure_is_reported_item_by_item(env: Env) -> None:
    before = len(env.store.tasks)
    out = await call(
        env.client,
        "astravue_bulk_create_tasks",
        **P1,
        tasks=[{"title": "Good one"}, {"title": "Bad status", "status": "Someday"}],
    )
    assert out["succeeded"] == 1 and out["failed"] == 1
    bad = out["results"][1]
    assert bad == {
        "index": 1,
        "ok": False,
        "error": "Astravue rejected the request to create project task. Fix these fields: "
        "status: unknown status 'Someday'; allowed: To Do, In Progress, In Review, Done.",
    }
    assert len(env.store.tasks) == before + 1


async def test_bulk_create_limit_is_checked_before_any_call(env: Env) -> None:
    message = await error(
        env.client, "astravue_bulk_create_tasks", **P1, tasks=[{"title": f"t{i}"} for i in range(101)]
    )
    assert "tasks" in message and "100" in message
    assert env.requests("create_project_task") == 0


async def test_bulk_create_all_failing_is_an_error(env: Env) -> None:
    message = await error(env.client, "astravue_bulk_create_tasks", space_id=1, project_id=99, tasks=[{"title": "x"}])
    assert message.splitlines() == [
        "Could not create any of the 1 task(s).",
        "0 succeeded, 1 failed",
        "- #0: error: Project 99 in space 1 was not found in org 1. Check the id with a list tool.",
    ]


async def test_bulk_create_outcome_unknown_is_not_retried() -> None:
    async with sandbox(max_concurrency=1) as env:
        # The first create is applied, then its answer is lost behind a 503.
        env.fault(status=503, after_write=True, operations=["create_project_task"])
        before = len(env.store.tasks)
        out = await call(env.client, "astravue_bulk_create_tasks", **P1, tasks=[{"title": "A"}, {"title": "B"}])
        assert env.requests("create_project_task") == 2  # one request per item: no blind retry
        assert len(env.store.tasks) == before + 2
        unknown, ok = out["results"]
        assert unknown["ok"] is False and unknown["outcome_unknown"] is True and "may or may not" in unknown["error"]
        assert ok["ok"] is True and "outcome_unknown" not in ok


# ---------------------------------------------------------------- bulk update
async def test_bulk_update_partial_failure_and_state(env: Env) -> None:
    out = await call(
        env.client,
        "astravue_bulk_update_tasks",
        **P1,
        changes=[
            {"task_id": 3, "status": "Done"},
            {"task_id": 999, "status": "Done"},
            {"task_id": 4, "priority": "Low", "due": "2031-02-03"},
        ],
    )
    assert out == {
        "succeeded": 2,
        "failed": 1,
        "results": [
            {"index": 0, "id": 3, "ok": True},
            {
                "index": 1,
                "id": 999,
                "ok": False,
                "error": "Task 999 in project 1 was not found in org 1. Check the id with a list tool.",
            },
            {"index": 2, "id": 4, "ok": True},
        ],
    }
    task3 = await call(env.client, "astravue_get_task", task_id=3, **P1)
    task4 = await call(env.client, "astravue_get_task", task_id=4, **P1)
    assert task3["status"] == "Done"
    assert (task4["priority"], task4["due"]) == ("Low", "2031-02-03")


async def test_bulk_update_item_without_changes(env: Env) -> None:
    out = await call(
        env.client, "astravue_bulk_update_tasks", **P1, changes=[{"task_id": 3}, {"task_id": 4, "completion": 50}]
    )
    assert out["results"][0] == {
        "index": 0,
        "id": 3,
        "ok": False,
        "error": "Nothing to change: give at least one field besides task_id.",
    }
    assert env.store.tasks[4].completion == 50


async def test_bulk_update_asks_first_and_stops_when_declined() -> None:
    asked: list[str] = []

    async def decline(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="decline")

    async with sandbox(elicit=decline) as env:
        message = await error(
            env.client, "astravue_bulk_update_tasks", **P1, changes=[{"task_id": 3, "status": "Done"}]
        )
        assert message.endswith("Not done: the person did not confirm (change 1 task(s) in project 1).")
        assert asked == ["Confirm: change 1 task(s) in project 1?"]
        assert env.requests("update_project_task") == 0


# ---------------------------------------------------------------- bulk delete
async def test_bulk_delete_partial_failure_and_state(env: Env) -> None:
    seen: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(done)

    result = await env.client.call_tool(
        "astravue_bulk_delete_tasks", {**P1, "task_ids": [6, 40, 7]}, progress_callback=progress
    )
    assert not result.is_error and seen == [1, 2, 3]
    assert result.structured_content == {
        "succeeded": 2,
        "failed": 1,
        "results": [
            {"index": 0, "id": 6, "ok": True},
            {
                "index": 1,
                "id": 40,
                "ok": False,
                "error": "Task 40 in project 1 was not found in org 1. Check the id with a list tool.",
            },
            {"index": 2, "id": 7, "ok": True},
        ],
    }
    assert 6 not in env.store.tasks and 7 not in env.store.tasks and 40 in env.store.tasks
    assert result.content[0].text.splitlines()[0] == "2 succeeded, 1 failed"


async def test_bulk_delete_limit_and_declined_confirmation() -> None:
    async def decline(context: Any, params: Any) -> ElicitResult:
        return ElicitResult(action="accept", content={"confirm": False})

    async with sandbox(elicit=decline) as env:
        assert "100" in await error(env.client, "astravue_bulk_delete_tasks", **P1, task_ids=list(range(1, 102)))
        assert "did not confirm" in await error(env.client, "astravue_bulk_delete_tasks", **P1, task_ids=[6])
        assert 6 in env.store.tasks and env.requests("delete_project_task") == 0
