"""Spaces and projects tools through the in-memory MCP client against the embedded sandbox."""

from __future__ import annotations

import pytest
from mcp.client import Client

from astravue_mcp.tools.registry import MEMBER_TEXT_NOTE
from tests.support import call, day, error

pytestmark = pytest.mark.anyio


async def test_list_spaces(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_list_spaces")
    assert out == {
        "items": [
            {"id": 1, "name": "Product", "description": "Product development: apps and platform."},
            {"id": 2, "name": "Marketing", "description": "Campaigns, website and content."},
            {"id": 3, "name": "Operations", "description": "Office, IT and vendors."},
        ],
        "total": 3,
    }
    result = await mcp_client.call_tool("astravue_list_spaces", {"limit": 2})
    assert result.structured_content["next_page"] == 2
    assert result.content[0].text.splitlines() == [
        MEMBER_TEXT_NOTE,
        "2 item(s) of 3; more with page=2",
        '- id=1; name=Product; description="Product development: apps and platform."',
        '- id=2; name=Marketing; description="Campaigns, website and content."',
    ]
    page2 = await call(mcp_client, "astravue_list_spaces", limit=2, page=2)
    assert [s["id"] for s in page2["items"]] == [3]
    assert "next_page" not in page2


async def test_space_crud_changes_state(mcp_client: Client) -> None:
    created = await call(mcp_client, "astravue_create_space", name="Research", description="Experiments")
    assert created == {"id": created["id"], "name": "Research", "description": "Experiments"}
    updated = await call(mcp_client, "astravue_update_space", space_id=created["id"], name="R&D")
    assert updated == {"id": created["id"], "name": "R&D", "description": "Experiments"}
    assert await call(mcp_client, "astravue_get_space", space_id=created["id"]) == updated
    assert await call(mcp_client, "astravue_delete_space", space_id=created["id"]) == {
        "deleted": f"space {created['id']}"
    }
    assert [s["id"] for s in (await call(mcp_client, "astravue_list_spaces"))["items"]] == [1, 2, 3]


async def test_space_not_found_and_validation(mcp_client: Client) -> None:
    assert (await error(mcp_client, "astravue_get_space", space_id=999)).startswith(
        "Space 999 was not found in org 1. Check the id with a list tool."
    )
    assert await error(mcp_client, "astravue_get_space", space_id=0) == (
        "Invalid arguments for astravue_get_space: space_id: Input should be greater than or equal to 1."
    )
    assert await error(mcp_client, "astravue_create_space", name="x" * 501) == (
        "Invalid arguments for astravue_create_space: name: String should have at most 500 characters."
    )
    assert await error(mcp_client, "astravue_get_space", space_id=1, verbose=True) == (
        "Invalid arguments for astravue_get_space: unknown verbose; allowed: space_id."
    )


async def test_projects(mcp_client: Client) -> None:
    listed = await call(mcp_client, "astravue_list_projects", space_id=1)
    assert listed["total"] == 2
    assert listed["items"][0] == {
        "id": 1,
        "space_id": 1,
        "name": "Mobile App v2",
        "status": "Active",
        "priority": "High",
        "health": "At Risk",
        "start": day(-45),
        "due": day(40),
        "owner": "Sofia Rossi",
    }
    detail = await call(mcp_client, "astravue_get_project", space_id=1, project_id=1)
    assert detail == listed["items"][0] | {
        "description": "Rebuild of the iOS and Android apps with offline mode and biometric login."
    }
    assert (await error(mcp_client, "astravue_get_project", space_id=1, project_id=3)).startswith(
        "Project 3 in space 1 was not found in org 1."
    )


async def test_project_crud_changes_state(mcp_client: Client) -> None:
    created = await call(
        mcp_client, "astravue_create_project", space_id=2, name="Podcast", priority="Low", due="2031-01-15"
    )
    assert created["name"] == "Podcast"
    assert created["space_id"] == 2
    assert created["priority"] == "Low"
    assert created["due"] == "2031-01-15"
    updated = await call(
        mcp_client,
        "astravue_update_project",
        space_id=2,
        project_id=created["id"],
        health="Off Track",
        due="2031-02-01T17:30:00+01:00",
    )
    assert updated["health"] == "Off Track"
    assert updated["due"] == "2031-02-01T16:30:00Z"
    assert updated["name"] == "Podcast"
    await call(mcp_client, "astravue_delete_project", space_id=2, project_id=created["id"])
    assert [p["id"] for p in (await call(mcp_client, "astravue_list_projects", space_id=2))["items"]] == [3, 4]


async def test_deleting_a_space_deletes_its_projects(mcp_client: Client) -> None:
    await call(mcp_client, "astravue_delete_space", space_id=3)
    assert (await error(mcp_client, "astravue_list_projects", space_id=3)).startswith("Space 3 was not found")
