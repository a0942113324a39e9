"""Each person's organisation, settled at their first tool call after signing in.

A deployment names the organisations its people work in (``ASTRAVUE_ORGS``; ``ASTRAVUE_ORG_ID`` is
the default). At a person's first tool call the server checks which of them their account opens.
One: that is theirs, no question. Several: they are asked, through form elicitation (mid-call up to
2025-11-25, across rounds on 2026-07-28), and the answer is kept in the shared state for every
replica until they sign in again. Until a client can ask (it declares no elicitation, or an older
revision over stateless HTTP has no way back to it) the person works in the default; declining
settles on it.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field, JsonValue, create_model

from astravue_mcp.elicitation import CannotAsk, ask_form, can_ask
from astravue_mcp.remote.grants import Users

QUESTION_KEY = "organisation"
QUESTION = (
    "Which Astravue organisation should this server work in for you? Your account can open several. "
    "The server remembers your choice until you sign in again."
)


def question(choices: dict[int, str], default: int) -> type[BaseModel]:
    """The form: one single-select field, each organisation titled with its name and id."""
    options: list[JsonValue] = [
        {"const": str(org), "title": name if name == str(org) else f"{name} ({org})"} for org, name in choices.items()
    ]
    field: Any = Field(str(default), title="Organisation", json_schema_extra={"oneOf": options})
    return create_model("OrganisationChoice", organisation=(str, field))


async def settle_org(ctx: Context, users: Users, user: str) -> None:
    """Make sure the person works in an organisation they chose or could only choose; ask at most once."""
    if users.has_chosen(user):
        return
    open_orgs = await users.open_orgs(user)
    if len(open_orgs) == 1:
        await users.choose(user, open_orgs[0])
        return
    if not open_orgs or not can_ask(ctx):
        return  # the default, for now: the API's refusal says the rest, a later client may ask
    default = users.settings.org_id if users.settings.org_id in open_orgs else open_orgs[0]
    assert default is not None
    choices = {org: name for org, name in users.settings.org_choices.items() if org in open_orgs}
    try:
        answer = await ask_form(ctx, QUESTION_KEY, QUESTION, question(choices, default))
    except CannotAsk:
        return
    picked = str((answer.content or {}).get(QUESTION_KEY, ""))
    if answer.action == "accept" and picked.isdigit() and int(picked) in choices:
        await users.choose(user, int(picked))
    elif answer.action == "decline":
        await users.choose(user, default)
