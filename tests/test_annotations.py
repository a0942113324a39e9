"""Every write tool's annotations agree with what the call does to the sandbox.

Each write tool runs on a fresh sandbox with sample arguments; the sandbox's tables are
compared before and after. The MCP spec's meaning of the hints is then checked:

- ``readOnlyHint`` false: the call changed something.
- ``destructiveHint``: true when the call removed a record or replaced a value a record had
  (false means "only additive updates": new records, or values filled where there were none).
- ``idempotentHint``: true when calling again with the same arguments changes nothing more.

A write tool added without sample arguments here fails the test, so no tool escapes the check.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client

from astravue_mcp.config import load_settings
from astravue_mcp.sandbox import create_app
from astravue_mcp.server import build_server
from astravue_mcp.tools.registry import SPEC_DEFAULTS

P1 = {"space_id": 1, "project_id": 1}
SAMPLES: dict[str, dict[str, Any]] = {
    "astravue_create_space": {"name": "Research"},
    "astravue_update_space": {"space_id": 1, "description": "Everything we ship"},
    "astravue_delete_space": {"space_id": 3},
    "astravue_create_project": {"space_id": 1, "name": "Tablet app"},
    "astravue_update_project": {**P1, "description": "The new mobile app"},
    "astravue_delete_project": P1,
    "astravue_create_task": {**P1, "title": "Tablet layout"},
    "astravue_update_task": {"task_id": 2, **P1, "tags": ["mobile"]},
    "astravue_delete_task": {"task_id": 2, **P1},
    "astravue_create_personal_task": {"title": "Renew passport"},
    "astravue_start_timer": {"task_id": 2, "project_id": 1},
    "astravue_stop_timer": {"task_id": 5},
    "astravue_log_manual_time": {"task_id": 2, "project_id": 1, "minutes": 30},
    "astravue_log_time_range": {
        "task_id": 2,
        "project_id": 1,
        "start": "2024-05-01T09:00:00Z",
        "end": "2024-05-01T10:00:00Z",
    },
    "astravue_update_time_entry": {"entry_id": 1, "notes": "Pairing"},
    "astravue_delete_time_entry": {"entry_id": 1},
    "astravue_mark_notification_read": {"ids": [1]},
    "astravue_delete_notifications": {"ids": [1]},
    "astravue_bulk_create_tasks": {**P1, "tasks": [{"title": "One"}, {"title": "Two"}]},
    "astravue_bulk_update_tasks": {**P1, "changes": [{"task_id": 2, "completion": 90}]},
    "astravue_bulk_delete_tasks": {**P1, "task_ids": [2, 3]},
    "astravue_change_task": {"task_id": 2, **P1, "status": "Done"},
}
BOOKKEEPING = {"updated_at", "modified_by"}
"""Fields the API stamps on every write: not an effect of the call's arguments."""

Snapshot = dict[str, dict[int, dict[str, Any]]]


def snapshot(store: Any) -> Snapshot:
    tables = ("spaces", "projects", "tasks", "comments", "checklists", "timers", "notifications")
    return {
        table: {
            key: {k: v for k, v in dataclasses.asdict(row).items() if k not in BOOKKEEPING}
            for key, row in getattr(store, table).items()
        }
        for table in tables
    }


def effect(before: Snapshot, after: Snapshot) -> dict[str, list[str]]:
    """What changed: records added, records removed, and values replaced (a value that was there before)."""
    added, removed, replaced = [], [], []
    for table, rows in before.items():
        for key, row in rows.items():
            if key not in after[table]:
                removed.append(f"{table}/{key}")
                continue
            for field, old in row.items():
                new = after[table][key][field]
                if new != old and old not in (None, []):
                    replaced.append(f"{table}/{key}.{field}")
                elif new != old:
                    added.append(f"{table}/{key}.{field}")
        added += [f"{table}/{key}" for key in after[table] if key not in rows]
    return {"added": added, "removed": removed, "replaced": replaced}


async def observe(name: str, arguments: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, list[str]], Any]:
    """The effect of a first call and of a second identical call, and the tool's published annotations."""
    app = create_app()
    store = app.state.sandbox
    server = build_server(
        load_settings({}, toolsets="all").sandboxed("http://sandbox.astravue.local"),
        transport=httpx2.ASGITransport(app=app),
    )
    async with Client(server, mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        before = snapshot(store)
        first = await client.call_tool(name, arguments)
        assert not first.is_error, f"{name}: {first.content[0].text}"
        middle = copy.deepcopy(snapshot(store))
        await client.call_tool(name, arguments)  # may fail (the thing is gone): what counts is the effect
        after = snapshot(store)
    return effect(before, middle), effect(middle, after), tools[name].annotations


def write_tools() -> list[str]:
    async def names() -> list[str]:
        server = build_server(load_settings({}, toolsets="all"))
        return [t.name for t in await server.list_tools() if not (t.annotations and t.annotations.read_only_hint)]

    return anyio.run(names)


def test_every_write_tool_has_sample_arguments() -> None:
    assert sorted(write_tools()) == sorted(SAMPLES)


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_annotations_match_the_effect_on_the_sandbox(name: str) -> None:
    first, second, annotations = await observe(name, SAMPLES[name])
    hints = SPEC_DEFAULTS | annotations.model_dump(exclude_none=True)  # as a client reads them
    assert any(first.values()), f"{name} changed nothing"
    assert hints["read_only_hint"] is False
    destructive = bool(first["removed"] or first["replaced"])
    assert hints["destructive_hint"] is destructive, f"{name}: {first}"
    idempotent = not any(second.values())
    assert hints["idempotent_hint"] is idempotent, f"{name}: a second call did {second}"
