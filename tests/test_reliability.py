"""Fault matrix: every failure the sandbox's fault switch can produce, for a read tool and a write tool.

The sandbox runs over real TCP (uvicorn on 127.0.0.1) so timeouts and dropped connections are the
real thing. For each fault the test pins what the model reads (retry or not, exact message) and
counts the requests the sandbox received: a create is never sent twice unless the first attempt
provably never reached the server, and a write whose answer was lost lands exactly once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceTemplateReference

from astravue_mcp.sandbox import SandboxServer
from tests.support import outcome_unknown, tcp_client

pytestmark = pytest.mark.anyio

READ = ("astravue_get_space", {"space_id": 1})
WRITE = ("astravue_create_space", {"name": "Matrix"})
READ_OK = {"id": 1, "name": "Product", "description": "Product development: apps and platform."}
SLOW = 0.8
"""Seconds a 'timeout' fault holds the answer: well past the client's read timeout (0.3 s)."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[Api]:
    admin = Api(sandbox)
    admin.reset()
    yield admin
    admin.reset()


class Api:
    """The sandbox's admin side: queue faults, count requests, look at the data."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.url = sandbox.url

    def reset(self) -> None:
        httpx2.post(f"{self.url}/_sandbox/reset", timeout=5).raise_for_status()

    def fault(self, **spec: Any) -> None:
        httpx2.post(f"{self.url}/_sandbox/faults", json=spec, timeout=5).raise_for_status()

    def requests(self, operation: str) -> int:
        stats = httpx2.get(f"{self.url}/_sandbox/stats", timeout=5).json()["data"]
        return int(stats["operations"].get(operation, 0))

    def spaces_named(self, name: str) -> int:
        return sum(1 for s in self.sandbox.app.state.sandbox.spaces.values() if s.name == name)


@dataclass
class Expect:
    """What a tool call under one fault must give."""

    ok: bool
    requests: int
    text: str = ""
    """The exact error the model reads (empty when the call succeeds)."""
    created: int = field(default=0)
    """For the write: how many spaces named 'Matrix' exist afterwards."""


HAD_PROBLEM_GET = (
    "Astravue had a problem (HTTP {}) while trying to get space. Try again; if it persists, run `astravue-mcp doctor`."
)
HAD_PROBLEM_POST = (
    "Astravue had a problem (HTTP {}) while trying to create space. The change may or may not have been applied: "
    "read the current state (list or get it) before trying again, so nothing is done twice."
)
READ_FAILED = "Could not get space: {}. Try again in a moment."
UNKNOWN_POST = (
    "Could not create space: {}. The outcome is unknown: the request may have reached Astravue. Read the current "
    "state (list or get it) before trying again, so nothing is done twice."
)

# fault spec -> (read expectation, write expectation). One fault each (count 1): a retry, when the
# client makes one, meets a healthy sandbox.
MATRIX: dict[str, tuple[dict[str, Any], Expect, Expect]] = {
    "500": (
        {"status": 500},
        Expect(False, 1, HAD_PROBLEM_GET.format(500)),
        Expect(False, 1, HAD_PROBLEM_POST.format(500)),
    ),
    "502": ({"status": 502}, Expect(True, 2), Expect(False, 1, HAD_PROBLEM_POST.format(502))),
    "503": ({"status": 503}, Expect(True, 2), Expect(False, 1, HAD_PROBLEM_POST.format(503))),
    "504": ({"status": 504}, Expect(True, 2), Expect(False, 1, HAD_PROBLEM_POST.format(504))),
    # The write's answer is held after the write happened: the create landed, the client cannot know.
    "timeout": (
        {"delay": SLOW, "after_write": True},
        Expect(True, 2),
        Expect(False, 1, UNKNOWN_POST.format("Astravue did not answer in time (no answer within 0.3 s)"), created=1),
    ),
    "reset": (
        {"body": "reset", "after_write": True},
        Expect(True, 2),
        Expect(False, 1, UNKNOWN_POST.format("the connection to Astravue failed (RemoteProtocolError)"), created=1),
    ),
    # A short Retry-After is waited out for a read; a create is never resent, since an API may have
    # applied it before answering 429 (the next case). Pinned bug: the create was resent and landed twice.
    "429 short Retry-After": (
        {"status": 429, "retry_after": 0.2},
        Expect(True, 2),
        Expect(False, 1, "Astravue's rate limit was hit while trying to create space: retry after 1 s."),
    ),
    "429 after the write was applied": (
        {"status": 429, "retry_after": 0.2, "after_write": True},
        Expect(True, 2),
        Expect(False, 1, "Astravue's rate limit was hit while trying to create space: retry after 1 s.", created=1),
    ),
    "429 long Retry-After": (
        {"status": 429, "retry_after": 120},
        Expect(False, 1, "Astravue's rate limit was hit while trying to get space: retry after 120 s."),
        Expect(False, 1, "Astravue's rate limit was hit while trying to create space: retry after 120 s."),
    ),
    "429 without Retry-After": (
        {"status": 429},
        Expect(False, 1, "Astravue's rate limit was hit while trying to get space: wait a minute before retrying."),
        Expect(False, 1, "Astravue's rate limit was hit while trying to create space: wait a minute before retrying."),
    ),
    # A proxy's HTML error page (502): retried for a read like any 502, never parsed.
    "html error page": ({"body": "html"}, Expect(True, 2), Expect(False, 1, HAD_PROBLEM_POST.format(502))),
    # Pinned bug: an empty 200 made the list tools crash with the SDK's bare "Error executing tool".
    "empty body": (
        {"body": "empty", "after_write": True},
        Expect(
            False,
            1,
            "Astravue answered GET /v1/spaces/{spaceId} with an empty body (HTTP 200). "
            "Try again; if it persists, run `astravue-mcp doctor`.",
        ),
        Expect(
            False,
            1,
            "Astravue answered POST /v1/spaces with an empty body (HTTP 200). The change may or may not have been "
            "applied: read the current state (list or get it) before trying again, so nothing is done twice.",
            created=1,
        ),
    ),
    "truncated json": (
        {"body": "truncated", "after_write": True},
        Expect(
            False,
            1,
            "Astravue answered GET /v1/spaces/{spaceId} with a body that is not JSON (application/json, N bytes). "
            "Try again; if it persists, run `astravue-mcp doctor`.",
        ),
        Expect(
            False,
            1,
            "Astravue answered POST /v1/spaces with a body that is not JSON (application/json, N bytes). The change "
            "may or may not have been applied: read the current state (list or get it) before trying again, so "
            "nothing is done twice.",
            created=1,
        ),
    ),
}


async def run(api: Api, tool: tuple[str, dict[str, Any]], **settings: object) -> tuple[Any, float]:
    async with tcp_client(api.url, **settings) as client:
        started = time.monotonic()
        with anyio.fail_after(15):
            result = await client.call_tool(*tool)
        return result, time.monotonic() - started


def check(result: Any, expect: Expect) -> None:
    if expect.ok:
        assert not result.is_error, result.content[0].text
    else:
        assert result.is_error, result.structured_content
        assert result.structured_content is None
        # A body's size depends on the seed data; the rest is exact.
        assert re.sub(r"\d+ bytes", "N bytes", result.content[0].text) == expect.text


@pytest.mark.parametrize("fault", list(MATRIX))
async def test_read_tool_under_fault(api: Api, fault: str) -> None:
    spec, expect, _ = MATRIX[fault]
    api.fault(**spec, operations=["get_space"])
    result, _ = await run(api, READ)
    check(result, expect)
    if expect.ok:
        assert result.structured_content == READ_OK
    assert api.requests("get_space") == expect.requests


@pytest.mark.parametrize("fault", list(MATRIX))
async def test_write_tool_under_fault(api: Api, fault: str) -> None:
    spec, _, expect = MATRIX[fault]
    api.fault(**spec, operations=["create_space"])
    result, _ = await run(api, WRITE)
    check(result, expect)
    if not expect.ok:
        # A write that failed says whether it may have happened: only a 429 is a definite "not done".
        assert outcome_unknown(expect.text) == (not fault.startswith("429"))
    assert api.requests("create_space") == expect.requests, "a create must never be sent twice"
    assert api.spaces_named("Matrix") == expect.created


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ({"status": 503}, HAD_PROBLEM_GET.format(503)),
        ({"body": "html"}, HAD_PROBLEM_GET.format(502)),
        ({"delay": SLOW}, READ_FAILED.format("Astravue did not answer in time (no answer within 0.3 s)")),
        ({"body": "reset"}, READ_FAILED.format("the connection to Astravue failed (RemoteProtocolError)")),
    ],
    ids=["503", "html", "timeout", "reset"],
)
async def test_persistent_fault_on_a_read_stops_after_max_retries(api: Api, spec: dict[str, Any], text: str) -> None:
    api.fault(**spec, count=50, operations=["get_space"])
    result, _ = await run(api, READ)
    check(result, Expect(False, 3, text))
    assert api.requests("get_space") == 3  # the first try and max_retries=2 retries


async def test_retries_stop_at_the_time_budget_whatever_the_count(api: Api) -> None:
    api.fault(delay=SLOW, count=50, operations=["get_space"])
    result, elapsed = await run(api, READ, max_retries=10, retry_budget=1.0)
    assert result.is_error
    assert "did not answer in time" in result.content[0].text
    # Budget 1 s: a try that starts before it ends may still take its 0.3 s read timeout.
    assert elapsed < 2.5
    assert api.requests("get_space") <= 3


async def test_an_empty_answer_to_a_list_is_an_error_not_a_crash(api: Api) -> None:
    api.fault(body="empty", operations=["list_spaces"])
    result, _ = await run(api, ("astravue_list_spaces", {}))
    assert result.content[0].text == (
        "Astravue answered GET /v1/spaces with an empty body (HTTP 200). "
        "Try again; if it persists, run `astravue-mcp doctor`."
    )


async def test_update_and_delete_are_retried_and_land_once(api: Api) -> None:
    api.fault(status=503, operations=["update_space"])
    result, _ = await run(api, ("astravue_update_space", {"space_id": 2, "name": "Renamed"}))
    assert result.structured_content["name"] == "Renamed"
    assert api.requests("update_space") == 2

    # The delete happens, its answer is lost, the retry finds nothing: that is success, not a 404.
    api.fault(body="reset", after_write=True, operations=["delete_space"])
    result, _ = await run(api, ("astravue_delete_space", {"space_id": 3}))
    assert not result.is_error, result.content[0].text
    assert result.structured_content == {"deleted": "space 3"}
    assert api.requests("delete_space") == 2
    assert 3 not in api.sandbox.app.state.sandbox.spaces


@pytest.mark.parametrize(
    ("tool", "operation", "landed"),
    [
        (("astravue_update_space", {"space_id": 2, "name": "Renamed"}), "update_space", "renamed"),
        (("astravue_delete_space", {"space_id": 3}), "delete_space", "deleted"),
    ],
    ids=["update", "delete"],
)
async def test_a_write_whose_answer_was_lost_then_rate_limited_says_it_may_have_landed(
    api: Api, tool: tuple[str, dict[str, Any]], operation: str, landed: str
) -> None:
    """Pinned bug (the soak's rare "create yes, delete no"): the write lands, its answer is lost, the
    retry meets a 429 without Retry-After, and the model was told a plain "rate limit, not done"."""
    api.fault(delay=SLOW, after_write=True, operations=[operation])
    api.fault(status=429, operations=[operation])
    result, _ = await run(api, tool)
    assert result.is_error
    assert api.requests(operation) == 2
    text = result.content[0].text
    assert text.startswith(f"Astravue's rate limit was hit while trying to {operation.replace('_', ' ')}")
    assert outcome_unknown(text), text
    spaces = api.sandbox.app.state.sandbox.spaces
    assert (spaces[2].name == "Renamed") if landed == "renamed" else (3 not in spaces)


class RefuseFirst(httpx2.AsyncBaseTransport):
    """The network refuses the first ``refusals`` connections, then lets requests through."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.real = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.refusals > 0:
            self.refusals -= 1
            raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_a_create_is_retried_only_when_the_connection_was_refused(api: Api) -> None:
    from astravue_mcp.config import load_settings
    from astravue_mcp.server import build_server

    def client(refusals: int) -> Client:
        settings = load_settings({}, toolsets="all", max_retries=2, retry_budget=5, rate_limit=100_000)
        return Client(build_server(settings.sandboxed(api.url), transport=RefuseFirst(refusals)))

    async with client(1) as mcp:
        result = await mcp.call_tool(*WRITE)
    assert not result.is_error, result.content[0].text
    assert api.requests("create_space") == 1 and api.spaces_named("Matrix") == 1

    async with client(10) as mcp:
        result = await mcp.call_tool(*WRITE)
    assert result.content[0].text == (
        "Could not create space: the connection to Astravue failed (ConnectError). Try again in a moment."
    )
    assert api.requests("create_space") == 1 and api.spaces_named("Matrix") == 1


async def test_nothing_listens_gives_a_clear_error_in_bounded_time() -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with tcp_client(f"http://127.0.0.1:{port}") as client:
        with anyio.fail_after(10):
            result = await client.call_tool(*READ)
    assert result.content[0].text == (
        "Could not get space: the connection to Astravue failed (ConnectError). Try again in a moment."
    )


async def test_a_failing_call_does_not_disturb_concurrent_ones(api: Api) -> None:
    api.fault(status=500, count=1000, operations=["get_space"])
    results: dict[str, list[bool]] = {"get_space": [], "list_spaces": []}

    async with tcp_client(api.url) as client:

        async def one(tool: str, args: dict[str, Any]) -> None:
            result = await client.call_tool(tool, args)
            results[tool.removeprefix("astravue_")].append(result.is_error)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(one, *READ)
                    tg.start_soon(one, "astravue_list_spaces", {})
        after = await client.call_tool("astravue_list_spaces", {})
    assert results["get_space"] == [True] * 20
    assert results["list_spaces"] == [False] * 20
    assert not after.is_error


async def test_tool_failures_reach_the_client_as_log_notifications(api: Api) -> None:
    from astravue_mcp.config import load_settings
    from astravue_mcp.server import build_server

    received: list[Any] = []

    async def on_log(params: Any) -> None:
        received.append(params)

    api.fault(status=500, operations=["get_space"])
    server = build_server(load_settings({}, toolsets="all", max_retries=0).sandboxed(api.url))
    async with Client(server, logging_callback=on_log, log_level="debug") as client:
        result = await client.call_tool(*READ)
    assert result.is_error
    assert [(p.level, p.data) for p in received] == [("warning", f"astravue_get_space: {HAD_PROBLEM_GET.format(500)}")]


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, "Astravue rejected the request to get space as invalid. Astravue said: Simulated fault (HTTP 400)"),
        (403, "Your Astravue role does not allow you to get space in org 1. Astravue said: Simulated fault (HTTP 403)"),
        (409, "Astravue refused to get space: Simulated fault (HTTP 409)."),
        (422, "Astravue refused to get space: Simulated fault (HTTP 422)."),
    ],
)
async def test_client_errors_are_explained_and_not_retried(api: Api, status: int, text: str) -> None:
    api.fault(status=status, operations=["get_space"])
    result, _ = await run(api, READ)
    check(result, Expect(False, 1, text))
    assert api.requests("get_space") == 1


