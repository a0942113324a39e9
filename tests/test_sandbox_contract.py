"""Contract tests of the embedded sandbox: what an Astravue client sees, value by value.

Most tests talk to the app in-process (``httpx2.ASGITransport``); the ones about timeouts,
connection resets and JWT issuers use a real uvicorn server over TCP (``SandboxServer``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from astravue_mcp.api import endpoints
from astravue_mcp.api.client import AstravueClient
from astravue_mcp.api.endpoints import ENDPOINTS, Endpoint
from astravue_mcp.auth.credentials import BearerAuth
from astravue_mcp.config import SANDBOX_ORG_ID, SANDBOX_TOKEN, load_settings
from astravue_mcp.errors import ApiError
from astravue_mcp.sandbox import SandboxServer, create_app
from astravue_mcp.sandbox.store import Store

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Org-Id": str(SANDBOX_ORG_ID)}
TASKS_P1 = "/v1/spaces/1/projects/1/tasks"
TODAY = datetime.now(UTC).date()


def client_for(app: Starlette, headers: dict[str, str] | None = None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://sandbox", headers=AUTH if headers is None else headers
    )


@pytest.fixture
def app() -> Starlette:
    return create_app()


@pytest.fixture
def store(app: Starlette) -> Store:
    return app.state.sandbox


@pytest.fixture
async def api(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    async with client_for(app) as client:
        yield client


async def ok(api: httpx2.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    """The ``data`` of a successful answer, after checking the whole envelope."""
    response = await api.request(method, url, **kwargs)
    body = response.json()
    assert response.status_code == 200, body
    assert body == {"success": True, "message": "Operation completed successfully", "code": 200, "data": body["data"]}
    return body["data"]


async def fails(api: httpx2.AsyncClient, method: str, url: str, status: int, **kwargs: Any) -> dict[str, Any]:
    """The body of an error answer, after checking its status and envelope."""
    response = await api.request(method, url, **kwargs)
    body = response.json()
    assert response.status_code == status, body
    assert body["success"] is False and body["code"] == status
    assert set(body) == {"success", "message", "code", "errors"}
    return body


def field_errors(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in body["errors"]}


def ids(items: list[dict[str, Any]], key: str = "taskId") -> list[int]:
    return [item[key] for item in items]


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


# ---------------------------------------------------------------- envelope, auth, org
async def test_success_envelope_and_full_nested_objects(api: httpx2.AsyncClient) -> None:
    spaces = await ok(api, "GET", "/v1/spaces")
    assert [(s["spaceId"], s["spaceName"]) for s in spaces] == [(1, "Product"), (2, "Marketing"), (3, "Operations")]
    task = await ok(api, "GET", f"{TASKS_P1}/5")
    assert task["taskTitle"] == "Fix crash on Android 14 photo picker"
    assert task["tenantId"] == 1 and task["projectId"] == 1 and task["spaceId"] == 1
    assert task["status"]["statusName"] == "In Progress" and task["status"]["statusCategory"] == "in_progress"
    assert task["status"]["projectId"] == 1 and task["status"]["createdBy"]["userId"] == 3
    assert task["priority"]["priorityLabel"] == "Critical" and task["priority"]["modifiedBy"]["userId"] == 1
    maya, kenji = task["owners"]
    assert (maya["userId"], maya["firstName"]) == (1, "Maya")
    assert maya["role"] == {"orgRoleId": 1, "roleName": "Account Admin"}
    assert kenji["role"]["roleName"] == "Member" and kenji["email"] == "kenji.tanaka@northwind.example"
    assert task["createdBy"]["userId"] == 3 and task["modifiedBy"]["userId"] == 3
    assert task["dueDate"] == f"{day(-2)}T00:00:00Z"
    assert task["descriptionMentionedUserIds"] == [4]
    assert task["tags"] == ["android", "bug"]


async def test_missing_or_wrong_token_is_401(app: Starlette) -> None:
    async with client_for(app, {"X-Org-Id": "1"}) as anonymous:
        body = await fails(anonymous, "GET", "/v1/spaces", 401)
        assert body["message"] == "Authentication required: send Authorization: Bearer <access token>"
        response = await anonymous.get("/v1/spaces", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["message"] == "The access token is invalid or has expired"
        response = await anonymous.get("/v1/spaces", headers={"Authorization": f"Basic {SANDBOX_TOKEN}"})
        assert response.status_code == 401


async def test_org_header_missing_malformed_or_foreign(app: Starlette) -> None:
    async with client_for(app, {"Authorization": AUTH["Authorization"]}) as api:
        body = await fails(api, "GET", "/v1/spaces", 400)
        assert body["message"] == "The X-Org-Id header is required"
        assert body["errors"] == [{"field": "X-Org-Id", "message": "is required"}]
        body = await fails(api, "GET", "/v1/spaces", 400, headers={"X-Org-Id": "acme"})
        assert field_errors(body) == {"X-Org-Id": "must be an integer (got 'acme')"}
        body = await fails(api, "GET", "/v1/spaces", 403, headers={"X-Org-Id": "2"})
        assert body["message"] == "Organisation 2 is not accessible with this token"


async def test_more_organisations_open_only_to_their_members() -> None:
    app = create_app(orgs={7: ["MAYA.patel@northwind.example"], 8: ["liam.oconnor@northwind.example"]})
    async with client_for(app, {"Authorization": AUTH["Authorization"]}) as api:  # the token is Maya's
        for org in ("1", "7", "7"):
            assert await ok(api, "GET", "/v1/spaces", headers={"X-Org-Id": org})
        body = await fails(api, "GET", "/v1/spaces", 403, headers={"X-Org-Id": "8"})
        assert body["message"] == "Organisation 8 is not accessible with this token"
        assert (await ok(api, "GET", "/_sandbox/stats"))["orgs"] == {"1": 1, "7": 2}


async def test_unknown_route_and_method(api: httpx2.AsyncClient) -> None:
    body = await fails(api, "GET", "/v1/widgets", 404)
    assert body["message"] == "No route for GET /v1/widgets"
    body = await fails(api, "PATCH", "/v1/spaces/1", 405)
    assert body["message"] == "Method PATCH is not allowed on /v1/spaces/1"
    body = await fails(api, "GET", "/v1/spaces/abc", 400)
    assert field_errors(body) == {"spaceId": "must be an integer (got 'abc')"}


async def test_every_operation_is_routed(api: httpx2.AsyncClient, store: Store) -> None:
    # Personal-scope paths get personal task 61 (and its subtask 77); project paths project task 2.
    for name, ep in ENDPOINTS.items():
        store.reset()  # an earlier delete must not turn a later request into a 404
        project_scoped = "{projectId}" in ep.path
        url = ep.path.format(spaceId=1, projectId=1, taskId=2 if project_scoped else 61, subtaskId=77, timerId=1)
        response = await api.request(ep.method, url, params={"startDate": day(-30), "endDate": day(0)})
        body = response.json()
        assert response.status_code != 405, name
        assert not body["message"].startswith("No route"), name
        assert body["code"] == response.status_code, name
        if ep.method == "GET":
            assert response.status_code == 200, (name, body)


async def test_routes_follow_the_endpoint_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A path fixed in endpoints.py moves the sandbox with it."""
    table = dict(endpoints.ENDPOINTS, get_space=Endpoint("GET", "/v2/workspaces/{spaceId}", "space"))
    monkeypatch.setattr("astravue_mcp.sandbox.app.ENDPOINTS", table)
    async with client_for(create_app()) as api:
        assert (await ok(api, "GET", "/v2/workspaces/2"))["spaceName"] == "Marketing"
        assert (await api.get("/v1/spaces/2")).status_code == 405  # only PUT and DELETE remain there


