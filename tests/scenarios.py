"""The scenario table: requests a user makes, the tool calls that answer them, what the answer must contain.

Each scenario is the path a model should take on the embedded sandbox (seeded workspace, "me" is
Maya Patel, user 1): at most two calls (tool calls, or reading a resource), and the facts the
results must carry for the model to answer correctly. ``tests/test_scenarios.py`` replays the
table over the real stdio process; ``bench/answer_bytes.py`` measures what a model reads doing so.

Scenarios are independent: reads come first, and a write only checks its own result, so any one
can run alone. The order below is the order they run in (writes last).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_CALLS = 2


def day(offset: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def next_friday() -> str:
    today = datetime.now(UTC).date()
    return (today + timedelta(days=(4 - today.weekday()) % 7 or 7)).isoformat()


@dataclass(frozen=True)
class Step:
    name: str
    """A tool name, or an ``astravue://`` resource URI to read."""
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def is_resource(self) -> bool:
        return self.name.startswith("astravue://")


@dataclass(frozen=True)
class Scenario:
    request: str
    steps: tuple[Step, ...]
    contains: tuple[str, ...]
    """Every one must appear in the text the steps return (what the model reads)."""
    excludes: tuple[str, ...] = ()
    """None may appear: a wrong item in the answer is as bad as a missing one."""
    error: bool = False
    """The last step must fail (with the ``contains`` text as its explanation)."""


def s(
    request: str, *steps: Step, contains: tuple[str, ...], excludes: tuple[str, ...] = (), error: bool = False
) -> Scenario:
    return Scenario(request, steps, contains, excludes, error)


def t(name: str, **args: Any) -> Step:
    return Step(f"astravue_{name}", args)