async def test_fan_out_stays_within_the_rate_budget(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cross-project search makes many requests; the budget spaces them out instead of failing."""
    from astravue_mcp.api import client as client_module

    window = 0.5
    original = client_module.RateBudget.__init__
    monkeypatch.setattr(
        client_module.RateBudget,
        "__init__",
        lambda self, per_minute, window_=window: original(self, per_minute, window_),
    )
    sent: list[float] = []

    class Stamp(httpx2.AsyncBaseTransport):
        def __init__(self) -> None:
            self.real = httpx2.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            sent.append(time.monotonic())
            return await self.real.handle_async_request(request)

    from astravue_mcp.config import load_settings
    from astravue_mcp.server import build_server

    settings = load_settings({}, toolsets="all", rate_limit=4).sandboxed(api.url)
    async with Client(build_server(settings, transport=Stamp())) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("astravue_find_tasks", {"query": "a"})
    assert not result.is_error, result.content[0].text
    assert len(sent) > 4  # more requests than one window allows
    busiest = max(sum(1 for t in sent if start <= t < start + window * 0.95) for start in sent)
    assert busiest <= 4


async def test_the_embedded_sandbox_has_no_rate_budget_unless_settings_set_one() -> None:
    """Pinned bug: `serve --sandbox` made the 101st call of a minute wait ~60 s for a budget no real API needs.

    A test that sets ``rate_limit`` still gets its budget (test_fan_out_stays_within_the_rate_budget).
    """
    from tests.support import sandbox_client

    async with sandbox_client() as client:
        with anyio.fail_after(20):
            for _ in range(105):
                assert not (await client.call_tool(*READ)).is_error


# ---------------------------------------------------------------- the time limit of a tool call
SEARCH = ("astravue_find_tasks", {"query": "a"})


async def timed_search(
    api: Api, fault: dict[str, Any], operations: tuple[str, ...] = ("list_project_tasks",), **settings: object
) -> tuple[Any, float]:
    """The search under ``fault``, timed from the call (its tool already built by an earlier call)."""
    async with tcp_client(api.url, read_timeout=30, **settings) as client:
        assert not (await client.call_tool(*SEARCH)).is_error
        api.fault(**fault, operations=list(operations))
        started = time.monotonic()
        result = await client.call_tool(*SEARCH)
        return result, time.monotonic() - started


async def test_a_fan_out_stops_at_the_calls_time_limit_and_says_what_it_skipped(api: Api) -> None:
    """Pinned bug: one slow endpoint made a search take ~projects/concurrency x the read timeout."""
    result, elapsed = await timed_search(api, {"delay": 5, "count": 2}, call_timeout=1.5)  # two projects: late
    assert elapsed < 1.8  # the limit, plus scheduling latency on a loaded machine
    assert not result.is_error, result.content[0].text
    (skipped,) = result.structured_content["skipped"]
    assert re.fullmatch(
        r"2 projects \(\d, \d\): Could not list project tasks: Astravue did not answer in time \(no answer in the "
        r"1\.\d s left under the call's time limit of 1\.5 s \(ASTRAVUE_CALL_TIMEOUT\)\)\. Try again in a moment\.",
        skipped,
    ), skipped
    assert result.structured_content["projects"] == 5 and result.structured_content["items"]


async def test_a_fan_out_where_nothing_succeeded_is_an_error(api: Api) -> None:
    """Pinned bug: every project failed and the answer was 'isError: false, 0 of 0 task(s)'."""
    # The search covers the projects and the personal tasks: both are slow.
    slow = ("list_project_tasks", "list_tasks")
    result, elapsed = await timed_search(api, {"delay": 5, "count": 100}, slow, call_timeout=1.0)
    assert elapsed < 1.3  # the limit, plus scheduling latency on a loaded machine
    assert result.is_error
    text = result.content[0].text
    assert text.startswith("Could not read any of the 5 project(s) in scope:\n- personal tasks: ")
    assert "\n- 5 projects (1, 2, 3, 4, 5): " in text
    assert "the call's time limit of 1 s (ASTRAVUE_CALL_TIMEOUT)" in text


async def test_retries_and_a_slow_read_end_at_the_calls_time_limit(api: Api) -> None:
    """One slow answer plus a 503 retry took 38 s; now the whole call ends at its limit."""
    api.fault(delay=5, count=50, operations=["get_space"])
    result, elapsed = await run(api, READ, call_timeout=1.0, read_timeout=30, retry_budget=20, max_retries=3)
    assert elapsed < 1.3  # the tool is built on this first call, before its limit starts
    assert result.content[0].text.startswith("Could not get space: Astravue did not answer in time (no answer in the ")
    assert api.requests("get_space") == 1


async def test_waiting_for_the_rate_budget_sends_progress(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned bug: a call that waited for the budget sent nothing, even when the client asked for progress."""
    from astravue_mcp.api import limits

    original = limits.RateBudget.__init__
    monkeypatch.setattr(
        limits.RateBudget, "__init__", lambda self, per_minute, window=1.0, **kw: original(self, per_minute, window)
    )
    notes: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append((progress, total, message))

    async with tcp_client(api.url, rate_limit=1) as client:
        assert not (await client.call_tool(*READ)).is_error
        started = time.monotonic()
        result = await client.call_tool(*READ, progress_callback=on_progress)
        assert not result.is_error
        assert 0.8 < time.monotonic() - started < 1.5
    assert notes == [(0.001, None, "waiting 1 s for the rate budget (1 requests/min)")]


async def test_a_spent_budget_is_an_error_with_the_time_to_retry_not_a_silent_wait(api: Api) -> None:
    async with tcp_client(api.url, rate_limit=1) as client:
        assert not (await client.call_tool(*READ)).is_error
        started = time.monotonic()
        result = await client.call_tool(*READ)
        assert time.monotonic() - started < 0.5
    assert result.is_error
    assert result.content[0].text == (
        "Could not get space, not sent: the rate budget of 1 API requests a minute (ASTRAVUE_RATE_LIMIT) is spent. "
        "Retry in 60 s."
    )


async def test_owner_names_in_one_bulk_call_scan_the_workspace_once(api: Api) -> None:
    """Pinned bug: each item naming an owner started its own whole-workspace scan, all at once."""
    from astravue_mcp.config import load_settings
    from astravue_mcp.server import build_server

    settings = load_settings({}, toolsets="all").sandboxed(api.url)
    tasks = [{"title": f"Item {n}", "owner_ids": ["Sofia Rossi"]} for n in range(4)]
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("astravue_bulk_create_tasks", {"space_id": 1, "project_id": 1, "tasks": tasks})
    assert not result.is_error and result.structured_content["succeeded"] == 4, result.content[0].text
    assert api.requests("list_spaces") == 1


# ---------------------------------------------------------------- the limit for resources, completion, prompts
# Pinned bug: these ran outside the call's limit (no CallScope), so a scan behind a resource, a
# completion or a prompt's name lookup waited the full read timeout per request, with retries.
SLOW_SCAN = ("list_project_tasks", "list_tasks")


async def limited(api: Api, fault: dict[str, Any], operations: tuple[str, ...], action: Any) -> tuple[Any, float]:
    """``action(client)`` under ``fault``, timed, on a server whose calls have a limit of 1 s."""
    async with tcp_client(api.url, call_timeout=1.0, read_timeout=30, retry_budget=20) as client:
        await client.list_resources()  # the server is up and its session open before the clock starts
        api.fault(**fault, operations=list(operations))
        started = time.monotonic()
        with anyio.fail_after(4):  # without the limit each would wait out the 3 s delay
            try:
                outcome = await action(client)
            except MCPError as exc:
                outcome = exc
        return outcome, time.monotonic() - started


async def test_a_resource_that_scans_the_workspace_ends_at_the_calls_time_limit(api: Api) -> None:
    result, elapsed = await limited(
        api, {"delay": 3, "count": 100}, SLOW_SCAN, lambda c: c.read_resource("astravue://people")
    )
    assert elapsed < 1.5  # the limit (the tool areas load on this first read), plus scheduling latency
    assert isinstance(result, MCPError)
    text = result.error.message
    assert text.startswith("Could not read any of the 5 project(s) in scope:\n- personal tasks: "), text
    assert "the call's time limit of 1 s (ASTRAVUE_CALL_TIMEOUT)" in text


async def test_a_project_resource_ends_at_the_calls_time_limit_with_the_reason(api: Api) -> None:
    uri = "astravue://spaces/1/projects/1"
    result, elapsed = await limited(api, {"delay": 3, "count": 100}, ("get_project",), lambda c: c.read_resource(uri))
    assert elapsed < 1.5
    assert isinstance(result, MCPError)
    assert result.error.message.startswith("Could not get project: Astravue did not answer in time (no answer in the ")
    assert "s left under the call's time limit of 1 s (ASTRAVUE_CALL_TIMEOUT))" in result.error.message


async def test_a_prompts_name_lookup_ends_at_the_calls_time_limit(api: Api) -> None:
    result, elapsed = await limited(
        api,
        {"delay": 3, "count": 100},
        ("list_spaces",),
        lambda c: c.get_prompt("project_status_report", {"space_id": "Product"}),
    )
    assert elapsed < 1.5
    assert isinstance(result, MCPError)
    assert result.error.message.startswith("Prompt project_status_report: Could not list spaces: Astravue did not")
    assert "the call's time limit of 1 s (ASTRAVUE_CALL_TIMEOUT)" in result.error.message


async def test_completion_ends_at_the_calls_time_limit(api: Api) -> None:
    ref = ResourceTemplateReference(type="ref/resource", uri="astravue://spaces/{space_id}/projects")
    result, elapsed = await limited(
        api, {"delay": 3, "count": 100}, ("list_spaces",), lambda c: c.complete(ref, {"name": "space_id", "value": ""})
    )
    assert elapsed < 1.5
    assert result.completion.values == []  # a convenience: a failed lookup is no suggestions


async def test_work_beyond_the_api_is_cut_at_the_limit_with_an_actionable_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backstop: what does not wait on the API client (here the login's identity) is cancelled."""
    from astravue_mcp import resources
    from tests.support import sandbox_client

    async def stuck(ctx: Any) -> None:
        await anyio.sleep(30)

    monkeypatch.setattr(resources, "session_identity", stuck)
    async with sandbox_client(call_timeout=0.5) as client:
        started = time.monotonic()
        with anyio.fail_after(4), pytest.raises(MCPError) as caught:
            await client.read_resource("astravue://me")
        assert time.monotonic() - started < 0.9
    assert caught.value.error.message == (
        "Not finished: the call's time limit of 0.5 s (ASTRAVUE_CALL_TIMEOUT) was reached. Try a narrower request."
    )