# ---------------------------------------------------------------- validation and 404s
async def test_task_validation_names_every_bad_field(api: httpx2.AsyncClient) -> None:
    body = await fails(
        api,
        "POST",
        TASKS_P1,
        400,
        json={
            "taskTitle": "   ",
            "completion": 101,
            "status": "Blocked",
            "priority": "Urgent",
            "owners": [1, 99],
            "startDate": "2024-05-02T00:00:00Z",
            "dueDate": "2024-05-01T00:00:00Z",
            "tags": [""],
        },
    )
    assert body["message"] == "Validation failed"
    assert field_errors(body) == {
        "taskTitle": "must not be empty",
        "dueDate": "must not be before startDate",
        "completion": "must be between 0 and 100 (got 101)",
        "owners": "unknown user id(s): 99",
        "tags[0]": "must be 1 to 50 characters",
        "status": "unknown status 'Blocked'; allowed: To Do, In Progress, In Review, Done",
        "priority": "unknown priority 'Urgent'; allowed: Low, Medium, High, Critical",
    }
    body = await fails(api, "POST", TASKS_P1, 400, json={"taskTitle": "x" * 256, "completion": -1})
    assert field_errors(body) == {
        "taskTitle": "must be at most 255 characters (got 256)",
        "completion": "must be between 0 and 100 (got -1)",
    }
    body = await fails(api, "POST", TASKS_P1, 400, json={"taskTitle": "ok", "startDate": "next tuesday"})
    assert list(field_errors(body)) == ["startDate"]
    body = await fails(api, "POST", TASKS_P1, 400, json={})
    assert field_errors(body) == {"taskTitle": "must not be empty"}
    body = await fails(api, "POST", TASKS_P1, 400, content=b"{not json", headers={"Content-Type": "application/json"})
    assert field_errors(body) == {"body": "is not valid JSON"}
    body = await fails(api, "PUT", f"{TASKS_P1}/2", 400, json={"dueDate": day(-30)})
    assert field_errors(body) == {"dueDate": "must not be before startDate"}  # checked against the stored start


async def test_space_project_timer_validation(api: httpx2.AsyncClient) -> None:
    body = await fails(api, "POST", "/v1/spaces", 400, json={"spaceName": ""})
    assert field_errors(body) == {"spaceName": "must not be empty"}
    body = await fails(
        api, "POST", "/v1/spaces/1/projects", 400, json={"projectName": "P", "startDate": day(5), "dueDate": day(1)}
    )
    assert field_errors(body) == {"dueDate": "must not be before startDate"}
    body = await fails(
        api,
        "POST",
        "/v1/time-track/projects/1/tasks/2/range",
        400,
        json={"startTime": "2024-05-01T10:00:00Z", "endTime": "2024-05-01T09:00:00Z"},
    )
    assert field_errors(body) == {"endTime": "must be after startTime"}
    body = await fails(api, "POST", "/v1/time-track/projects/1/tasks/2/range", 400, json={})
    assert field_errors(body) == {"startTime": "is required", "endTime": "is required"}
    body = await fails(api, "POST", "/v1/time-track/tasks/61/manual", 400, json={"hours": 0})
    assert field_errors(body) == {"hours": "must be more than 0 and at most 24 (got 0)"}


