"""Log in from inside a client session, when the client can open a URL for the person (URL elicitation).

The server never starts a login by itself: only when a tool call finds no usable login and the
connected client declares URL-mode elicitation does it offer the authorization URL. The person
signs in in their browser; the loopback callback runs in the server's task group, so the tool
call returns at once ("sign in, then call again") and a later call finds the stored login.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import anyio
import anyio.abc
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp_types import ElicitRequestURLParams

from astravue_mcp.auth.login import LoginError, LoginFlow
from astravue_mcp.config import Settings
from astravue_mcp.elicitation import answer_to, ask, can_ask, multi_round
from astravue_mcp.errors import AstravueError

log = logging.getLogger("astravue_mcp.auth")

SIGN_IN = "sign_in"
SIGN_IN_MESSAGE = "Sign in to Astravue to continue. The login is kept, so this is needed only once."
OPENED = "A sign-in to Astravue is open in your browser: finish it there, then call the tool again."
DECLINED = 'The sign-in was not opened. Run "astravue-mcp login" in a terminal, then call the tool again.'


class BrowserLogin:
    """At most one sign-in in flight per server process."""

    def __init__(self, settings: Settings, task_group: anyio.abc.TaskGroup) -> None:
        self.settings = settings
        self.task_group = task_group
        self._in_flight: anyio.CancelScope | None = None
        self._question: ElicitRequestURLParams | None = None
        """On 2026-07-28, the offer shown for the sign-in in flight: its answer comes with the next call."""
        self._idle = anyio.Event()

    async def offer(self, ctx: Any) -> str | None:
        """Offer the sign-in through the client; the message for the model, or None if the client cannot.

        On 2026-07-28 the offer spans two rounds of the tool call (``elicitation``): the first starts
        listening and raises the question, the client's retry brings the person's answer to it.
        """
        if not can_ask(ctx, "url") or not self.settings.client_id:
            return None
        if self._in_flight is not None:
            if self._question is not None and multi_round(ctx):
                answer = answer_to(ctx, SIGN_IN, self._question)
                if answer is not None:
                    return await self._answered(answer)
            return OPENED
        flow = LoginFlow(self.settings)
        elicitation_id = secrets.token_urlsafe(16)
        try:
            # Listen before showing the URL: a busy callback port is reported instead of a dead link.
            scope: anyio.CancelScope = await self.task_group.start(self._finish, flow, ctx, elicitation_id)
        except (AstravueError, LoginError) as exc:
            log.warning("Cannot offer a sign-in: %s", exc)
            return None
        question = ElicitRequestURLParams(
            message=SIGN_IN_MESSAGE, url=flow.authorization_url, elicitation_id=elicitation_id
        )
        if multi_round(ctx):
            self._question = question
            ask(ctx, SIGN_IN, question)
        try:
            result = await ctx.elicit_url(question.message, question.url, elicitation_id)
        except NoBackChannelError:
            await self._abandon(scope)
            return None
        except MCPError as exc:
            # The client refused or failed the request: the tool still answers with the terminal hint.
            log.warning("The client could not show the sign-in: %s", exc)
            await self._abandon(scope)
            return None
        return await self._answered(result)

    async def _answered(self, result: Any) -> str:
        if result.action == "accept":
            return OPENED
        if self._in_flight is not None:
            await self._abandon(self._in_flight)
        return DECLINED

    async def _abandon(self, scope: anyio.CancelScope) -> None:
        """Stop listening for a callback that will not come, and wait until the port is free again."""
        scope.cancel()
        await self._idle.wait()

    async def _finish(
        self,
        flow: LoginFlow,
        ctx: Any,
        elicitation_id: str,
        *,
        task_status: anyio.abc.TaskStatus[anyio.CancelScope],
    ) -> None:
        started = False
        self._idle = anyio.Event()
        with anyio.CancelScope() as scope:
            self._in_flight = scope
            try:
                async with flow.loopback() as callback:
                    task_status.started(scope)
                    started = True
                    with anyio.move_on_after(self.settings.login_timeout):
                        await flow.complete(await callback.wait())
                        log.warning("Signed in to Astravue through the client; the login is stored")
                        if not multi_round(ctx):  # 2026-07-28 has no channel outside a request
                            await ctx.session.send_elicit_complete(elicitation_id)
            except Exception as exc:
                if not started:
                    raise  # reported by offer(): nothing was shown to the person yet
                # A background task must never take the server down: say it, keep serving.
                log.warning("The sign-in through the client failed: %s", exc)
            finally:
                self._in_flight = self._question = None
                self._idle.set()
