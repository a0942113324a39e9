"""Notification tools through the in-memory MCP client against the embedded sandbox.

Seed (astravue_mcp/sandbox/seed.json): the caller (Maya Patel, user 1) has notifications 1-10,
of which 8, 5, 3, 6 and 1 (newest first) are unread; 11 and 12 belong to Kenji Tanaka.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp.client import Client
from mcp_types import ElicitResult

from astravue_mcp.config import load_settings
from astravue_mcp.server import sandbox_server
from astravue_mcp.tools.registry import MEMBER_TEXT_NOTE
from tests.support import call, error

pytestmark = pytest.mark.anyio

UNREAD = [
    (8, "'Review Q3 budget draft' is overdue", "overdue", False, 62, None, 1),
    (5, "'Beta release to TestFlight' is due in 4 days", "due_soon", False, 10, None, 2),
    (3, "Liam O'Connor commented on 'Prepare quarterly board update'", "comment", False, 61, "Liam O'Connor", 5),
    (6, "Amara Okafor mentioned you in 'Pricing page A/B test'", "mention", True, 38, "Amara Okafor", 9),
    (1, "Liam O'Connor mentioned you in 'Security pen-test remediation'", "mention", True, 22, "Liam O'Connor", 20),
]


def expected(row: tuple[Any, ...], read: bool = False) -> dict[str, Any]:
    ident, message, kind, mention, task_id, actor, _ = row
    out = {"id": ident, "message": message, "type": kind, "read": read, "mention": mention or None}
    out |= {"task_id": task_id, "actor": actor}
    return {k: v for k, v in out.items() if v is not None}


def check_dates(items: list[dict[str, Any]], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Seed dates are hours before the sandbox started: check them loosely, return items without them."""
    now = datetime.now(UTC)
    for item, row in zip(items, rows, strict=True):
        when = datetime.fromisoformat(item["date"].replace("Z", "+00:00"))
        assert abs(now - timedelta(hours=row[-1]) - when) < timedelta(seconds=30), item
    return [{k: v for k, v in item.items() if k != "date"} for item in items]


async def unread_ids(client: Client) -> list[int]:
    return [n["id"] for n in (await call(client, "astravue_list_notifications", limit=200))["items"]]