async def test_not_found_names_kind_and_id(api: httpx2.AsyncClient) -> None:
    cases = [
        ("GET", "/v1/spaces/999", "Space 999 was not found"),
        ("GET", "/v1/spaces/1/projects/3", "Project 3 in space 1 was not found"),
        ("GET", f"{TASKS_P1}/13", "Task 13 in project 1 was not found"),
        ("GET", "/v1/tasks/2", "Task 2 was not found"),  # a project task is not a personal task
        ("GET", "/v1/tasks/999/comments", "Task 999 was not found"),
        ("GET", "/v1/tasks/2/subtasks/70/checklists", "Subtask 70 of task 2 was not found"),
        ("PUT", "/v1/time-track/999", "Time entry 999 was not found"),
        ("POST", "/v1/time-track/tasks/2/start", "Task 2 was not found"),
        ("POST", "/v1/time-track/projects/2/tasks/5/start", "Task 5 in project 2 was not found"),
        ("GET", "/v1/time-track/projects/42/timesheet", "Project 42 was not found"),
    ]
    for method, url, message in cases:
        body = await fails(api, method, url, 404, json={})
        assert body["message"] == message


# ---------------------------------------------------------------- writes change state
async def test_space_crud(api: httpx2.AsyncClient) -> None:
    created = await ok(api, "POST", "/v1/spaces", json={"spaceName": " Research ", "color": "#000000"})
    assert (created["spaceId"], created["spaceName"], created["createdBy"]["userId"]) == (4, "Research", 1)
    assert (await ok(api, "GET", "/v1/spaces/4"))["color"] == "#000000"
    updated = await ok(api, "PUT", "/v1/spaces/4", json={"description": "Ideas"})
    assert (updated["spaceName"], updated["description"]) == ("Research", "Ideas")
    assert ids(await ok(api, "GET", "/v1/spaces"), "spaceId") == [1, 2, 3, 4]
    assert await ok(api, "DELETE", "/v1/spaces/4") is None
    await fails(api, "GET", "/v1/spaces/4", 404)
    assert (await ok(api, "POST", "/v1/spaces", json={"spaceName": "Again"}))["spaceId"] == 5  # ids are not reused


async def test_project_crud_and_its_own_workflow(api: httpx2.AsyncClient) -> None:
    project = await ok(api, "POST", "/v1/spaces/3/projects", json={"projectName": "Hiring", "dueDate": day(30)})
    pid = project["projectId"]
    assert (pid, project["spaceId"], project["taskCount"], project["owner"]["userId"]) == (6, 3, 0, 1)
    assert project["status"] == "Active" and project["dueDate"] == f"{day(30)}T00:00:00Z"
    task = await ok(api, "POST", f"/v1/spaces/3/projects/{pid}/tasks", json={"taskTitle": "Post the job ad"})
    assert task["status"]["statusName"] == "To Do" and task["status"]["projectId"] == pid
    assert task["priority"]["priorityLabel"] == "Medium" and task["owners"] == []
    await ok(api, "PUT", f"/v1/spaces/3/projects/{pid}", json={"projectName": "Hiring 2025", "health": "At Risk"})
    got = await ok(api, "GET", f"/v1/spaces/3/projects/{pid}")
    assert (got["projectName"], got["health"], got["taskCount"]) == ("Hiring 2025", "At Risk", 1)
    assert [p["projectName"] for p in await ok(api, "GET", "/v1/spaces/3/projects")] == ["Office Move", "Hiring 2025"]
    await ok(api, "DELETE", f"/v1/spaces/3/projects/{pid}")
    await fails(api, "GET", f"/v1/spaces/3/projects/{pid}", 404)
    await fails(api, "GET", f"/v1/tasks/{task['taskId']}/comments", 404)


async def test_project_task_create_update_delete(api: httpx2.AsyncClient, store: Store) -> None:
    created = await ok(
        api,
        "POST",
        TASKS_P1,
        json={
            "taskTitle": "Tablet layout",
            "status": "in progress",
            "priority": "HIGH",
            "owners": [4, 4, 5],
            "tags": ["ux"],
            "startDate": day(1),
            "dueDate": "2030-01-31T12:00:00",
            "completion": 10,
            "description": "Ask @Amara Okafor for the mocks",
        },
    )
    tid = created["taskId"]
    assert tid == 79
    assert created["status"]["statusName"] == "In Progress" and created["priority"]["priorityLabel"] == "High"
    assert ids(created["owners"], "userId") == [4, 5] and created["owners"][1]["role"]["roleName"] == "Member"
    assert created["dueDate"] == "2030-01-31T12:00:00Z" and created["descriptionMentionedUserIds"] == [5]
    assert created["createdBy"]["userId"] == 1 and created["updateTime"]

    updated = await ok(api, "PUT", f"{TASKS_P1}/{tid}", json={"status": "Done", "owners": [], "dueDate": None})
    assert updated["status"]["statusCategory"] == "done"
    assert updated["completion"] == 100  # reaching a done status completes the task
    assert (updated["owners"], updated.get("dueDate"), updated["taskTitle"]) == ([], None, "Tablet layout")
    assert store.tasks[tid].tags == ["ux"]  # untouched fields stay
    await ok(api, "DELETE", f"{TASKS_P1}/{tid}")
    await fails(api, "GET", f"{TASKS_P1}/{tid}", 404)


