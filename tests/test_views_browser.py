"""The three views end to end in a real headless Chromium, inside a host that behaves like a real one.

The host page (tests/views_host/host.html, served by tests/apps_host.py) reads the tool's ``ui://``
page over MCP, has it served from another origin with the CSP built from its metadata, runs the
handshake, pushes the result of a real call to the server on the sandbox, and proxies the page's own
``tools/call`` back to that server. The browser is Debian's ``chromium-headless-shell``, which
``python3 tasks.py test`` installs when it is missing (Playwright's own download is not used).

Screenshots of every view, light and dark, go to build/screenshots/; with UPDATE_SCREENSHOTS=1 the
ones the README shows are also written to docs/img/.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_types import CallToolRequestParams

from tests.apps_host import AppsHost, apps_host, ext_apps

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots"
README_SHOTS = ROOT / "docs" / "img"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BROWSERS = ("/usr/lib/chromium/chromium-headless-shell", "/usr/bin/chromium-headless-shell")
SHOT_HEIGHT = 760
BOARD = ("astravue_preview_task_list", {"space_id": 1, "project_id": 1})
MINE = ("astravue_preview_my_tasks", {})
OVERVIEW = ("astravue_preview_project_overview", {"space_id": 1, "project_id": 1})


def chromium() -> str:
    found = shutil.which("chromium-headless-shell") or next((b for b in BROWSERS if Path(b).exists()), None)
    if found is None:
        message = (
            "BROWSER TESTS SKIPPED: Debian's chromium-headless-shell is not installed and `python3 tasks.py test` "
            "could not install it (it needs apt-get and root). The MCP Apps views were NOT tested in a browser."
        )
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def host() -> Iterator[AppsHost]:
    with apps_host(toolsets="all") as running:
        yield running


class Opened:
    """A view opened in the test host: the host page, the view's frame, and what the tool returned."""

    def __init__(
        self, browser: Any, host: AppsHost, tool: str, args: dict, theme: str = "light", width: int = 0, styles=True
    ):
        self.page = browser.new_page(viewport={"width": (width or 1000) + 40, "height": 900})
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(host.url(tool, args, theme, width, styles))
        self.page.wait_for_function("window.log.ready || window.log.errors.length > 0", timeout=20_000)
        assert self.log()["errors"] == []
        self.view = self.page.frame_locator("#view")
        self.frame = next(f for f in self.page.frames if "/view/" in f.url)
        self.data = next(m for m in self.log()["toView"] if m.get("method") == "ui/notifications/tool-result")["params"]
        self.data = self.data["structuredContent"]

    def log(self) -> dict[str, Any]:
        return self.page.evaluate("window.log")

    def shoot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("document.fonts.ready")
        box = self.page.locator("#view").bounding_box()
        # A long view is cut where a reader stops looking: the README's images stay small.
        clip = {**box, "height": min(box["height"], SHOT_HEIGHT)}
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), clip=clip, full_page=True)
        if name in readme_shots() and os.environ.get("UPDATE_SCREENSHOTS"):
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(SHOTS / f"{name}.png", README_SHOTS / f"{name}.png")

    def close(self) -> None:
        self.check_messages()
        assert self.errors == [], self.errors
        self.page.close()

    def check_messages(self) -> None:
        """Every message the page sent, and every one the host sent it, against the ext-apps schemas."""
        schema = ext_apps()
        log = self.log()
        methods = [m.get("method") for m in log["fromView"]]
        assert methods[:2] == ["ui/initialize", "ui/notifications/initialized"], methods
        kinds = {
            "ui/initialize": "McpUiInitializeRequest",
            "ui/notifications/initialized": "McpUiInitializedNotification",
            "ui/notifications/size-changed": "McpUiSizeChangedNotification",
        }
        for message in log["fromView"]:
            assert message["jsonrpc"] == "2.0"
            if message["method"] == "tools/call":
                CallToolRequestParams.model_validate(message["params"])
                assert isinstance(message["id"], int)
            else:
                schema.validate_message(message, kinds[message["method"]])
        for message in log["toView"]:
            if "method" in message:
                name = {"ui/notifications/tool-input": "McpUiToolInputNotification"}.get(message["method"])
                schema.validate_message(message, name or "McpUiToolResultNotification")
            elif message.get("id") == 1:
                schema.validate(message["result"], "McpUiInitializeResult")


@pytest.fixture
def opened(browser: Any, host: AppsHost) -> Iterator[Any]:
    pages: list[Opened] = []

    def open_view(tool: str, args: dict, theme: str = "light", width: int = 0, styles: bool = True) -> Opened:
        pages.append(Opened(browser, host, tool, args, theme, width, styles))
        return pages[-1]

    yield open_view
    for page in pages:
        page.close()


def task_ids(view: Any, selector: str = ".task") -> list[int]:
    return [int(i) for i in view.locator(selector).evaluate_all("els => els.map(e => e.dataset.taskId)")]


