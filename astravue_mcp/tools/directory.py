"""People: who can be named as an owner, and which of them is "me".

The public API has no members endpoint and no current-user endpoint, so both answers are built
from what it does have. People are the users seen on what the login can see: task owners
(assignees) and task creators and editors, across every project plus the personal tasks, with
the ids, names and emails the API gives (people who own or created nothing visible are missing).
"Me" is the person among them whose email matches the login's identity (``identity.py``), else
whose full name matches, else the creator of the personal tasks (the API lists only your own).
The same scan gives the status labels each project uses and the priority labels.

Built once per session (one scan) and kept :data:`TTL` seconds in the session's memo;
:func:`resolve_owner` turns an id, ``"me"``, an email or a name into a user id, with an error
listing the candidates when a name matches several people or nobody.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio

from astravue_mcp.api import models
from astravue_mcp.errors import AstravueError, InvalidArguments
from astravue_mcp.identity import Identity, session_identity
from astravue_mcp.state import state_of
from astravue_mcp.tools.registry import quote

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

TTL = 600.0
"""Seconds a session keeps the people it saw before looking again (new members, renamed labels)."""
MEMO_KEY = "people"
BUILDING_KEY = "people: building"
ME = "me"
MAX_LISTED = 12
"""Candidates an error lists before saying how many more there are."""
MeBy = Literal["email", "name", "personal tasks"]
"""What picked out "me": the login's email, its name, or being the creator of the personal tasks."""


@dataclass
class Person:
    user_id: int
    name: str
    email: str | None = None
    owns: int = 0
    """Visible tasks this person owns (is assigned to)."""
    created: int = 0

    def describe(self) -> str:
        return f"{self.user_id} {quote(self.name)}" + (f" <{quote(self.email)}>" if self.email else "")