async def test_subtasks_checklists_and_comments(api: httpx2.AsyncClient) -> None:
    assert ids(await ok(api, "GET", f"{TASKS_P1}/2/subtasks")) == [67, 68, 69]
    sub = await ok(api, "POST", TASKS_P1, json={"taskTitle": "Lockout after 5 tries", "parentTaskId": 2})
    assert sub["parentTaskId"] == 2
    assert ids(await ok(api, "GET", f"{TASKS_P1}/2/subtasks")) == [67, 68, 69, sub["taskId"]]
    assert sub["taskId"] not in ids((await ok(api, "GET", TASKS_P1))["content"])  # lists hold top-level tasks
    body = await fails(api, "POST", TASKS_P1, 400, json={"taskTitle": "x", "parentTaskId": 67})
    assert field_errors(body) == {"parentTaskId": "task 67 is itself a subtask; subtasks cannot have subtasks"}
    body = await fails(api, "POST", TASKS_P1, 400, json={"taskTitle": "x", "parentTaskId": 13})
    assert field_errors(body) == {"parentTaskId": "task 13 is not a task of project 1"}

    checklist = await ok(api, "GET", "/v1/tasks/2/checklists")
    assert [(c["title"], c["completed"]) for c in checklist] == [
        ("Threat model reviewed", True),
        ("Keychain storage", False),
        ("QA sign-off", False),
    ]
    assert [c["title"] for c in await ok(api, "GET", "/v1/tasks/2/subtasks/67/checklists")] == [
        "Enrol test device",
        "Handle lockout",
    ]
    comments = await ok(api, "GET", "/v1/tasks/5/comments")
    assert ids(comments, "commentId") == [1, 2] and comments[1]["createdBy"]["firstName"] == "Maya"

    await ok(api, "DELETE", f"{TASKS_P1}/2")  # the parent takes subtasks, checklists and timers along
    for url in ("/v1/tasks/67/checklists", "/v1/tasks/2/comments", "/v1/time-track/tasks/2"):
        await fails(api, "GET", url, 404)


async def test_personal_tasks(api: httpx2.AsyncClient) -> None:
    page = await ok(api, "GET", "/v1/tasks")
    assert ids(page["content"]) == [61, 62, 63, 64, 65, 66] and page["totalElements"] == 6
    created = await ok(api, "POST", "/v1/tasks", json={"taskTitle": "Call the accountant", "priority": "low"})
    assert ids(created["owners"], "userId") == [1] and "projectId" not in created
    assert created["status"]["statusName"] == "To Do" and created["priority"]["priorityLabel"] == "Low"
    tid = created["taskId"]
    sub = await ok(api, "POST", "/v1/tasks", json={"taskTitle": "Find the receipts", "parentTaskId": tid})
    assert ids(await ok(api, "GET", f"/v1/tasks/{tid}/subtasks")) == [sub["taskId"]]
    await ok(api, "PUT", f"/v1/tasks/{tid}", json={"taskTitle": "Call the tax accountant", "completion": 50})
    got = await ok(api, "GET", f"/v1/tasks/{tid}")
    assert (got["taskTitle"], got["completion"]) == ("Call the tax accountant", 50)
    await ok(api, "DELETE", f"/v1/tasks/{tid}")
    await fails(api, "GET", f"/v1/tasks/{sub['taskId']}", 404)
    assert ids(await ok(api, "GET", "/v1/tasks/61/subtasks")) == [77, 78]


async def test_cascade_delete_of_a_space(api: httpx2.AsyncClient, store: Store) -> None:
    await ok(api, "DELETE", "/v1/spaces/1")
    assert sorted(store.projects) == [3, 4, 5]
    assert not [t for t in store.tasks.values() if t.project_id in (1, 2)]
    assert 67 not in store.tasks and 20 not in store.timers  # subtask and the running timer on task 5
    await fails(api, "GET", "/v1/spaces/1/projects", 404)
    await fails(api, "GET", "/v1/time-track/projects/1/timesheet/summary", 404)
    assert sorted(store.spaces) == [2, 3] and 61 in store.tasks


# ---------------------------------------------------------------- lists
async def test_task_filters(api: httpx2.AsyncClient) -> None:
    async def task_ids(**params: Any) -> list[int]:
        return ids((await ok(api, "GET", TASKS_P1, params=params))["content"])

    assert await task_ids() == list(range(1, 13))
    assert await task_ids(status="done") == [1, 8]
    assert await task_ids(status="To Do,in review") == [3, 6, 7, 9, 10, 11, 12]
    assert await task_ids(priority="Critical") == [4, 5]
    assert await task_ids(ownerId=3) == [1, 6, 7, 9]
    assert await task_ids(dueFrom=day(-2), dueTo=day(0)) == [5, 9]
    assert await task_ids(dueFrom=day(1), dueTo=day(7)) == [2, 3, 10, 12]
    assert await task_ids(status="In Progress", ownerId=4) == [2, 5]
    body = await fails(api, "GET", TASKS_P1, 400, params={"status": "Blocked", "dueFrom": "soon"})
    assert field_errors(body) == {"status": "unknown status 'Blocked'; allowed: To Do, In Progress, In Review, Done"}
    body = await fails(api, "GET", TASKS_P1, 400, params={"dueFrom": "soon"})
    assert field_errors(body) == {"dueFrom": "must be an ISO date such as 2024-05-31 (got 'soon')"}
    body = await fails(api, "GET", TASKS_P1, 400, params={"dueFrom": day(3), "dueTo": day(1)})
    assert field_errors(body) == {"dueTo": "must not be before dueFrom"}
    # Project 5 has its own extra status.
    blocked = await ok(api, "GET", "/v1/spaces/3/projects/5/tasks", params={"status": "blocked"})
    assert ids(blocked["content"]) == [51]


