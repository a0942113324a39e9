"""Per-server state that tools reach through the request context (never a global).

``AppState`` is what the server's lifespan yields: the settings, where each request's API client
comes from (:class:`ClientSource`), the task group that background work such as a sign-in runs in,
and per-session memos. Tools reach it only through :func:`state_of`, and their client only through
:meth:`AppState.client_for`: the one place a multi-user server gives each caller a client of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import anyio

from astravue_mcp.config import Settings
from astravue_mcp.protocol import Peers

if TYPE_CHECKING:
    import anyio.abc
    import httpx2
    from mcp.server.mcpserver import Context

    from astravue_mcp.api.client import AstravueClient


class ClientSource(Protocol):
    """Where a request's API client comes from."""

    def client_for(self, ctx: Context) -> AstravueClient: ...

    async def aclose(self) -> None: ...


class LocalLogin:
    """One API client for the whole server, signed in with this machine's login (or a fixed token)."""

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.transport = transport
        self.client: AstravueClient | None = None

    def client_for(self, ctx: Context) -> AstravueClient:
        if self.client is None:
            from astravue_mcp.api.client import AstravueClient  # deferred: ~60 ms with its models; not for start-up
            from astravue_mcp.auth.credentials import auth_for  # deferred: the login and token store, likewise

            self.client = AstravueClient(self.settings, auth=auth_for(self.settings), transport=self.transport)
        return self.client

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


@dataclass
class AppState:
    settings: Settings
    clients: ClientSource
    task_group: anyio.abc.TaskGroup | None = None
    """Lives as long as the server: background work such as a sign-in's callback runs here."""
    memo: dict[str, Any] = field(default_factory=dict)
    """What the shared engines learnt (who "me" is, the people seen, where a task lives): read it via memo_for."""
    login: Any = field(default=None, init=False)
    peers: Peers = field(default_factory=Peers, init=False)
    """What each connection on a dated revision asked for (log level, subscriptions): see ``protocol``."""

    def client_for(self, ctx: Context) -> AstravueClient:
        """The API client for this request."""
        return self.clients.client_for(ctx)

    def memo_for(self, ctx: Context) -> dict[str, Any]:
        """What the shared engines learnt for this request's login; like the client, one per login."""
        del ctx  # one login per server in this mode; a multi-user server keeps one memo per caller
        return self.memo

    async def ready(self, ctx: Context) -> None:
        """Before a tool runs: what the caller must settle first (nothing here; a multi-user server asks for an org)."""
        return None

    async def offer_login(self, ctx: Context) -> str | None:
        """After a tool found no usable stored login: offer a sign-in through the client, if it can show one."""
        if self.settings.access_token is not None or self.task_group is None:
            return None  # a fixed token is the operator's to fix, not the person's to sign in for
        if self.login is None:
            from astravue_mcp.auth.elicit import BrowserLogin  # deferred: needed only when there is no login

            self.login = BrowserLogin(self.settings, self.task_group)
        return cast(str | None, await self.login.offer(ctx))

    async def aclose(self) -> None:
        await self.clients.aclose()


def lifespan(
    settings: Settings, clients: Callable[[], ClientSource], app_state: Callable[..., AppState] = AppState
) -> Callable[[Any], AbstractAsyncContextManager[AppState]]:
    """The server's lifespan: one state while it serves, with a task group for its background work."""

    @asynccontextmanager
    async def serve(_: Any) -> AsyncIterator[AppState]:
        async with anyio.create_task_group() as task_group:
            state = app_state(settings, clients(), task_group)
            try:
                yield state
            finally:
                task_group.cancel_scope.cancel()
                await state.aclose()

    return serve


def state_of(ctx: Context) -> AppState:
    """The state of the server handling this request."""
    state = ctx.request_context.lifespan_context
    if not isinstance(state, AppState):
        raise TypeError(f"expected the server's AppState as lifespan context, got {type(state).__name__}")
    return state
