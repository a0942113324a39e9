"""Fairness between HTTP clients that share one login's rate budget, through the real Streamable HTTP app.

The app the CLI serves (`create_http_app`) runs under uvicorn on 127.0.0.1 in a thread, against
the sandbox over TCP, with real MCP clients: two handshake-era sessions, and 2026-07-28 clients,
whose requests carry no session at all. The budget's window is shortened to seconds (the setting
is per minute) so that a test can spend it. One greedy client queues many calls at once; another
client's call must go out in the next window, not after the greedy client's whole queue.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import httpx2
import pytest
import uvicorn
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from astravue_mcp.api import client as client_module
from astravue_mcp.config import Settings, load_settings
from astravue_mcp.http_app import create_http_app
from astravue_mcp.sandbox import SandboxServer
from astravue_mcp.server import build_server
from tests.test_stdio_e2e import free_port

pytestmark = pytest.mark.anyio

RATE = 3
"""Requests per window."""
WINDOW = 1.5
"""Seconds of the budget's window (60 in production)."""
GREEDY = 3 * RATE
"""Calls the greedy client fires at once: three windows' worth."""
MODERN = "2026-07-28"


class Stamp(httpx2.AsyncBaseTransport):
    """The real network; remembers the path of every API request, in the order they went out."""

    def __init__(self) -> None:
        self.real = httpx2.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.paths.append(request.url.path)
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@contextmanager
def http_server(settings: Settings, transport: httpx2.AsyncBaseTransport) -> Iterator[str]:
    """The CLI's HTTP app for ``settings`` on a free loopback port, until the block ends; yields the MCP URL."""
    port = free_port()
    app = create_http_app(build_server(settings, transport=transport), settings, port=port)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"astravue-http-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the HTTP app did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def budgeted(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Stamp]]:
    """An HTTP server whose shared budget is RATE requests per WINDOW seconds."""
    original = client_module.RateBudget.__init__
    monkeypatch.setattr(
        client_module.RateBudget, "__init__", lambda self, per_minute: original(self, per_minute, WINDOW)
    )
    stamp = Stamp()
    settings = load_settings({}, toolsets="all", rate_limit=RATE, call_timeout=30).sandboxed(sandbox.url)
    with http_server(settings, stamp) as url:
        yield url, stamp


FORGER = "2026-07-28, a made-up session id on every request"


async def made_up_session(request: httpx2.Request) -> None:
    request.headers["mcp-session-id"] = uuid.uuid4().hex


@asynccontextmanager
async def connect(url: str, mode: str, name: str) -> AsyncIterator[Client]:
    """An MCP client over real HTTP: ``legacy`` opens a session, 2026-07-28 sends every request on its own."""
    hooks = {"request": [made_up_session]} if mode == FORGER else {}
    async with httpx2.AsyncClient(event_hooks=hooks, timeout=30) as http:
        transport = streamable_http_client(url, http_client=http)
        mode = MODERN if mode == FORGER else mode
        async with Client(transport, mode=mode, client_info=Implementation(name=name, version="1")) as client:
            yield client


async def race(url: str, stamp: Stamp, greedy_mode: str, other_mode: str) -> int:
    """The greedy client queues GREEDY reads of space 1; then the other client reads space 2.

    Returns the position of the other client's request among all API requests sent.
    """
    failures: list[str] = []

    async def call(client: Client, space_id: int) -> None:
        result = await client.call_tool("astravue_get_space", {"space_id": space_id})
        if result.is_error:
            failures.append(result.content[0].text)

    async with connect(url, greedy_mode, "greedy") as greedy, connect(url, other_mode, "other") as other:
        stamp.paths.clear()
        with anyio.fail_after(40):
            async with anyio.create_task_group() as tg:
                for _ in range(GREEDY):
                    tg.start_soon(call, greedy, 1)
                # The first window is spent and the rest of the greedy calls wait in the budget's queue.
                while len(stamp.paths) < RATE:
                    await anyio.sleep(0.02)
                await anyio.sleep(WINDOW / 3)
                await call(other, 2)
    assert failures == []
    assert stamp.paths.count("/v1/spaces/1") == GREEDY and stamp.paths.count("/v1/spaces/2") == 1
    return stamp.paths.index("/v1/spaces/2")


async def test_a_greedy_session_does_not_starve_another_session(budgeted: tuple[str, Stamp]) -> None:
    position = await race(*budgeted, greedy_mode="legacy", other_mode="legacy")
    # Served as soon as the second window opens (at worst after that window's other takers), not
    # behind the greedy session's six queued calls (position 9 in arrival order).
    assert position < 2 * RATE, budgeted[1].paths


async def test_a_greedy_sessionless_client_is_one_party_not_many(budgeted: tuple[str, Stamp]) -> None:
    """Pinned bug: at 2026-07-28 every request was its own party with nothing used yet, so a client
    firing many requests at once went ahead of everyone who came after it."""
    position = await race(*budgeted, greedy_mode=MODERN, other_mode=MODERN)
    assert position < 2 * RATE, budgeted[1].paths


async def test_a_sessionless_client_and_a_session_share_fairly(budgeted: tuple[str, Stamp]) -> None:
    position = await race(*budgeted, greedy_mode=MODERN, other_mode="legacy")
    assert position < 2 * RATE, budgeted[1].paths


async def test_a_made_up_session_header_does_not_make_a_sessionless_client_many(budgeted: tuple[str, Stamp]) -> None:
    """Pinned bug: the session header was trusted on 2026-07-28 requests, where nothing checks it."""
    position = await race(*budgeted, greedy_mode=FORGER, other_mode=MODERN)
    assert position < 2 * RATE, budgeted[1].paths