async def test_task_sorting(api: httpx2.AsyncClient) -> None:
    async def order(sort_by: str, direction: str = "asc") -> list[int]:
        page = await ok(api, "GET", TASKS_P1, params={"sortBy": sort_by, "sortDirection": direction})
        return ids(page["content"])

    assert await order("dueDate") == [1, 8, 5, 9, 3, 10, 2, 12, 4, 7, 6, 11]
    assert await order("dueDate", "desc") == [11, 6, 7, 4, 12, 2, 10, 3, 9, 5, 8, 1]
    assert await order("priority", "desc") == [4, 5, 1, 2, 9, 10, 3, 7, 8, 12, 6, 11]
    assert (await order("title"))[:3] == [9, 6, 10]  # Accessibility, App Store, Beta release
    await ok(api, "PUT", f"{TASKS_P1}/7", json={"completion": 5})
    assert (await order("updateTime", "desc"))[0] == 7
    body = await fails(api, "GET", TASKS_P1, 400, params={"sortBy": "colour"})
    assert "colour" in field_errors(body)["sortBy"]
    body = await fails(api, "GET", TASKS_P1, 400, params={"sortBy": "title", "sortDirection": "up"})
    assert field_errors(body) == {"sortDirection": "must be asc or desc (got 'up')"}
    # Tasks without a due date stay last either way.
    personal = await ok(api, "GET", "/v1/tasks", params={"sortBy": "dueDate", "sortDirection": "desc"})
    assert ids(personal["content"])[-1] == 66


async def test_pagination(api: httpx2.AsyncClient) -> None:
    first = endpoints.PAGES_START_AT
    page = await ok(api, "GET", TASKS_P1, params={"pageSize": 5, "pageNumber": first + 1})
    assert {k: v for k, v in page.items() if k != "content"} == {
        "totalElements": 12,
        "totalPages": 3,
        "pageNumber": first + 1,
        "pageSize": 5,
        "last": False,
    }
    assert ids(page["content"]) == [6, 7, 8, 9, 10]
    last = await ok(api, "GET", TASKS_P1, params={"pageSize": 5, "pageNumber": first + 2})
    assert ids(last["content"]) == [11, 12] and last["last"] is True
    beyond = await ok(api, "GET", TASKS_P1, params={"pageSize": 5, "pageNumber": first + 9})
    assert beyond["content"] == [] and beyond["totalElements"] == 12
    assert (await ok(api, "GET", TASKS_P1, params={"pageSize": 1000}))["pageSize"] == 200
    assert (await ok(api, "GET", TASKS_P1))["pageSize"] == 25
    body = await fails(api, "GET", TASKS_P1, 400, params={"pageSize": 0})
    assert field_errors(body) == {"pageSize": "must be at least 1 (got 0)"}
    body = await fails(api, "GET", TASKS_P1, 400, params={"pageNumber": "two"})
    assert field_errors(body) == {"pageNumber": "must be an integer (got 'two')"}


# ---------------------------------------------------------------- seed facts others rely on
def test_seed_facts(store: Store) -> None:
    assert store.current_user_id == 1 and store.tenant_id == 1
    assert store.users[1].name == "Maya Patel" and len(store.users) == 5
    assert {p.project_id: p.name for p in store.projects.values()} == {
        1: "Mobile App v2",
        2: "Web Platform",
        3: "Q3 Launch Campaign",
        4: "Website Refresh",
        5: "Office Move",
    }
    top = [t for t in store.tasks.values() if t.project_id and t.parent_id is None]
    assert len(top) == 60 and len(store.tasks) == 78
    today = datetime.combine(TODAY, datetime.min.time(), UTC)
    overdue = sorted(t.task_id for t in store.tasks.values() if t.due and t.due < today and not store.is_done(t))
    assert overdue == [5, 9, 17, 22, 28, 40, 53, 62]
    week = sorted(
        t.task_id
        for t in store.tasks.values()
        if t.due and today < t.due <= today + timedelta(days=7) and not store.is_done(t)
    )
    assert {3, 10, 14, 61} <= set(week) and len(week) >= 10
    assert [t.timer_id for t in store.timers.values() if t.running] == [20]
    assert sum(not n.read for n in store.notifications.values() if n.user_id == 1) == 5


# ---------------------------------------------------------------- time tracking
async def test_timer_start_stop_and_conflicts(api: httpx2.AsyncClient) -> None:
    started = await ok(api, "POST", "/v1/time-track/projects/1/tasks/3/start", json={"billable": True})
    assert (started["taskId"], started["projectId"], started["running"], started["billable"]) == (3, 1, True, True)
    assert started["user"]["userId"] == 1 and "endTime" not in started
    body = await fails(api, "POST", "/v1/time-track/projects/1/tasks/3/start", 409)
    assert body["message"] == f"A timer is already running on task 3 (timer {started['timeTrackerId']}); stop it first"
    await fails(api, "POST", "/v1/time-track/projects/1/tasks/5/start", 409)  # the seeded running timer
    active = await ok(api, "GET", "/v1/time-track/active")
    assert ids(active, "timeTrackerId") == [20, started["timeTrackerId"]]

    stopped = await ok(api, "PUT", "/v1/time-track/tasks/3/stop", json={"notes": "Wired APNs"})
    start, end = (datetime.fromisoformat(stopped[k]) for k in ("startTime", "endTime"))
    assert stopped["running"] is False and stopped["notes"] == "Wired APNs"
    assert stopped["duration"] == int((end - start).total_seconds() * 1000) >= 0
    assert (await fails(api, "PUT", "/v1/time-track/tasks/3/stop", 409))["message"] == "No timer is running on task 3"
    assert ids(await ok(api, "GET", "/v1/time-track/tasks/3"), "timeTrackerId") == [started["timeTrackerId"]]


