"""What a tool reaches through its request: the API client, and the person (to confirm a change)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import NoBackChannelError
from pydantic import BaseModel, Field

from astravue_mcp.api.limits import current_call
from astravue_mcp.errors import NotConfirmed
from astravue_mcp.state import state_of

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient


def api(ctx: Context) -> AstravueClient:
    """The API client for this request (the server's login, or the caller's in a multi-user server)."""
    return state_of(ctx).client_for(ctx)


class Confirmation(BaseModel):
    confirm: bool = Field(description="Yes, go ahead")


async def confirm(ctx: Context, what: str) -> None:
    """Ask the person before a delete or bulk change, when their client can show a form.

    Without form elicitation the call proceeds: the tool's destructiveHint already told the client.
    """
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        return
    try:
        result = await ctx.elicit(f"Confirm: {what}?", Confirmation)
    except NoBackChannelError:
        # A 2026-07-28 connection without a way to ask mid-call: same as a client without forms.
        return
    scope = current_call()
    if scope is not None:
        scope.restart()  # the limit counts the server's work, not the time a person takes to answer
    if result.action != "accept" or not result.data.confirm:
        raise NotConfirmed(f"Not done: the person did not confirm ({what}).")
