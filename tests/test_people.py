"""People resolution: who is seen on tasks, which of them is "me", and names/emails turned into ids."""

from __future__ import annotations

import pytest

from astravue_mcp.api import models
from astravue_mcp.config import SANDBOX_IDENTITY
from astravue_mcp.errors import AstravueError, InvalidArguments
from astravue_mcp.identity import Identity
from astravue_mcp.sandbox import views
from astravue_mcp.sandbox.store import Store
from astravue_mcp.tools.directory import Directory


def seeded() -> tuple[list[models.Task], list[models.Task]]:
    """The sandbox's tasks as the API sends them: (project tasks, the current user's personal tasks)."""
    store = Store()
    wire = {row.task_id: models.Task.model_validate(views.task(store, row)) for row in store.tasks.values()}
    project = [t for t in wire.values() if t.project_id is not None]
    personal = [t for t in wire.values() if t.project_id is None]
    return project, personal


SANDBOX_ME = Identity.from_claims(SANDBOX_IDENTITY, "sandbox")


def test_people_seen_on_tasks_with_ids_names_and_emails() -> None:
    project, personal = seeded()
    found = Directory.from_tasks(project, personal, SANDBOX_ME)
    assert {p.user_id: (p.name, p.email) for p in found.people.values()} == {
        1: ("Maya Patel", "maya.patel@northwind.example"),
        2: ("Liam O'Connor", "liam.oconnor@northwind.example"),
        3: ("Sofia Rossi", "sofia.rossi@northwind.example"),
        4: ("Kenji Tanaka", "kenji.tanaka@northwind.example"),
        5: ("Amara Okafor", "amara.okafor@northwind.example"),
    }
    assert found.people[4].owns == sum(4 in {u.user_id for u in t.owners or []} for t in project + personal)
    assert found.me is not None and found.me.user_id == 1
    # The labels come from the same tasks: Office Move (project 5) has its own "Blocked" status.
    assert "Blocked" in found.statuses[5] and "Blocked" not in found.statuses[1]
    assert found.priorities and set(found.priorities) == {"Low", "Medium", "High", "Critical"}


def test_me_by_email_then_by_name_then_by_the_personal_tasks_creator() -> None:
    project, personal = seeded()
    by_name = Directory.from_tasks(project, personal, Identity(name="sofia rossi", email="other@x.example"))
    assert by_name.me is not None and by_name.me.user_id == 3
    # Nothing in the identity matches: the personal tasks (only ever your own) name their creator.
    nobody = Directory.from_tasks(project, personal, Identity(subject="kc-1"))
    assert nobody.me is not None and nobody.me.user_id == 1
    unknown = Directory.from_tasks(project, [], Identity(subject="kc-1", email="ghost@x.example"))
    assert unknown.me is None
    with pytest.raises(AstravueError, match="ghost@x.example matches nobody"):
        unknown.resolve("me")
    with pytest.raises(AstravueError, match="carries no identity"):
        Directory.from_tasks(project, [], None).resolve("ME")


def test_owner_values_resolve_by_id_me_email_or_name() -> None:
    found = Directory.from_tasks(*seeded(), SANDBOX_ME)
    assert found.resolve(4) == 4 and found.resolve(" 4 ") == 4
    assert found.resolve("me") == 1
    assert found.resolve("SOFIA.ROSSI@northwind.example") == 3
    assert found.resolve("Sofia Rossi") == 3 and found.resolve("sofia") == 3 and found.resolve("ros") == 3
    assert found.resolve("Liam O'C") == 2
    with pytest.raises(InvalidArguments) as ambiguous:
        found.resolve("O")
    assert '\'O\' matches 2 people: 5 "Amara Okafor" <amara.okafor@northwind.example>; 2 "Liam O\'Connor"' in str(
        ambiguous.value
    )
    with pytest.raises(InvalidArguments) as unknown:
        found.resolve("Zed")
    assert "nobody called 'Zed'" in str(unknown.value) and '3 "Sofia Rossi" <sofia.rossi@northwind.example>' in str(
        unknown.value
    )