async def test_time_entries_range_manual_update_delete(api: httpx2.AsyncClient, store: Store) -> None:
    ranged = await ok(
        api,
        "POST",
        "/v1/time-track/tasks/61/range",
        json={"startTime": "2024-05-01T09:00:00Z", "endTime": "2024-05-01T10:30:00Z", "notes": "deck"},
    )
    assert (ranged["duration"], ranged["billable"], ranged.get("projectId")) == (5_400_000, False, None)
    manual = await ok(
        api,
        "POST",
        "/v1/time-track/projects/2/tasks/14/manual",
        json={"hours": 2.25, "date": "2024-05-02T13:00:00Z", "billable": True},
    )
    assert (manual["startTime"], manual["endTime"], manual["duration"]) == (
        "2024-05-02T13:00:00Z",
        "2024-05-02T15:15:00Z",
        8_100_000,
    )
    tid = manual["timeTrackerId"]
    updated = await ok(api, "PUT", f"/v1/time-track/{tid}", json={"hours": 1, "billable": False})
    assert (updated["duration"], updated["billable"], updated["endTime"]) == (3_600_000, False, "2024-05-02T14:00:00Z")
    await ok(api, "DELETE", f"/v1/time-track/{tid}")
    assert tid not in store.timers
    await fails(api, "DELETE", f"/v1/time-track/{tid}", 404)
    body = await fails(
        api, "PUT", f"/v1/time-track/{ranged['timeTrackerId']}", 400, json={"endTime": "2024-05-01T08:00:00Z"}
    )
    assert field_errors(body) == {"endTime": "must be after startTime"}


async def test_timesheets_and_summary(api: httpx2.AsyncClient) -> None:
    summary = await ok(api, "GET", "/v1/time-track/projects/1/timesheet/summary")
    # Finished entries on project 1: 120+90+180+240+75+30+150 minutes, 30 of them not billable.
    assert summary == {
        "projectId": 1,
        "totalDuration": 53_100_000,
        "billableDuration": 51_300_000,
        "nonBillableDuration": 1_800_000,
        "entryCount": 7,
    }
    entries = await ok(api, "GET", "/v1/time-track/projects/1/timesheet")
    assert sorted(ids(entries, "timeTrackerId")) == [1, 2, 3, 4, 5, 6, 7, 20]
    week = await ok(api, "GET", "/v1/time-track/timesheet", params={"startDate": day(-7), "endDate": day(0)})
    assert sorted(ids(week["entries"], "timeTrackerId")) == [*range(1, 18), 20]  # 18 and 19 are older
    assert (week["startDate"], week["entryCount"]) == (day(-7), 17)
    assert week["totalDuration"] == week["billableDuration"] + week["nonBillableDuration"]
    mine = await ok(
        api, "GET", "/v1/time-track/timesheet", params={"startDate": day(-30), "endDate": day(0), "userId": 1}
    )
    assert sorted(ids(mine["entries"], "timeTrackerId")) == [6, 12, 14, 17, 18, 20]
    assert mine["totalDuration"] == (30 + 90 + 120 + 60 + 30) * 60_000
    body = await fails(api, "GET", "/v1/time-track/timesheet", 400, params={"endDate": day(0)})
    assert field_errors(body) == {"startDate": "is required (an ISO date such as 2024-05-31)"}


# ---------------------------------------------------------------- notifications
async def test_notifications_read_and_delete(api: httpx2.AsyncClient) -> None:
    everything = await ok(api, "GET", "/v1/notifications")
    assert len(everything) == 10 and {n["notificationId"] for n in everything} == set(range(1, 11))
    unread = await ok(api, "GET", "/v1/notifications", params={"unreadOnly": "true"})
    assert ids(unread, "notificationId") == [8, 5, 3, 6, 1]  # newest first
    assert [n["notificationId"] for n in everything if n["mention"]] == [6, 1, 9]
    assert unread[3]["actor"]["firstName"] == "Amara"

    marked = await ok(api, "PUT", "/v1/notifications/read", json={"notificationIds": [1, 3, 2]})
    assert marked == {"notificationIds": [1, 3], "updatedCount": 2}  # 2 was already read
    assert ids(await ok(api, "GET", "/v1/notifications", params={"unreadOnly": "true"}), "notificationId") == [8, 5, 6]
    assert (await ok(api, "PUT", "/v1/notifications/read", json={"all": True}))["updatedCount"] == 3
    assert await ok(api, "GET", "/v1/notifications", params={"unreadOnly": "true"}) == []

    deleted = await ok(api, "DELETE", "/v1/notifications", json={"notificationIds": [1, 2]})
    assert deleted == {"notificationIds": [1, 2], "deletedCount": 2}
    assert len(await ok(api, "GET", "/v1/notifications")) == 8
    body = await fails(api, "DELETE", "/v1/notifications", 400, json={"notificationIds": [1, 11]})
    assert field_errors(body) == {"notificationIds": "unknown notification id(s): 1, 11"}  # 11 is Kenji's
    body = await fails(api, "PUT", "/v1/notifications/read", 400, json={})
    assert field_errors(body) == {"notificationIds": 'give at least one notification id or "all": true'}


