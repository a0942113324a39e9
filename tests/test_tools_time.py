"""Time tracking tools through the in-memory MCP client against the embedded sandbox.

Seed facts used here (astravue_mcp/sandbox/seed.json; the caller is Maya Patel, user 1):
time entry 20 is Maya's timer running for 45 minutes on task 5 (project 1); entry 6 is her
finished 30-minute, non-billable entry on task 5 yesterday at 16:00 UTC; task 63 is her
personal task without entries. Project 1 has 7 finished entries: 885 minutes, 855 of them billable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from mcp.client import Client
from mcp_types import ElicitResult

from astravue_mcp.config import load_settings
from astravue_mcp.server import sandbox_server
from astravue_mcp.tools.registry import MEMBER_TEXT_NOTE
from tests.support import call, day, error

pytestmark = pytest.mark.anyio

MAYA = "Maya Patel"
TASK_5 = "Fix crash on Android 14 photo picker"
ONE_ON_ONE = "1:1 notes with Liam"  # task 63, personal, no time logged


def at(offset: int, clock: str) -> str:
    return f"{day(offset)}T{clock}Z"


def seconds_ago(stamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()


def without(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in keys}


ENTRY_6 = {
    "id": 6,
    "task_id": 5,
    "task": TASK_5,
    "start": at(-1, "16:00:00"),
    "end": at(-1, "16:30:00"),
    "minutes": 30,
    "billable": False,
    "notes": "Triage with QA",
    "user": MAYA,
}
PROJECT_1_SUMMARY = {
    "project_id": 1,
    "total_minutes": 885,
    "billable_minutes": 855,
    "non_billable_minutes": 30,
    "total_hours": 14.75,
    "entries": 7,
}


# ---------------------------------------------------------------- timers
async def test_active_timers_show_the_seeded_running_timer(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_get_active_timers")
    assert out["total"] == 1
    running = out["items"][0]
    assert without(running, "start", "minutes") == {
        "id": 20,
        "task_id": 5,
        "task": TASK_5,
        "billable": True,
        "notes": "Fix picker crash",
        "running": True,
        "user": MAYA,
    }
    assert 45 * 60 <= seconds_ago(running["start"]) < 45 * 60 + 30
    assert running["minutes"] == pytest.approx(45, abs=0.5)


async def test_start_then_stop_a_personal_timer(mcp_client: Client) -> None:
    started = await call(mcp_client, "astravue_start_timer", task_id=63, notes="Slides")
    assert without(started, "start") == {
        "id": 21,
        "task_id": 63,
        "task": ONE_ON_ONE,
        "minutes": 0,
        "billable": False,
        "notes": "Slides",
        "running": True,
        "user": MAYA,
    }
    assert 0 <= seconds_ago(started["start"]) < 30

    active = await call(mcp_client, "astravue_get_active_timers")
    assert [t["id"] for t in active["items"]] == [20, 21] and active["total"] == 2

    stopped = await call(mcp_client, "astravue_stop_timer", task_id=63)
    assert without(stopped, "end") == without(started, "running")
    assert stopped["end"] >= stopped["start"]
    assert [t["id"] for t in (await call(mcp_client, "astravue_get_active_timers"))["items"]] == [20]


async def test_stopping_the_seeded_timer_records_its_duration(mcp_client: Client) -> None:
    before = await call(mcp_client, "astravue_get_task_time_entries", task_id=5)
    assert before["total_minutes"] == 30 and before["billable_minutes"] == 0

    stopped = await call(mcp_client, "astravue_stop_timer", task_id=5)
    assert "running" not in stopped and stopped["minutes"] == pytest.approx(45, abs=0.5)
    assert without(stopped, "start", "end", "minutes") == {
        "id": 20,
        "task_id": 5,
        "task": TASK_5,
        "billable": True,
        "notes": "Fix picker crash",
        "user": MAYA,
    }

    after = await call(mcp_client, "astravue_get_task_time_entries", task_id=5)
    assert after["items"][0] == stopped  # newest first
    assert after["total_minutes"] == pytest.approx(30 + stopped["minutes"], abs=0.1)
    assert after["billable_minutes"] == stopped["minutes"]
    assert (await call(mcp_client, "astravue_get_active_timers")) == {"items": [], "total": 0}


async def test_start_on_a_project_task(mcp_client: Client) -> None:
    started = await call(mcp_client, "astravue_start_timer", task_id=2, project_id=1, billable=True)
    assert without(started, "start") == {
        "id": 21,
        "task_id": 2,
        "task": "Implement biometric login",
        "minutes": 0,
        "billable": True,
        "running": True,
        "user": MAYA,
    }


async def test_timer_conflicts_and_wrong_scope_are_actionable(mcp_client: Client) -> None:
    assert await error(mcp_client, "astravue_start_timer", task_id=5, project_id=1) == (
        "Timer not started: A timer is already running on task 5 (timer 20); stop it first. "
        "Stop the running one with astravue_stop_timer (astravue_get_active_timers lists them)."
    )
    # Without project_id the task is found wherever it lives: the same conflict, not a wrong scope.
    assert (await error(mcp_client, "astravue_start_timer", task_id=5)).startswith("Timer not started: A timer is")
    assert (await error(mcp_client, "astravue_start_timer", task_id=999)).startswith("Task 999 was not found in any")
    assert await error(mcp_client, "astravue_stop_timer", task_id=63) == (
        "Nothing stopped: No timer is running on task 63. astravue_get_active_timers lists your running timers."
    )
    assert (await error(mcp_client, "astravue_stop_timer", task_id=999)).startswith("Task 999 was not found in org 1.")
    assert (await error(mcp_client, "astravue_start_timer", task_id=999, project_id=1)).startswith(
        "Task 999 in project 1 was not found in org 1."
    )
    assert await error(mcp_client, "astravue_start_timer", task_id=0) == (
        "Invalid arguments for astravue_start_timer: task_id: Input should be greater than or equal to 1."
    )


# ---------------------------------------------------------------- logging time
async def test_manual_time_grows_task_entries_and_project_summary_by_exactly_that(mcp_client: Client) -> None:
    assert await call(mcp_client, "astravue_get_project_time_summary", project_id=1) == PROJECT_1_SUMMARY

    logged = await call(
        mcp_client,
        "astravue_log_manual_time",
        task_id=5,
        project_id=1,
        minutes=20,
        date=day(-2),
        billable=True,
        notes="Retest on tablets",
    )
    assert logged == {
        "id": 21,
        "task_id": 5,
        "task": TASK_5,
        "start": at(-2, "00:00:00"),
        "end": at(-2, "00:20:00"),
        "minutes": 20,
        "billable": True,
        "notes": "Retest on tablets",
        "user": MAYA,
    }

    entries = await call(mcp_client, "astravue_get_task_time_entries", task_id=5)
    assert without(entries, "items") == {"total": 3, "total_minutes": 50, "billable_minutes": 20, "total_hours": 0.83}
    assert [e["id"] for e in entries["items"]] == [20, 6, 21]  # newest start first
    assert entries["items"][2] == logged

    assert await call(mcp_client, "astravue_get_project_time_summary", project_id=1) == {
        **PROJECT_1_SUMMARY,
        "total_minutes": 905,
        "billable_minutes": 875,
        "total_hours": 15.08,
        "entries": 8,
    }


async def test_manual_time_in_hours_on_a_personal_task_ends_now_by_default(mcp_client: Client) -> None:
    logged = await call(mcp_client, "astravue_log_manual_time", task_id=63, hours=1.5)
    assert without(logged, "start", "end") == {
        "id": 21,
        "task_id": 63,
        "task": ONE_ON_ONE,
        "minutes": 90,
        "billable": False,
        "user": MAYA,
    }
    assert 0 <= seconds_ago(logged["end"]) < 30
    assert seconds_ago(logged["start"]) - seconds_ago(logged["end"]) == pytest.approx(90 * 60, abs=1)
    entries = await call(mcp_client, "astravue_get_task_time_entries", task_id=63)
    assert entries["total_minutes"] == 90 and entries["total_hours"] == 1.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give exactly one of hours or minutes."),
        ({"hours": 1, "minutes": 30}, "give exactly one of hours or minutes."),
        ({"hours": 25}, "hours: Input should be less than or equal to 24."),
        ({"hours": 0}, "hours: Input should be greater than 0."),
        ({"minutes": 1441}, "minutes: Input should be less than or equal to 1440."),
        ({"minutes": 10, "notes": "x" * 2001}, "notes: String should have at most 2000 characters."),
    ],
)
async def test_manual_time_validation(mcp_client: Client, args: dict[str, Any], message: str) -> None:
    assert await error(mcp_client, "astravue_log_manual_time", task_id=63, **args) == (
        f"Invalid arguments for astravue_log_manual_time: {message}"
    )
    assert (await call(mcp_client, "astravue_get_task_time_entries", task_id=63))["total"] == 0


async def test_manual_time_on_a_missing_task(mcp_client: Client) -> None:
    assert (await error(mcp_client, "astravue_log_manual_time", task_id=999, project_id=1, minutes=5)).startswith(
        "Task 999 in project 1 was not found in org 1."
    )


async def test_time_range_converts_the_offset_to_utc(mcp_client: Client) -> None:
    logged = await call(
        mcp_client,
        "astravue_log_time_range",
        task_id=2,
        project_id=1,
        start=f"{day(-1)}T09:00:00+02:00",
        end=f"{day(-1)}T11:30:00+02:00",
        notes="Pairing",
    )
    assert logged == {
        "id": 21,
        "task_id": 2,
        "task": "Implement biometric login",
        "start": at(-1, "07:00:00"),
        "end": at(-1, "09:30:00"),
        "minutes": 150,
        "billable": False,
        "notes": "Pairing",
        "user": MAYA,
    }
    entries = await call(mcp_client, "astravue_get_task_time_entries", task_id=2)
    assert entries == {"items": [logged], "total": 1, "total_minutes": 150, "billable_minutes": 0, "total_hours": 2.5}


@pytest.mark.parametrize("end", ["T09:00:00+02:00", "T08:59:00+02:00", "T06:30:00Z"])
async def test_time_range_rejects_end_not_after_start_before_any_call(mcp_client: Client, end: str) -> None:
    assert await error(
        mcp_client, "astravue_log_time_range", task_id=999, start=f"{day(-1)}T09:00:00+02:00", end=day(-1) + end
    ) == ("Invalid arguments for astravue_log_time_range: end: must be after start.")


# ---------------------------------------------------------------- editing entries
async def test_update_time_entry_changes_what_the_list_shows(mcp_client: Client) -> None:
    updated = await call(
        mcp_client, "astravue_update_time_entry", entry_id=6, end=at(-1, "17:15:00"), billable=True, notes="QA + fix"
    )
    assert updated == {**ENTRY_6, "end": at(-1, "17:15:00"), "minutes": 75, "billable": True, "notes": "QA + fix"}
    entries = await call(mcp_client, "astravue_get_task_time_entries", task_id=5)
    assert entries["items"][1] == updated
    assert (entries["total_minutes"], entries["billable_minutes"]) == (75, 75)


async def test_update_time_entry_validation_and_not_found(mcp_client: Client) -> None:
    assert await error(mcp_client, "astravue_update_time_entry", entry_id=6) == (
        "Invalid arguments for astravue_update_time_entry: give at least one of start, end, billable, notes."
    )
    assert await error(
        mcp_client, "astravue_update_time_entry", entry_id=6, start=at(-1, "12:00:00"), end=at(-1, "11:00:00")
    ) == ("Invalid arguments for astravue_update_time_entry: end: must be after start.")
    assert await error(mcp_client, "astravue_update_time_entry", entry_id=999, billable=True) == (
        "Time entry 999 was not found in org 1. Check the id with a list tool."
    )
    # An end before the stored start is only known to the API: its field error comes through.
    assert "endTime: must be after startTime" in await error(
        mcp_client, "astravue_update_time_entry", entry_id=6, end=at(-2, "10:00:00")
    )
    assert (await call(mcp_client, "astravue_get_task_time_entries", task_id=5))["items"][1] == ENTRY_6


async def test_delete_time_entry(mcp_client: Client) -> None:
    assert await call(mcp_client, "astravue_delete_time_entry", entry_id=6) == {"deleted": "time entry 6"}
    entries = await call(mcp_client, "astravue_get_task_time_entries", task_id=5)
    assert [e["id"] for e in entries["items"]] == [20] and entries["total_minutes"] == 0
    assert (await error(mcp_client, "astravue_delete_time_entry", entry_id=6)).startswith(
        "Time entry 6 was not found in org 1."
    )
    assert await error(mcp_client, "astravue_delete_time_entry", entry_id=-1) == (
        "Invalid arguments for astravue_delete_time_entry: entry_id: Input should be greater than or equal to 1."
    )


async def test_delete_time_entry_declined_keeps_it() -> None:
    async def decline(_context: Any, params: Any) -> ElicitResult:
        assert params.message == "Confirm: delete time entry 6?"
        return ElicitResult(action="decline")

    server = sandbox_server(load_settings({}, toolsets="time"))
    # Legacy (stream) mode: the SDK's default in-process mode has no back-channel for elicitation.
    async with Client(server, elicitation_callback=decline, mode="legacy") as client:
        assert (await error(client, "astravue_delete_time_entry", entry_id=6)).endswith(
            "Not done: the person did not confirm (delete time entry 6)."
        )
        assert (await call(client, "astravue_get_task_time_entries", task_id=5))["items"][1] == ENTRY_6


# ---------------------------------------------------------------- reports
async def test_task_time_entries(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("astravue_get_task_time_entries", {"task_id": 5, "limit": 1})
    out = result.structured_content
    assert without(out, "items") == {
        "total": 2,
        "next_page": 2,
        "total_minutes": 30,
        "billable_minutes": 0,
        "total_hours": 0.5,
    }
    assert [e["id"] for e in out["items"]] == [20]
    assert result.content[0].text.splitlines()[:3] == [
        MEMBER_TEXT_NOTE,
        "30 min (0.5 h), 0 billable",
        "1 item(s) of 2; more with page=2",
    ]
    page2 = await call(mcp_client, "astravue_get_task_time_entries", task_id=5, limit=1, page=2)
    assert page2["items"] == [ENTRY_6] and "next_page" not in page2
    assert (await error(mcp_client, "astravue_get_task_time_entries", task_id=999)).startswith(
        "Task 999 was not found in org 1."
    )


async def test_timesheet_report_covers_everyone_with_totals(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_get_timesheet_report", start=day(-1), end=day(0), limit=2)
    # Yesterday: entries 4 (240, billable), 6 (30), 10 (60), 11 (120, billable), 17 (60); today: the running 20.
    assert without(out, "items") == {
        "total": 6,
        "next_page": 2,
        "total_minutes": 510,
        "billable_minutes": 360,
        "total_hours": 8.5,
    }
    assert [e["id"] for e in out["items"]] == [20, 6]
    assert out["items"][1] == ENTRY_6
    rest = await call(mcp_client, "astravue_get_timesheet_report", start=day(-1), end=day(0), page=2, limit=2)
    assert [e["id"] for e in rest["items"]] == [10, 11] and rest["next_page"] == 3
    last = await call(mcp_client, "astravue_get_timesheet_report", start=day(-1), end=day(0), page=3, limit=2)
    assert [e["id"] for e in last["items"]] == [4, 17] and "next_page" not in last


async def test_timesheet_report_for_one_user(mcp_client: Client) -> None:
    out = await call(mcp_client, "astravue_get_timesheet_report", start=day(-1), end=day(-1), user_id=4)
    assert out == {
        "items": [
            {
                "id": 10,
                "task_id": 17,
                "task": "Fix timezone bug in reports export",
                "start": at(-1, "10:00:00"),
                "end": at(-1, "11:00:00"),
                "minutes": 60,
                "billable": False,
                "notes": "Investigate export",
                "user": "Kenji Tanaka",
            }
        ],
        "total": 1,
        "total_minutes": 60,
        "billable_minutes": 0,
        "total_hours": 1,
    }


async def test_timesheet_report_validation(mcp_client: Client) -> None:
    assert await error(mcp_client, "astravue_get_timesheet_report", start=day(0), end=day(-1)) == (
        "Invalid arguments for astravue_get_timesheet_report: end: must not be before start."
    )
    assert await error(mcp_client, "astravue_get_timesheet_report", start=day(0)) == (
        "Invalid arguments for astravue_get_timesheet_report: end: Field required."
    )
    assert (await error(mcp_client, "astravue_get_timesheet_report", start="last week", end=day(0))).startswith(
        "Invalid arguments for astravue_get_timesheet_report: start: Input should be a valid date"
    )


async def test_project_time_entries(mcp_client: Client) -> None:
    movers = {
        "id": 16,
        "task_id": 50,
        "task": "Hire movers and get quotes",
        "start": at(-6, "09:00:00"),
        "end": at(-6, "10:00:00"),
        "minutes": 60,
        "billable": False,
        "notes": "Calls with movers",
        "user": "Liam O'Connor",
    }
    assert await call(mcp_client, "astravue_get_project_time_entries", project_id=5) == {
        "items": [movers],
        "total": 1,
        "total_minutes": 60,
        "billable_minutes": 0,
        "total_hours": 1,
    }
    recent = await call(mcp_client, "astravue_get_project_time_entries", project_id=5, start=day(-5))
    assert recent == {"items": [], "total": 0, "total_minutes": 0, "billable_minutes": 0, "total_hours": 0}
    assert (await error(mcp_client, "astravue_get_project_time_entries", project_id=99)).startswith(
        "Project 99 was not found in org 1."
    )
    assert await error(mcp_client, "astravue_get_project_time_entries", project_id=5, start=day(0), end=day(-1)) == (
        "Invalid arguments for astravue_get_project_time_entries: end: must not be before start."
    )


async def test_project_time_summary(mcp_client: Client) -> None:
    result = await mcp_client.call_tool("astravue_get_project_time_summary", {"project_id": 1})
    assert result.structured_content == PROJECT_1_SUMMARY
    assert result.content[0].text == (
        "project_id=1; total_minutes=885; billable_minutes=855; non_billable_minutes=30; total_hours=14.75; entries=7"
    )
    last_two_days = await call(mcp_client, "astravue_get_project_time_summary", project_id=1, start=day(-2))
    # Entries 2 (90, billable), 4 (240, billable), 5 (75, billable), 6 (30); the running timer is not counted.
    assert last_two_days == {
        "project_id": 1,
        "total_minutes": 435,
        "billable_minutes": 405,
        "non_billable_minutes": 30,
        "total_hours": 7.25,
        "entries": 4,
    }
    assert (await error(mcp_client, "astravue_get_project_time_summary", project_id=99)).startswith(
        "Project 99 was not found in org 1."
    )