def test_task_board_shows_the_project_and_changes_a_task_through_the_server(opened: Any, host: AppsHost) -> None:
    board = opened(*BOARD)
    data, view = board.data, board.view
    assert view.locator("h1").inner_text() == "Mobile App v2"
    assert view.locator("#summary").inner_text() == f"{data['total']} tasks · {data['overdue']} overdue"
    assert sorted(task_ids(view)) == sorted(t["id"] for t in data["items"])
    late = sorted(t["id"] for t in data["items"] if t.get("overdue"))
    assert late and sorted(task_ids(view, ".task.overdue")) == late
    assert view.locator(".task.overdue .chip.late").count() == len(late)
    columns = view.locator(".column").evaluate_all("els => els.map(e => e.dataset.status)")
    assert columns == data["statuses"]
    for status in data["statuses"]:
        in_data = sorted(t["id"] for t in data["items"] if t["status"] == status)
        assert sorted(task_ids(view, f'.column[data-status="{status}"] .task')) == in_data
    board.shoot("task-list-light")

    # Move an overdue task to Done from its card: one app-only call, then a refresh, and the sandbox changed.
    card = view.locator(f'.task[data-task-id="{late[0]}"]')
    card.locator("summary").click()
    card.locator('select[name="status"]').select_option("Done")
    view.locator("#status", has_text="Saved").wait_for()
    calls = board.log()["toolCalls"]
    assert calls[0] == {
        "name": "astravue_change_task",
        "arguments": {"task_id": late[0], "space_id": 1, "project_id": 1, "status": "Done"},
    }
    assert calls[1]["name"] == "astravue_refresh_view" and calls[1]["arguments"]["view"] == "task-list"
    stored = host.mcp("tools/call", {"name": "astravue_get_task", "arguments": {"task_id": late[0], **BOARD[1]}})
    assert stored["structuredContent"]["status"] == "Done"
    assert late[0] in task_ids(view, '.column[data-status="Done"] .task')
    assert late[0] not in task_ids(view, ".task.overdue")

    # A due date in the future takes the other overdue task out of the red.
    card = view.locator(f'.task[data-task-id="{late[1]}"]')
    card.locator("summary").click()
    card.locator('input[name="due"]').fill("2031-05-06")
    view.locator("#status", has_text="due 2031-05-06").wait_for()
    assert board.log()["toolCalls"][2]["arguments"] == {
        "task_id": late[1],
        "space_id": 1,
        "project_id": 1,
        "due": "2031-05-06",
    }
    assert view.locator(".task.overdue").count() == 0
    assert view.locator("#summary").inner_text().endswith("· 0 overdue")


def test_board_filters_sorts_switches_to_a_list_and_fits_a_narrow_host(opened: Any) -> None:
    board = opened(*BOARD, width=360)
    view = board.view
    view.locator("#refresh").click()
    board.page.wait_for_function("window.log.toolCalls.length === 1")
    assert board.log()["toolCalls"] == [
        {"name": "astravue_refresh_view", "arguments": {"view": "task-list", "arguments": BOARD[1]}}
    ]
    view.locator("#status").wait_for(state="hidden")
    assert board.frame.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    lefts = view.locator(".column").evaluate_all("els => els.map(e => e.getBoundingClientRect().left)")
    assert len(set(lefts)) == 1  # the columns stack instead of overflowing
    view.locator("#late-only").check()
    assert sorted(task_ids(view)) == sorted(t["id"] for t in board.data["items"] if t.get("overdue"))
    view.locator("#late-only").uncheck()
    view.locator("#filter").fill("android")
    expected = [t for t in board.data["items"] if "android" in " ".join([t["title"], *t.get("tags", [])]).lower()]
    assert sorted(task_ids(view)) == sorted(t["id"] for t in expected)
    view.locator("#filter").fill("")
    view.locator("#as-list").click()
    view.locator("#sort").select_option("priority")
    ranks = {p: i for i, p in enumerate(board.data["priorities"])}
    shown = [next(t for t in board.data["items"] if t["id"] == i) for i in task_ids(view)]
    assert [ranks[t["priority"]] for t in shown] == sorted(ranks[t["priority"]] for t in shown)
    assert board.page.evaluate("parseInt(document.getElementById('view').style.height)") > 300  # size-changed
    board.shoot("task-list-narrow")