# ---------------------------------------------------------------- faults, stats, admin
async def test_queued_status_fault_with_retry_after(api: httpx2.AsyncClient) -> None:
    queued = await ok(
        api,
        "POST",
        "/_sandbox/faults",
        json={"count": 2, "status": 503, "retry_after": 2, "operations": ["list_spaces"]},
    )
    assert queued["faults"][0]["count"] == 2
    await ok(api, "GET", "/v1/spaces/1")  # another operation is not affected
    for _ in range(2):
        response = await api.get("/v1/spaces")
        assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
        assert response.json() == {"success": False, "message": "Simulated fault (HTTP 503)", "code": 503, "errors": []}
    await ok(api, "GET", "/v1/spaces")
    assert (await ok(api, "GET", "/_sandbox/faults"))["faults"] == []
    stats = await ok(api, "GET", "/_sandbox/stats")
    assert stats["operations"] == {"get_space": 1, "list_spaces": 3} and stats["faults"] == 2


async def test_fault_bodies(api: httpx2.AsyncClient) -> None:
    await ok(api, "POST", "/_sandbox/faults", json={"body": "html"})
    response = await api.get("/v1/spaces")
    assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in response.text

    await ok(api, "POST", "/_sandbox/faults", json={"body": "empty"})
    response = await api.get("/v1/spaces")
    assert (response.status_code, response.content) == (200, b"")

    await ok(api, "POST", "/_sandbox/faults", json={"body": "truncated", "after_write": True})
    response = await api.post("/v1/spaces", json={"spaceName": "Half"})
    assert response.status_code == 200 and response.text.startswith('{"success":true')
    with pytest.raises(ValueError):
        response.json()
    assert [s["spaceName"] for s in await ok(api, "GET", "/v1/spaces")][-1] == "Half"  # the write happened

    await ok(api, "POST", "/_sandbox/faults", json={"body": "reset", "operations": ["create_space"]})
    with pytest.raises(httpx2.RemoteProtocolError):
        await api.post("/v1/spaces", json={"spaceName": "Lost"})
    assert "Lost" not in [s["spaceName"] for s in await ok(api, "GET", "/v1/spaces")]  # before the write


async def test_after_write_status_fault_keeps_the_write(api: httpx2.AsyncClient, store: Store) -> None:
    await ok(api, "POST", "/_sandbox/faults", json={"status": 500, "after_write": True})
    await fails(api, "POST", TASKS_P1, 500, json={"taskTitle": "Written anyway"})
    assert store.tasks[79].title == "Written anyway"


async def test_header_fault_and_bad_specs(api: httpx2.AsyncClient) -> None:
    response = await api.get("/v1/spaces", headers={"X-Sandbox-Fault": "status=429; retry_after=3"})
    assert (response.status_code, response.headers["Retry-After"]) == (429, "3")
    assert (await api.get("/v1/spaces", headers={"X-Sandbox-Fault": "502"})).status_code == 502
    response = await api.get("/v1/spaces", headers={"X-Sandbox-Fault": '{"body": "html", "status": 504}'})
    assert response.status_code == 504
    await ok(api, "GET", "/v1/spaces")  # a header fault lasts one request
    body = await fails(api, "GET", "/v1/spaces", 400, headers={"X-Sandbox-Fault": "body=teapot"})
    assert list(field_errors(body)) == ["X-Sandbox-Fault.body"]
    body = await fails(api, "POST", "/_sandbox/faults", 400, json={"count": 0, "operations": ["fly"]})
    assert set(field_errors(body)) == {"count", "operations"}


async def test_faults_and_admin_need_admin_mode() -> None:
    async with client_for(create_app(admin=False)) as api:
        await fails(api, "GET", "/_sandbox/stats", 404)
        await ok(api, "GET", "/v1/spaces", headers={"X-Sandbox-Fault": "503"})


async def test_stats_count_every_request_and_reset_reseeds(api: httpx2.AsyncClient, store: Store) -> None:
    await ok(api, "POST", "/v1/spaces", json={"spaceName": "Temp"})
    await api.get("/v1/spaces", headers={"Authorization": "Bearer wrong"})
    await api.get("/v1/spaces/1", headers={"X-Sandbox-Fault": "503"})
    await fails(api, "GET", "/v1/spaces/77", 404)
    stats = await ok(api, "GET", "/_sandbox/stats")
    assert stats == {
        "total": 4,
        "operations": {"create_space": 1, "list_spaces": 1, "get_space": 2},
        "requests": {"POST /v1/spaces": 1, "GET /v1/spaces": 1, "GET /v1/spaces/1": 1, "GET /v1/spaces/77": 1},
        "orgs": {"1": 3},  # the request with a wrong token was not let in
        "faults": 1,
    }
    await ok(api, "POST", "/_sandbox/faults", json={"status": 503})
    assert await ok(api, "POST", "/_sandbox/reset") is None
    assert (await ok(api, "GET", "/_sandbox/stats"))["total"] == 0
    assert (await ok(api, "GET", "/_sandbox/faults"))["faults"] == []
    assert sorted(store.spaces) == [1, 2, 3] and len(store.tasks) == 78
    assert (await ok(api, "POST", "/v1/spaces", json={"spaceName": "Fresh"}))["spaceId"] == 4


