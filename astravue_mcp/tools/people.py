"""People: who can be named as an owner (the API has no members endpoint; see ``directory.py``)."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from astravue_mcp.tools.directory import Directory, session_directory
from astravue_mcp.tools.registry import Out, bullet, quote, tool


class PersonOut(Out):
    id: int
    name: str
    email: str | None = None
    owns: int | None = None


class PeopleOut(Out):
    me: int | None = None
    items: list[PersonOut]
    skipped: list[str] | None = None

    def text(self) -> str:
        mine = next((p for p in self.items if p.id == self.me), None)
        head = f"{len(self.items)} people seen on tasks" + (f"; you are {mine.id} {quote(mine.name)}" if mine else "")
        lines = [head] + [f"skipped {s}" for s in self.skipped or []]
        return "\n".join(lines + [bullet(p.text()) for p in self.items])


def people_out(found: Directory) -> PeopleOut:
    people = sorted(found.people.values(), key=lambda p: (p.name.casefold(), p.user_id))
    return PeopleOut(
        me=found.me.user_id if found.me else None,
        items=[PersonOut(id=p.user_id, name=p.name, email=p.email, owns=p.owns or None) for p in people],
        skipped=found.skipped,
    )


@tool(("tasks", "insights"), "List people", "read")
async def list_people(ctx: Context) -> PeopleOut:
    """People seen on your tasks (id, name, email, tasks owned) and your id (me); owner arguments take any."""
    return people_out(await session_directory(ctx))