@pytest.mark.parametrize(
    ("styles", "background", "radius"),
    [(True, "rgb(31, 31, 35)", "9px"), (False, "rgb(27, 27, 31)", "8px")],
    ids=["host-theme", "own-fallbacks"],
)
def test_board_in_dark_mode_follows_the_host_theme_or_its_own(opened: Any, styles: bool, background: str, radius: str):
    board = opened(*BOARD, theme="dark", styles=styles)
    assert board.frame.evaluate("document.documentElement.dataset.theme") == "dark"
    assert board.frame.evaluate("getComputedStyle(document.body).backgroundColor") == background
    assert board.frame.evaluate("getComputedStyle(document.querySelector('.task')).borderRadius") == radius
    if styles:
        board.shoot("task-list-dark")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_my_tasks_groups_the_open_tasks_by_due(opened: Any, theme: str) -> None:
    mine = opened(*MINE, theme=theme)
    data, view = mine.data, mine.view
    assert view.locator("h1").inner_text() == "Tasks of Maya Patel"
    groups = view.locator(".group").evaluate_all("els => els.map(e => e.dataset.group)")
    assert groups == [g["key"] for g in data["groups"]]
    for group in data["groups"]:
        assert task_ids(view, f'.group[data-group="{group["key"]}"] .task') == [t["id"] for t in group["items"]]
    assert task_ids(view, ".task.overdue") == [t["id"] for t in data["groups"][0]["items"]]
    assert data["groups"][0]["key"] == "overdue"
    assert view.locator("#summary").inner_text() == f"{data['total']} open"
    assert data["basis"] in view.locator("#note").inner_text()
    mine.shoot(f"my-tasks-{theme}")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_project_overview_draws_its_counts(opened: Any, theme: str) -> None:
    overview = opened(*OVERVIEW, theme=theme)
    data, view = overview.data, overview.view
    kpis = view.locator(".kpi").evaluate_all("els => els.map(e => [e.dataset.kpi, e.querySelector('b').textContent])")
    assert kpis == [
        ["tasks", str(data["total"])],
        ["open", str(data["open"])],
        ["completed", str(data["completed"])],
        ["overdue", str(data["overdue_count"])],
    ]
    rows = view.locator("#by-status .row").evaluate_all(
        "els => els.map(e => [e.dataset.label, e.lastChild.textContent])"
    )
    assert rows == [[t["label"], str(t["count"])] for t in data["by_status"]]
    people = view.locator("#time .row").evaluate_all("els => els.map(e => e.dataset.label)")
    assert people == [p["name"] for p in data["time"]["by_person"]]
    assert task_ids(view, "#overdue .task.overdue") == [t["id"] for t in data["overdue"]]
    assert view.locator("#donut b").inner_text() == f"{round(100 * data['completed'] / data['total'])}%"
    overview.shoot(f"project-overview-{theme}")


def test_the_page_cannot_reach_another_origin_and_ignores_other_windows(opened: Any, host: AppsHost) -> None:
    board = opened(*BOARD)
    outside = f"{host.outside}/exfiltrate"
    # The host page itself may fetch the outside origin (so the check below can see a request arrive)...
    assert board.page.evaluate(f"fetch('{outside}?from=host').then(r => r.text())") == "reached"
    # ...but the view, under the CSP built from its metadata, cannot.
    outcome = board.frame.evaluate(f"fetch('{outside}?from=view').then(() => 'reached', e => 'blocked: ' + e)")
    assert outcome.startswith("blocked"), outcome
    assert host.outside_hits == ["/exfiltrate?from=host"]

    # A window other than the host (here a second frame of the host page) forges a tool result: ignored.
    forged = {
        "jsonrpc": "2.0",
        "method": "ui/notifications/tool-result",
        "params": {"isError": True, "content": [{"type": "text", "text": "forged"}]},
    }
    board.page.evaluate(
        """(forged) => {
            const other = document.createElement("iframe");
            document.body.append(other);
            const view = document.getElementById("view").contentWindow;
            other.contentWindow.Function("w", "m", "w.postMessage(m, '*')")(view, forged);
        }""",
        forged,
    )
    board.page.wait_for_timeout(300)
    assert board.view.locator("#status").is_hidden()
    assert board.view.locator("h1").inner_text() == "Mobile App v2"
    assert sorted(task_ids(board.view)) == sorted(t["id"] for t in board.data["items"])
    assert board.errors == []
    # The same message from the host itself is obeyed (so the check above could have failed).
    board.page.evaluate("(m) => document.getElementById('view').contentWindow.postMessage(m, '*')", forged)
    board.view.locator("#status.error", has_text="forged").wait_for()


def test_read_only_server_shows_the_board_without_changes(browser: Any) -> None:
    with apps_host(read_only=True) as host:
        board = Opened(browser, host, *BOARD)
        try:
            assert board.data["editable"] is False
            assert board.view.locator(".task").count() == board.data["total"]
            assert board.view.locator(".task .change").count() == 0
            assert "Read-only" in board.view.locator("#note").inner_text()
        finally:
            board.close()


def readme_shots() -> set[str]:
    return set(re.findall(r"docs/img/([\w-]+)\.png", (ROOT / "README.md").read_text(encoding="utf-8")))


def test_the_readme_shows_screenshots_these_tests_take() -> None:
    shown = readme_shots()
    taken = {f"{view}-{theme}" for view in ("task-list", "my-tasks", "project-overview") for theme in ("light", "dark")}
    assert shown and shown <= taken
    assert {name.rsplit("-", 1)[1] for name in shown} == {"light", "dark"}
    for name in shown:
        image = README_SHOTS / f"{name}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size < 150_000, name