async def test_latency_is_added_to_api_requests() -> None:
    async with client_for(create_app(latency_ms=150)) as api:
        started = time.monotonic()
        await ok(api, "GET", "/v1/spaces/1")
        assert time.monotonic() - started >= 0.15
        started = time.monotonic()
        await ok(api, "GET", "/_sandbox/stats")
        assert time.monotonic() - started < 0.15


# ---------------------------------------------------------------- over real TCP
def test_real_server_reset_timeout_and_client_round_trip() -> None:
    with SandboxServer() as sandbox:
        assert sandbox.url.startswith("http://127.0.0.1:") and sandbox.port > 0
        with httpx2.Client(base_url=sandbox.url, headers=AUTH) as http:
            assert [s["spaceName"] for s in http.get("/v1/spaces").json()["data"]][0] == "Product"

            http.post("/_sandbox/faults", json={"body": "reset"})
            with pytest.raises(httpx2.RemoteProtocolError):
                http.get("/v1/spaces")
            assert http.get("/v1/spaces").status_code == 200

            # The write happens, the answer comes too late: the client times out.
            http.post("/_sandbox/faults", json={"delay": 1.0, "after_write": True, "operations": ["create_space"]})
            with pytest.raises(httpx2.ReadTimeout):
                http.post("/v1/spaces", json={"spaceName": "Slow"}, timeout=0.3)
            assert sandbox.app.state.sandbox.spaces[4].name == "Slow"
            http.post("/_sandbox/reset")


async def test_api_client_does_not_repeat_a_post_whose_connection_dropped() -> None:
    async with SandboxServer() as sandbox:
        settings = load_settings({}).sandboxed(sandbox.url)
        async with AstravueClient(settings, auth=BearerAuth(SANDBOX_TOKEN, "the sandbox")) as client:
            spaces = await client.call("list_spaces")
            assert len(spaces) == 3
            async with httpx2.AsyncClient(base_url=sandbox.url) as admin:
                await admin.post("/_sandbox/faults", json={"body": "reset", "after_write": True})
                with pytest.raises(ApiError) as failure:
                    await client.call(
                        "create_project_task", {"spaceId": 1, "projectId": 1}, body={"taskTitle": "Exactly once"}
                    )
                stats = (await admin.get("/_sandbox/stats")).json()["data"]
        assert failure.value.outcome_unknown
        assert stats["operations"]["create_project_task"] == 1
        assert stats["requests"]["POST /v1/spaces/1/projects/1/tasks"] == 1
        assert [t.title for t in sandbox.app.state.sandbox.tasks.values()].count("Exactly once") == 1


# ---------------------------------------------------------------- JWTs from an OpenID issuer
class _Issuer:
    """A minimal OpenID issuer: discovery document and JWKS, served over TCP for PyJWKClient."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.server = SandboxServer(
            Starlette(
                routes=[
                    Route("/realms/astravue/.well-known/openid-configuration", self.discovery),
                    Route("/realms/astravue/protocol/openid-connect/certs", self.jwks),
                ]
            )
        )

    @property
    def issuer(self) -> str:
        return f"{self.server.url}/realms/astravue"

    async def discovery(self, _: Request) -> JSONResponse:
        return JSONResponse({"issuer": self.issuer, "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs"})

    async def jwks(self, _: Request) -> JSONResponse:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [jwk | {"kid": "k1", "alg": "RS256", "use": "sig"}]})

    def token(self, key: Any = None, kid: str = "k1", lifetime: int = 300, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": "someone", "iat": now, "exp": now + lifetime} | claims
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def issuer() -> Any:
    idp = _Issuer()
    with idp.server:
        yield idp


async def test_issuer_mode_validates_jwts(issuer: _Issuer) -> None:
    app = create_app(issuer=issuer.issuer)
    async with client_for(app, {"X-Org-Id": "1"}) as api:

        def bearer(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        await ok(api, "GET", "/v1/spaces", headers=bearer(issuer.token()))
        sofia = await ok(
            api,
            "POST",
            "/v1/tasks",
            json={"taskTitle": "Mine"},
            headers=bearer(issuer.token(email="sofia.rossi@northwind.example")),
        )
        assert sofia["createdBy"]["userId"] == 3  # a known email acts as that user
        cases = {
            "The access token has expired": issuer.token(lifetime=-60),
            "The access token is invalid: Invalid issuer": issuer.token(iss="http://evil.example"),
            "The access token is not a JWT": "opaque-token",
            "The access token's algorithm 'HS256' is not accepted": jwt.encode(
                {"iss": issuer.issuer, "exp": int(time.time()) + 60}, "secret-secret-secret-secret-32by", "HS256"
            ),
        }
        for message, token in cases.items():
            body = await fails(api, "GET", "/v1/spaces", 401, headers=bearer(token))
            assert body["message"] == message
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        body = await fails(api, "GET", "/v1/spaces", 401, headers=bearer(issuer.token(key=other)))
        assert body["message"].startswith("The access token is invalid")  # right kid, wrong signature
        body = await fails(api, "GET", "/v1/spaces", 401, headers=bearer(issuer.token(key=other, kid="k2")))
        assert body["message"].startswith("The access token's signing key is unknown")
        await fails(api, "GET", "/v1/spaces", 401, headers=bearer(SANDBOX_TOKEN))  # the fixed token is off