@dataclass
class Directory:
    people: dict[int, Person] = field(default_factory=dict)
    identity: Identity | None = None
    me: Person | None = None
    me_by: MeBy | None = None
    statuses: dict[int | None, list[str]] = field(default_factory=dict)
    """Status labels seen per project (None: personal tasks), in first-seen order."""
    priorities: list[str] = field(default_factory=list)
    projects: dict[int, str] = field(default_factory=dict)
    """Project id -> name, for the labels' text."""
    tasks: list[tuple[int, str]] = field(default_factory=list)
    """(id, title) of every task seen: what completes a task_id argument."""
    built_at: float = 0.0
    skipped: list[str] | None = None

    # ---------------------------------------------------------------- building
    @classmethod
    def from_tasks(
        cls, tasks: Iterable[models.Task], personal: Iterable[models.Task], identity: Identity | None
    ) -> Directory:
        found = cls(identity=identity, built_at=time.monotonic())
        personal = list(personal)
        for task in [*tasks, *personal]:
            found.tasks.append((task.task_id, task.task_title))
            for user in task.owners or []:
                found._see(user).owns += 1
            creator, editor = _user(task.created_by), _user(task.modified_by)
            if creator is not None:
                found._see(creator).created += 1
            if editor is not None:
                found._see(editor)
            found._label(task)
        creators = {u.user_id for u in map(_user, (t.created_by for t in personal)) if u is not None}
        found.me, found.me_by = found._match(identity, creators)
        return found

    def _see(self, user: models.User) -> Person:
        person = self.people.get(user.user_id)
        if person is None:
            person = self.people[user.user_id] = Person(user.user_id, user.name, user.email or None)
        elif person.email is None and user.email:
            person.email = user.email
        return person

    def _label(self, task: models.Task) -> None:
        if task.status is not None and task.status.status_name:
            seen = self.statuses.setdefault(task.project_id, [])
            if task.status.status_name not in seen:
                seen.append(task.status.status_name)
        label = task.priority.priority_label if task.priority is not None else ""
        if label and label not in self.priorities:
            self.priorities.append(label)

    def _match(self, identity: Identity | None, creators: set[int]) -> tuple[Person | None, MeBy | None]:
        if identity is not None and identity.email:
            email = identity.email.casefold()
            by_email = [p for p in self.people.values() if p.email and p.email.casefold() == email]
            if len(by_email) == 1:
                return by_email[0], "email"
        if identity is not None and identity.name:
            by_name = [p for p in self.people.values() if p.name.casefold() == identity.name.casefold()]
            if len(by_name) == 1:
                return by_name[0], "name"
        if len(creators) == 1:
            # Only your own personal tasks are listed, so their single creator is you.
            return self.people.get(next(iter(creators))), "personal tasks"
        return None, None

    def labels_text(self) -> str:
        """The status labels each project's tasks use and the priority labels, for ``astravue://labels``."""
        lines = [f"priorities: {', '.join(map(quote, self.priorities)) or '(none seen)'}", "statuses:"]
        for project_id, names in sorted(self.statuses.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
            where = (
                "personal tasks"
                if project_id is None
                else f"project {project_id} {quote(self.projects.get(project_id, ''))}"
            )
            lines.append(f"- {where.rstrip()}: {', '.join(map(quote, names))}")
        lines.append("Labels seen on tasks; a project may allow more (an invalid label's error lists them).")
        return "\n".join(lines)

    # ---------------------------------------------------------------- resolving
    def resolve(self, value: int | str) -> int:
        """The user id meant by an id, "me", an email or a (part of a) name; InvalidArguments otherwise."""
        if isinstance(value, int):
            return value
        text = value.strip()
        if text.isdigit():
            return int(text)
        if text.casefold() == ME:
            return self.me_id()
        if "@" in text:
            matches = [p for p in self.people.values() if p.email and p.email.casefold() == text.casefold()]
        else:
            matches = self.by_name(text)
        matches.sort(key=lambda p: (p.name, p.user_id))
        if len(matches) == 1:
            return matches[0].user_id
        if matches:
            raise InvalidArguments(
                f"Invalid arguments: {text!r} matches {len(matches)} people: {_listed(matches)}. "
                "Give the id or the email of the one you mean."
            )
        raise InvalidArguments(
            f"Invalid arguments: nobody called {text!r} owns or created a task you can see. "
            f"People seen: {_listed(sorted(self.people.values(), key=lambda p: p.name))}. "
            "Give an id, a name or an email of one of them."
        )

    def by_name(self, text: str) -> list[Person]:
        """People whose full name is ``text``, else whose name parts start with each of its words."""
        wanted = text.casefold()
        exact = [p for p in self.people.values() if p.name.casefold() == wanted]
        if exact:
            return exact
        words = wanted.split()
        return [
            p
            for p in self.people.values()
            if words and all(any(part.startswith(w) for part in p.name.casefold().split()) for w in words)
        ]

    def me_id(self) -> int:
        if self.me is not None:
            return self.me.user_id
        if self.identity is None:
            raise AstravueError(
                'Cannot tell who "me" is: the login carries no identity. Run "astravue-mcp login" again (it asks '
                "for the openid profile email scopes), or give your user id (see astravue_list_people)."
            )
        raise AstravueError(
            f'Cannot tell who "me" is: {self.identity.describe()} matches nobody who owns or created a task you '
            "can see. Give your user id instead (see astravue_list_people)."
        )


def _listed(people: list[Person]) -> str:
    shown = "; ".join(p.describe() for p in people[:MAX_LISTED])
    return shown + (f"; and {len(people) - MAX_LISTED} more" if len(people) > MAX_LISTED else "")


def _user(raw: Any) -> models.User | None:
    """A creator/editor as the API sent it (left unparsed on tasks); None when it is not a user object."""
    if isinstance(raw, models.User):
        return raw
    if isinstance(raw, dict) and ("userId" in raw or "id" in raw):
        try:
            return models.User.model_validate(raw)
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------- per session
async def session_directory(ctx: Context, refresh: bool = False) -> Directory:
    """The people (and labels) seen by this session's login: one scan, then kept for :data:`TTL` seconds."""
    from astravue_mcp.tools.scan import Filters, scan  # deferred: the scan engine imports our callers (a cycle)

    memo = state_of(ctx).memo_for(ctx)
    asked = time.monotonic()

    def usable() -> Directory | None:
        found: Directory | None = memo.get(MEMO_KEY)
        if found is None or not (found.built_at > asked if refresh else asked - found.built_at < TTL):
            return None
        return found

    if (cached := usable()) is not None:
        return cached
    # One scan at a time: the items of a bulk call that name owners ask at once, and would each scan.
    async with memo.setdefault(BUILDING_KEY, anyio.Lock()):
        if (cached := usable()) is not None:
            return cached
        identity = await session_identity(ctx)
        result = await scan(ctx, Filters())
        found = Directory.from_tasks(result.project_tasks, result.personal, identity)
        found.skipped = result.all_skipped()
        found.projects = {p.ref.project_id: p.ref.name for p in result.projects}
        memo[MEMO_KEY] = found
        return found


async def resolve_owner(ctx: Context, value: int | str) -> int:
    """The user id an owner argument means: an id as is; "me", an email or a name through the directory."""
    if isinstance(value, int):
        return value
    if value.strip().isdigit():
        return int(value.strip())
    return (await session_directory(ctx)).resolve(value)


async def owner_filter(ctx: Context, owner: int | str | None, mine: bool = False) -> int | None:
    """The user id a list filter means: ``mine`` is "me"; no owner, no filter."""
    value = "me" if mine else owner
    return None if value is None else await resolve_owner(ctx, value)


async def resolve_owners(ctx: Context, values: list[int | str] | None) -> list[int] | None:
    if values is None:
        return None
    return [await resolve_owner(ctx, v) for v in values]
