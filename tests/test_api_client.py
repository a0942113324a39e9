"""The HTTP choke point: headers, envelope, error mapping and which failures are retried.

Transport-level behaviour against a real server is covered with the sandbox's fault switch in
test_reliability.py; here a scripted transport pins each rule exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import httpx2
import pytest

from astravue_mcp.api.client import AstravueClient
from astravue_mcp.api.limits import BudgetSpent, CallScope, RateBudget
from astravue_mcp.auth.credentials import BearerAuth
from astravue_mcp.config import load_settings
from astravue_mcp.errors import ApiError, AuthError

pytestmark = pytest.mark.anyio


def ok(data: object) -> httpx2.Response:
    return httpx2.Response(
        200, json={"success": True, "message": "Operation completed successfully", "code": 200, "data": data}
    )


def client_with(
    handler: Callable[[httpx2.Request], httpx2.Response], **settings: object
) -> tuple[AstravueClient, list]:
    seen: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return handler(request)

    options = {"org_id": 7, "retry_budget": 5.0} | settings
    cfg = load_settings({}, api_url="http://api.test", **options)
    return AstravueClient(cfg, auth=BearerAuth("tok-123456", "test"), transport=httpx2.MockTransport(record)), seen


async def test_sends_org_and_bearer_and_unwraps_envelope() -> None:
    client, seen = client_with(lambda r: ok([{"spaceId": 1}]))
    assert await client.call("list_spaces") == [{"spaceId": 1}]
    assert seen[0].headers["X-Org-Id"] == "7"
    assert seen[0].headers["Authorization"] == "Bearer tok-123456"
    assert seen[0].url == "http://api.test/v1/spaces"


async def test_path_ids_and_query_parameters() -> None:
    client, seen = client_with(lambda r: ok({}))
    await client.call("list_project_tasks", {"spaceId": 2, "projectId": 3}, params={"pageSize": 5, "status": None})
    assert str(seen[0].url) == "http://api.test/v1/spaces/2/projects/3/tasks?pageSize=5"


async def test_success_false_in_a_200_is_an_error() -> None:
    client, _ = client_with(
        lambda r: httpx2.Response(200, json={"success": False, "message": "No such space", "code": 404})
    )
    with pytest.raises(ApiError) as caught:
        await client.call("get_space", {"spaceId": 9})
    assert caught.value.status == 404
    assert (
        str(caught.value)
        == "Space 9 was not found in org 7. Check the id with a list tool. Astravue said: No such space"
    )


async def test_field_errors_are_listed() -> None:
    body = {
        "success": False,
        "message": "Validation failed",
        "code": 400,
        "errors": [
            {"field": "taskTitle", "message": "must not be blank"},
            {"field": "completion", "message": "must be <= 100"},
        ],
    }
    client, _ = client_with(lambda r: httpx2.Response(400, json=body))
    with pytest.raises(ApiError) as caught:
        await client.call("create_task", body={})
    assert str(caught.value) == (
        "Astravue rejected the request to create task. Fix these fields: taskTitle: must not be blank; "
        "completion: must be <= 100."
    )
    assert caught.value.field_errors == [("taskTitle", "must not be blank"), ("completion", "must be <= 100")]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, "Your Astravue role does not allow you to delete space in org 7. Astravue said: Access Denied"),
        (409, "Astravue refused to delete space: Access Denied."),
        (404, "Space 4 was not found in org 7. Check the id with a list tool. Astravue said: Access Denied"),
    ],
)
async def test_status_mapping(status: int, expected: str) -> None:
    client, _ = client_with(
        lambda r: httpx2.Response(status, json={"success": False, "message": "Access Denied", "code": status})
    )
    with pytest.raises(
        ApiError, match="^" + expected.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.") + "$"
    ):
        await client.call("delete_space", {"spaceId": 4})


async def test_rejected_static_token_is_an_auth_error() -> None:
    client, _ = client_with(lambda r: httpx2.Response(401, json={}))
    with pytest.raises(AuthError, match="rejected the access token from test"):
        await client.call("list_spaces")


async def test_get_is_retried_on_503_then_succeeds() -> None:
    answers = iter([httpx2.Response(503), httpx2.Response(502), ok([])])
    client, seen = client_with(lambda r: next(answers))
    assert await client.call("list_spaces") == []
    assert len(seen) == 3


async def test_post_is_not_retried_on_503_and_outcome_is_unknown() -> None:
    client, seen = client_with(lambda r: httpx2.Response(503))
    with pytest.raises(ApiError) as caught:
        await client.call("create_space", body={"spaceName": "x"})
    assert len(seen) == 1
    assert caught.value.outcome_unknown
    assert "may or may not have been applied" in str(caught.value)


async def test_post_is_retried_when_connection_was_refused() -> None:
    calls = {"n": 0}

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx2.ConnectError("refused", request=request)
        return ok({"spaceId": 5})

    client, _ = client_with(handler)
    assert await client.call("create_space", body={}) == {"spaceId": 5}
    assert calls["n"] == 2


async def test_post_read_timeout_is_not_retried_and_says_outcome_unknown() -> None:
    calls = {"n": 0}

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        raise httpx2.ReadTimeout("slow", request=request)

    client, _ = client_with(handler)
    with pytest.raises(ApiError) as caught:
        await client.call("create_task", body={})
    assert calls["n"] == 1
    assert str(caught.value).startswith(
        "Could not create task: Astravue did not answer in time (no answer within 30 s). The outcome is unknown"
    )


async def test_delete_whose_first_answer_was_lost_counts_as_done() -> None:
    answers = iter([httpx2.Response(504), httpx2.Response(404, json={"success": False, "code": 404})])
    client, seen = client_with(lambda r: next(answers))
    assert await client.call("delete_space", {"spaceId": 3}) is None
    assert len(seen) == 2


LOST = "An earlier attempt was sent and got no definite answer. The change may or may not have been applied"


def lost_then(*later: Callable[[httpx2.Request], httpx2.Response]) -> Callable[[httpx2.Request], httpx2.Response]:
    """The first attempt is sent and its answer lost (read timeout); later ones answer in turn (the last repeats)."""
    answers = [None, *later]

    def handler(request: httpx2.Request) -> httpx2.Response:
        step = answers.pop(0) if len(answers) > 1 else answers[0]
        if step is None:
            raise httpx2.ReadTimeout("slow", request=request)
        return step(request)

    return handler


def refused(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("refused", request=request)


@pytest.mark.parametrize(
    ("operation", "then", "first_words"),
    [
        ("update_space", lambda r: httpx2.Response(429, headers={"Retry-After": "120"}), "Astravue's rate limit"),
        ("delete_space", lambda r: httpx2.Response(429), "Astravue's rate limit"),
        ("update_space", lambda r: httpx2.Response(404, json={"success": False, "code": 404}), "Space 4 was not"),
        ("update_space", lambda r: httpx2.Response(409, json={"success": False, "code": 409}), "Astravue refused"),
    ],
    ids=["429-long", "429-delete", "404", "409"],
)
async def test_a_write_whose_earlier_answer_was_lost_never_ends_in_a_definite_failure(
    operation: str, then: Callable[[httpx2.Request], httpx2.Response], first_words: str
) -> None:
    """Pinned bug: a retried write that ended on a 429, a 404 or a refused connection read as "not done"."""
    client, seen = client_with(lost_then(then), max_retries=2)
    with pytest.raises(ApiError) as caught:
        await client.call(operation, {"spaceId": 4}, body={"spaceName": "x"} if operation == "update_space" else None)
    assert len(seen) >= 2
    assert caught.value.outcome_unknown
    assert str(caught.value).startswith(first_words)
    assert LOST in str(caught.value)
    assert str(caught.value).endswith("before trying again, so nothing is done twice.")


async def test_a_refused_retry_after_a_lost_answer_says_the_outcome_is_unknown() -> None:
    client, seen = client_with(lost_then(refused), max_retries=2)
    with pytest.raises(ApiError) as caught:
        await client.call("delete_space", {"spaceId": 4})
    assert len(seen) == 3 and caught.value.outcome_unknown
    assert str(caught.value) == (
        "Could not delete space: the connection to Astravue failed (ConnectError). The outcome is unknown: the "
        "request may have reached Astravue. Read the current state (list or get it) before trying again, so nothing "
        "is done twice."
    )


async def test_a_login_failure_after_a_lost_answer_still_says_the_write_may_have_landed() -> None:
    client, _ = client_with(lost_then(lambda r: httpx2.Response(401)))
    with pytest.raises(AuthError) as caught:
        await client.call("update_space", {"spaceId": 4}, body={"spaceName": "x"})
    assert str(caught.value).startswith("Astravue rejected the access token from test. Set a fresh token there.")
    assert LOST in str(caught.value)


async def test_a_read_whose_answer_was_lost_ends_in_a_plain_error() -> None:
    client, _ = client_with(lost_then(lambda r: httpx2.Response(429, headers={"Retry-After": "120"})))
    with pytest.raises(ApiError) as caught:
        await client.call("get_space", {"spaceId": 4})
    assert str(caught.value) == "Astravue's rate limit was hit while trying to get space: retry after 120 s."
    assert not caught.value.outcome_unknown


async def test_short_retry_after_is_waited_out_long_one_reported() -> None:
    answers = iter([httpx2.Response(429, headers={"Retry-After": "0"}), ok([1])])
    client, _ = client_with(lambda r: next(answers))
    assert await client.call("list_spaces") == [1]
    client, seen = client_with(lambda r: httpx2.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(ApiError, match="rate limit was hit while trying to list spaces: retry after 120 s"):
        await client.call("list_spaces")
    assert len(seen) == 1


async def test_non_json_body_names_the_endpoint() -> None:
    client, _ = client_with(
        lambda r: httpx2.Response(200, text="<html>maintenance</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(
        ApiError, match=r"^Astravue answered GET /v1/spaces with a body that is not JSON \(text/html, 24"
    ):
        await client.call("list_spaces")


async def test_a_create_is_never_resent_after_a_429() -> None:
    """Pinned bug: a create was resent after a 429 with a short Retry-After (an API may have applied it)."""
    client, seen = client_with(lambda r: httpx2.Response(429, headers={"Retry-After": "0"}))
    with pytest.raises(ApiError, match="rate limit was hit while trying to create space: retry after 0 s"):
        await client.call("create_space", body={"spaceName": "Once"})
    assert [r.method for r in seen] == ["POST"]


async def test_rate_budget_blocks_beyond_the_window() -> None:
    budget = RateBudget(3, window=0.2)
    started = time.monotonic()
    for _ in range(4):
        await budget.acquire()
    assert time.monotonic() - started >= 0.19


async def test_rate_budget_waits_with_progress_and_never_past_its_bound() -> None:
    notes: list[tuple[float, float | None, str]] = []

    async def report(progress: float, total: float | None, message: str) -> None:
        notes.append((progress, total, message))

    budget = RateBudget(1, window=0.6, max_wait=1.0)
    await budget.acquire()
    started = time.monotonic()
    await budget.acquire(CallScope(30, report=report))  # a slot frees within the bound: waited out
    assert 0.5 <= time.monotonic() - started < 0.9
    assert notes == [(0.001, None, "waiting 1 s for the rate budget (1 requests/min)")]

    slow = RateBudget(1, window=30, max_wait=1.0)
    await slow.acquire()
    started = time.monotonic()
    with pytest.raises(BudgetSpent) as spent:  # it would not: refused at once with the time to retry
        await slow.acquire(CallScope(30))
    assert time.monotonic() - started < 0.1
    assert spent.value.retry_after == 30
    assert str(spent.value) == "the rate budget of 1 API requests a minute (ASTRAVUE_RATE_LIMIT) is spent"

    with pytest.raises(BudgetSpent, match=r"^the call's time limit of 0.5 s \(ASTRAVUE_CALL_TIMEOUT\) would pass"):
        short = RateBudget(1, window=0.8)
        await short.acquire()
        await short.acquire(CallScope(0.5))


async def test_rate_budget_serves_the_session_that_used_least_first() -> None:
    """Pinned bug: one session's queued requests made every other session wait behind them (FIFO)."""
    budget = RateBudget(4, window=0.6, max_wait=5)
    granted: list[tuple[str, float]] = []
    started = time.monotonic()

    async def take(session: str) -> None:
        await budget.acquire(CallScope(30, session=session))
        granted.append((session, time.monotonic() - started))

    for _ in range(4):
        await take("busy")
    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(take, "busy")
        await anyio.sleep(0.05)
        group.start_soon(take, "other")  # arrives last, but has used nothing
    order = [session for session, _ in granted[4:]]
    assert order[0] == "other", granted
    assert dict(granted)["other"] < 0.75  # in the first slot that freed, not a window later