SCENARIOS: list[Scenario] = [
    # ------------------------------------------------------------ reading
    s(
        "Show task 3",
        t("get_task", task_id=3),
        contains=("Push notification service integration", "project_id=1", "Kenji Tanaka"),
    ),
    s(
        "What is overdue for me?",
        t("list_overdue_tasks", mine=True),
        contains=(
            "Fix crash on Android 14 photo picker",
            "Security pen-test remediation",
            "Review Q3 budget draft",
            "personal",
        ),
        excludes=("Fix timezone bug in reports export", "Accessibility review"),
    ),
    s(
        "Find everything about the board update",
        t("find_tasks", query="board update"),
        contains=("Prepare quarterly board update", "personal"),
    ),
    s(
        "Who am I logged in as?",
        Step("astravue://me"),
        contains=("Maya Patel", "maya.patel@northwind.example", "user_id=1"),
    ),
    s(
        "Who can I assign tasks to?",
        t("list_people"),
        contains=(
            "Maya Patel",
            "Liam O'Connor",
            "Sofia Rossi",
            "Kenji Tanaka",
            "Amara Okafor",
            "sofia.rossi@northwind.example",
        ),
    ),
    s(
        "What is on my plate this week?",
        t("list_scheduled_tasks", mine=True),
        contains=("Prepare quarterly board update", "Beta release to TestFlight", "Launch landing page copy"),
        excludes=("Hire movers and get quotes", "Implement biometric login"),
    ),
    s(
        "What is Sofia working on?",
        t("find_tasks", owner_id="Sofia", status="In Progress"),
        contains=("Press kit and media list", "Furniture order"),
        excludes=("Design onboarding flow screens", "Rate limiting"),
    ),
    s(
        "Which tasks in review belong to amara.okafor@northwind.example?",
        t("find_tasks", owner_id="amara.okafor@northwind.example", status="In Review"),
        contains=("Add CSV import for tasks", "Launch day social calendar"),
        excludes=("Cookie consent banner update",),
    ),
    s(
        "What does O. have on?",
        t("find_tasks", owner_id="O"),
        contains=("Liam O'Connor", "Amara Okafor", "id or the email"),
        error=True,
    ),
    s(
        "Which of my tasks are high priority?",
        t("find_tasks", mine=True, priority="High"),
        contains=("Beta release to TestFlight", "Review Q3 budget draft", "Prepare quarterly board update"),
        excludes=("Renew professional membership", "Implement biometric login"),
    ),
    s(
        "Which statuses can I use in the Office Move project?",
        Step("astravue://labels"),
        contains=("Office Move", "Blocked", "In Review", "Critical"),
    ),
    s(
        "How many open tasks does each project have, my own included?",
        t("get_task_counts"),
        contains=("Mobile App v2", "Office Move", "personal"),
    ),
    s(
        "What is overdue in Web Platform?",
        t("get_task_counts"),
        t("list_overdue_tasks", space_id=1, project_id=2),
        contains=("Fix timezone bug in reports export", "Security pen-test remediation"),
        excludes=("Fix crash on Android 14 photo picker",),
    ),
    s(
        "Show the subtasks of task 2",
        t("list_subtasks", task_id=2),
        contains=("Face ID on iOS", "Fingerprint unlock on Android", "Fallback to device PIN"),
    ),
    s(
        "What did people say about the Android crash?",
        t("find_tasks", query="android crash"),
        t("get_task_comments", task_id=5),
        contains=("Fix crash on Android 14 photo picker", "Reproduced on Pixel 8"),
    ),
    s(
        "What did I log this week?",
        t("get_timesheet_report", start=day(-6), end=day(0), user_id="me"),
        contains=("Board deck outline", "Interview with Acme", "API docs draft"),
        excludes=("Token bucket", "Keychain wrapper"),
    ),
    s(
        "Show my personal tasks",
        t("list_personal_tasks"),
        contains=("Review Q3 budget draft", "Read Shape Up chapters 1-5", "Book flights for team offsite"),
    ),
    s(
        "Find everything about security",
        t("find_tasks", query="security"),
        contains=("Rate limiting for the public API", "Contact form spam protection", "Access badges for new building"),
    ),
    s(
        "Is anything overdue on the offsite flights?",
        t("find_tasks", query="flights"),
        contains=("Book flights for team offsite", "personal"),
        excludes=("overdue=yes",),
    ),
    # ------------------------------------------------------------ changing (each checks its own result)
    s(
        "Move the due date of my overdue tasks to Friday",
        t("list_overdue_tasks", mine=True),
        t(
            "bulk_update_tasks",
            changes=[
                {"task_id": 5, "due": next_friday()},
                {"task_id": 22, "due": next_friday()},
                {"task_id": 62, "due": next_friday()},
            ],
        ),
        contains=("3 succeeded, 0 failed", "task 5", "task 22", "task 62"),
    ),
    s(
        "Assign task 5 to Sofia",
        t("update_task", task_id=5, owner_ids=["Sofia"]),
        contains=("Sofia Rossi", "Fix crash on Android 14 photo picker"),
        excludes=("Kenji Tanaka",),
    ),
    s(
        "Give task 11 to me",
        t("update_task", task_id=11, owner_ids=["me"]),
        contains=("In-app feedback widget", 'owners="Maya Patel"'),
    ),
    s(
        "Mark my budget review done",
        t("find_tasks", query="budget", mine=True),
        t("update_task", task_id=62, status="Done"),
        contains=("Review Q3 budget draft", "status=Done"),
    ),
    s(
        "Log 45 minutes on the board update for yesterday",
        t("log_manual_time", task_id=61, minutes=45, date=day(-1)),
        contains=("task_id=61", "minutes=45"),
    ),
    s(
        "Start a timer on task 3",
        t("start_timer", task_id=3),
        contains=("task_id=3",),
    ),
    s(
        "Add a task 'Tablet layout' to Mobile App v2 for Kenji",
        t("get_task_counts"),
        t("create_task", space_id=1, project_id=1, title="Tablet layout", owner_ids=["Kenji"]),
        contains=("Tablet layout", "Kenji Tanaka", "project_id=1"),
    ),
    s("Delete task 60", t("delete_task", task_id=60), contains=("task 60",)),
]


# ---------------------------------------------------------------- the real stdio process
class StdioSession:
    """``astravue-mcp serve --sandbox`` as a client starts it, spoken to in JSON-RPC lines."""

    def __init__(self) -> None:
        from tests.test_stdio_e2e import StdioServer, initialize

        env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
        self.server = StdioServer(env, serve_args=("--sandbox",))
        self.server.timeout = 120.0  # a cross-project scan on a busy 2-core machine
        initialize(self.server)
        self.last: dict[str, Any] = {}
        """The last step's whole JSON-RPC result (what a client receives)."""

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = self.server.send(method, params)
        assert answer is not None
        if "error" in answer:
            return {"isError": True, "content": [{"type": "text", "text": answer["error"]["message"]}]}
        self.last = answer["result"]
        return self.last

    def run(self, step: Step) -> tuple[str, bool]:
        """The text a model reads from one step, and whether it failed."""
        if step.is_resource:
            result = self.request("resources/read", {"uri": step.name})
            if result.get("isError"):
                return result["content"][0]["text"], True
            return "\n".join(c.get("text", "") for c in result["contents"]), False
        result = self.request("tools/call", {"name": step.name, "arguments": step.args})
        text = "\n".join(c["text"] for c in result["content"] if c["type"] == "text")
        return text, bool(result.get("isError"))

    def close(self) -> None:
        self.server.close()
