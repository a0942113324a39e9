"""Per-server state that tools reach through the request context (never a global).

``AppState`` is what the server's lifespan yields: the settings, the API client (created on the
first call that needs it) and the task group that background work such as a sign-in runs in.
Tools reach it only through :func:`state_of`; the client a request uses comes from
:meth:`AppState.client_for`, the one place a multi-user server would pick the caller's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import anyio.abc
import httpx2
from mcp.server.mcpserver import Context

from astravue_mcp.config import Settings

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient


@dataclass
class AppState:
    settings: Settings
    transport: httpx2.AsyncBaseTransport | None = None
    task_group: anyio.abc.TaskGroup | None = None
    """Lives as long as the server: background work such as a sign-in's callback runs here."""
    memo: dict[str, Any] = field(default_factory=dict)
    """Per-session answers of the shared engines (who "me" is, the people seen, where a task lives)."""
    client: AstravueClient | None = field(default=None, init=False)
    login: Any = field(default=None, init=False)

    def client_for(self, ctx: Context) -> AstravueClient:
        """The API client for this request: the server's own login (one client, made on first use)."""
        del ctx  # one login per server in this mode; the request is the seam for per-caller clients
        if self.client is None:
            # Deferred: the client and its wire models cost ~50 ms to import, which start-up does not need.
            from astravue_mcp.api.client import AstravueClient
            from astravue_mcp.auth import auth_for

            self.client = AstravueClient(self.settings, auth=auth_for(self.settings), transport=self.transport)
        return self.client

    async def offer_login(self, ctx: Context) -> str | None:
        """After a tool found no usable stored login: offer a sign-in through the client, if it can show one."""
        if self.settings.access_token is not None or self.task_group is None:
            return None  # a fixed token is the operator's to fix, not the person's to sign in for
        if self.login is None:
            # Deferred: the sign-in flow (and its HTTP callback server) is needed only without a login.
            from astravue_mcp.auth.elicit import BrowserLogin

            self.login = BrowserLogin(self.settings, self.task_group)
        return cast(str | None, await self.login.offer(ctx))

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def state_of(ctx: Context) -> AppState:
    """The state of the server handling this request."""
    state = ctx.request_context.lifespan_context
    if not isinstance(state, AppState):
        raise TypeError(f"expected the server's AppState as lifespan context, got {type(state).__name__}")
    return state
