"""What a tool reaches through its request: the API client, and the person (to confirm a change)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from astravue_mcp.api.limits import current_call
from astravue_mcp.elicitation import CannotAsk, accepted, ask_form, can_ask, unknown_client
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

    A client that declares no form elicitation is not asked: the tool's destructiveHint already
    told it. A client that declares it is always asked (on 2026-07-28 across two rounds of the
    call), and the change is refused when the question cannot be put, or when the server cannot
    know whether the client would answer (stateless HTTP on a dated revision).
    """
    cannot_ask = NotConfirmed(
        f"Not done ({what}): it needs the person's confirmation, and this connection cannot ask mid-call "
        "(stateless HTTP before protocol 2026-07-28). Use a client that speaks 2026-07-28, or stdio."
    )
    if not can_ask(ctx):
        if unknown_client(ctx):
            raise cannot_ask
        return
    try:
        answer = await ask_form(ctx, "confirm", f"Confirm: {what}?", Confirmation)
    except CannotAsk:
        raise cannot_ask from None
    scope = current_call()
    if scope is not None:
        scope.restart()  # the limit counts the server's work, not the time a person takes to answer
    if not accepted(answer, "confirm"):
        raise NotConfirmed(f"Not done: the person did not confirm ({what}).")