async def test_list_shows_unread_newest_first_by_default(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_list_notifications")
    assert out["total"] == 5 and "next_page" not in out
    assert check_dates(out["items"], UNREAD) == [expected(r) for r in UNREAD]


async def test_list_pages_and_includes_read_on_request(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("astravue_list_notifications", {"limit": 2})
    out = result.structured_content
    assert [n["id"] for n in out["items"]] == [8, 5] and (out["total"], out["next_page"]) == (5, 2)
    assert result.content[0].text.splitlines()[:3] == [
        MEMBER_TEXT_NOTE,
        "2 item(s) of 5; more with page=2",
        f"- id=8; message=\"'Review Q3 budget draft' is overdue\"; type=overdue; read=no; task_id=62; "
        f"date={out['items'][0]['date']}",
    ]
    last = await call(mcp_client, "astravue_list_notifications", limit=2, page=3)
    assert [n["id"] for n in last["items"]] == [1] and "next_page" not in last

    everything = await call(mcp_client, "astravue_list_notifications", unread_only=False)
    assert everything["total"] == 10
    assert [n["id"] for n in everything["items"]] == [8, 5, 3, 6, 1, 10, 4, 9, 2, 7]
    assert {k: v for k, v in everything["items"][7].items() if k != "date"} == {
        "id": 9,
        "message": "Sofia Rossi mentioned you in 'Launch landing page copy'",
        "type": "mention",
        "read": True,
        "mention": True,
        "task_id": 26,
        "actor": "Sofia Rossi",
    }


async def test_list_validation(mcp_client: Client) -> None:
    assert await error(mcp_client, "astravue_list_notifications", limit=201) == (
        "Invalid arguments for astravue_list_notifications: limit: Input should be less than or equal to 200."
    )


async def test_mark_read_by_id_shrinks_the_unread_list(mcp_client: Client) -> None:
    # 2 is read already: only the ids that changed come back.
    assert await call(mcp_client, "astravue_mark_notification_read", ids=[1, 2]) == {"marked_read": [1]}
    assert await unread_ids(mcp_client) == [8, 5, 3, 6]
    assert await call(mcp_client, "astravue_mark_notification_read", ids=[1]) == {"marked_read": []}


async def test_mark_all_read(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("astravue_mark_notification_read", {"all": True})
    assert result.structured_content == {"marked_read": [8, 5, 3, 6, 1]}
    assert result.content[0].text == "marked_read=8, 5, 3, 6, 1"
    assert await call(mcp_client, "astravue_list_notifications") == {"items": [], "total": 0}
    # Kenji's notifications are not the caller's to mark.
    assert (await call(mcp_client, "astravue_list_notifications", unread_only=False))["total"] == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give either ids or all=true."),
        ({"ids": [1], "all": True}, "give either ids or all=true."),
        ({"ids": []}, "ids: List should have at least 1 item after validation, not 0."),
        ({"ids": [0]}, "ids.0: Input should be greater than or equal to 1."),
        ({"ids": list(range(1, 102))}, "ids: List should have at most 100 items after validation, not 101."),
    ],
)
async def test_mark_read_validation(mcp_client: Client, args: dict[str, Any], message: str) -> None:
    assert await error(mcp_client, "astravue_mark_notification_read", **args) == (
        f"Invalid arguments for astravue_mark_notification_read: {message}"
    )
    assert await unread_ids(mcp_client) == [8, 5, 3, 6, 1]


async def test_mark_read_of_unknown_or_foreign_ids(mcp_client: Client) -> None:
    assert await error(mcp_client, "astravue_mark_notification_read", ids=[1, 11, 999]) == (
        "Astravue rejected the request to mark notifications read. "
        "Fix these fields: notificationIds: unknown notification id(s): 11, 999."
    )
    assert await unread_ids(mcp_client) == [8, 5, 3, 6, 1]


async def test_delete_notifications(mcp_client: Client) -> None:
    assert await call(mcp_client, "astravue_delete_notifications", ids=[1, 2]) == {"deleted": "notification(s) 1, 2"}
    everything = await call(mcp_client, "astravue_list_notifications", unread_only=False)
    assert [n["id"] for n in everything["items"]] == [8, 5, 3, 6, 10, 4, 9, 7]
    assert await error(mcp_client, "astravue_delete_notifications", ids=[1]) == (
        "Astravue rejected the request to delete notifications. "
        "Fix these fields: notificationIds: unknown notification id(s): 1."
    )


async def test_delete_validation(mcp_client: Client) -> None:
    assert await error(mcp_client, "astravue_delete_notifications", ids=list(range(1, 102))) == (
        "Invalid arguments for astravue_delete_notifications: ids: List should have at most 100 items after "
        "validation, not 101."
    )
    assert await error(mcp_client, "astravue_delete_notifications") == (
        "Invalid arguments for astravue_delete_notifications: ids: Field required."
    )
    assert await error(mcp_client, "astravue_delete_notifications", ids=[1], all=True) == (
        "Invalid arguments for astravue_delete_notifications: unknown all; allowed: ids."
    )


@pytest.mark.parametrize(("answer", "deleted"), [("decline", False), ("accept", True)])
async def test_delete_asks_for_confirmation(answer: str, deleted: bool) -> None:
    asked: list[str] = []

    async def respond(_context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=answer, content={"confirm": True} if answer == "accept" else None)

    server = sandbox_server(load_settings({}, toolsets="notifications"))
    # Legacy (stream) mode: the SDK's default in-process mode has no back-channel for elicitation.
    async with Client(server, elicitation_callback=respond, mode="legacy") as client:
        result = await client.call_tool("astravue_delete_notifications", {"ids": [3, 5]})
        assert asked == ["Confirm: delete notification(s) 3, 5?"]
        assert result.is_error is not deleted
        if not deleted:
            assert result.content[0].text.endswith(
                "Not done: the person did not confirm (delete notification(s) 3, 5)."
            )
        assert await unread_ids(client) == ([8, 6, 1] if deleted else [8, 5, 3, 6, 1])