async def test_waiting_behind_a_waiter_that_reports_progress_does_not_spin() -> None:
    """Pinned bug: a free slot that the waiter ahead had not taken yet (it was sending progress) made
    the next waiter loop without pausing: thousands of turns and a core's worth of CPU."""
    budget = RateBudget(1, window=0.2, max_wait=5)
    await budget.acquire()

    async def slow_report(*_: object) -> None:
        await anyio.sleep(0.5)

    cpu: list[float] = []

    async def behind() -> None:
        await anyio.sleep(0.25)  # the slot is free again; the waiter ahead is still sending progress
        started = time.process_time()
        await budget.acquire(CallScope(30, session="b"))
        cpu.append(time.process_time() - started)

    async with anyio.create_task_group() as group:
        group.start_soon(budget.acquire, CallScope(30, session="a", report=slow_report))
        group.start_soon(behind)
    assert cpu and cpu[0] < 0.1, cpu


async def test_a_success_of_the_wrong_shape_is_a_clear_tool_error() -> None:
    """`data: null` where a list belongs, or a task without its id: the model is told, nothing crashes."""
    from mcp.client import Client

    from astravue_mcp.server import build_server

    answers = {"/v1/spaces": ok({"unexpected": 1}), "/v1/tasks": ok({"taskTitle": "no id"})}
    transport = httpx2.MockTransport(lambda r: answers.get(r.url.path, ok(None)))
    settings = load_settings({}, api_url="http://api.test", org_id=1, access_token="tok-123456")
    async with Client(build_server(settings, transport=transport)) as client:
        listed = await client.call_tool("astravue_list_spaces", {})
        created = await client.call_tool("astravue_create_personal_task", {"title": "x"})
    assert listed.is_error
    assert listed.content[0].text == (
        "Astravue's answer had an unexpected shape (a list was expected, got dict). Run `astravue-mcp doctor`."
    )
    assert created.is_error
    assert created.content[0].text == (
        "Astravue's answer had an unexpected shape (taskId: Field required). Run `astravue-mcp doctor`. "
        "The change may have been applied: read the current state before trying again."
    )
