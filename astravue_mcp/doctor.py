"""``astravue-mcp doctor``: check a real setup end to end and say precisely what is wrong.

The API reference is partly reconstructed, so a user's account may disagree with our endpoint
table. The doctor walks the same table the client uses (:data:`~astravue_mcp.api.endpoints.ENDPOINTS`),
through the same :class:`~astravue_mcp.api.client.AstravueClient` (same auth, ``X-Org-Id``, timeouts),
and reports every read endpoint that does not answer with its method, concrete path and status,
so a wrong guess is a one-line fix in ``api/endpoints.py``.

Each line has a verdict: ``ok``, ``warn`` (works, but worth knowing), ``skip`` (could not be
tried, and why) or ``FAIL``. Any ``FAIL`` makes the exit code 1. No secret is ever printed.
"""

from __future__ import annotations

import string
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import anyio
import anyio.to_thread
import httpx2

from astravue_mcp import __version__
from astravue_mcp.api import endpoints, models
from astravue_mcp.api.client import AstravueClient
from astravue_mcp.auth import oidc
from astravue_mcp.auth.credentials import BearerAuth
from astravue_mcp.auth.manager import TokenManager
from astravue_mcp.auth.store import StoreError, duration, open_store
from astravue_mcp.config import ENV_BY_FIELD, HELP, SANDBOX_URL, Settings
from astravue_mcp.errors import ApiError, AstravueError
from astravue_mcp.sandbox import create_app

Verdict = Literal["ok", "warn", "skip", "FAIL"]
ENDPOINTS_FILE = "astravue_mcp/api/endpoints.py"

# Personal tasks are a separate id space from project tasks (the sandbox answers 404 for a project
# task id on /v1/tasks/{taskId}); these operations take a personal task's id, every other one whose
# path names only {taskId} takes a project task's id (comments, checklists, timers: ids are global).
PERSONAL_TASK_OPERATIONS = ("get_task", "list_personal_task_subtasks")
SUBTASK_SEARCH = 5
"""How many project tasks are tried to find one with subtasks (for the subtask endpoints)."""
SAMPLE_PAGE = 10


@dataclass
class Check:
    verdict: Verdict
    what: str
    detail: str = ""


@dataclass
class Section:
    title: str
    checks: list[Check] = field(default_factory=list)

    def add(self, verdict: Verdict, what: str, detail: str = "") -> Check:
        check = Check(verdict, what, detail)
        self.checks.append(check)
        return check


@dataclass
class Report:
    target: str
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        self.sections.append(Section(title))
        return self.sections[-1]

    @property
    def checks(self) -> list[Check]:
        return [c for s in self.sections for c in s.checks]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "FAIL"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def render(self) -> str:
        lines = [f"astravue-mcp {__version__} doctor: {self.target}"]
        for section in self.sections:
            lines += ["", section.title]
            width = max((len(c.what) for c in section.checks), default=0)
            for c in section.checks:
                lines.append(f"  {c.verdict:<4}  {c.what:<{width}}  {c.detail}".rstrip())
        counts = {v: sum(c.verdict == v for c in self.checks) for v in ("ok", "warn", "skip", "FAIL")}
        summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        lines += ["", f"Verdict: {'FAILED' if self.failed else 'OK'} ({summary})."]
        return "\n".join(lines)


# ------------------------------------------------------------------ entry point
def run_doctor(settings: Settings, sandbox: bool = False, refresh: bool = False) -> int:
    """Print the report to stdout; exit code 1 when any check failed."""
    transport = None
    if sandbox:
        transport = httpx2.ASGITransport(app=create_app())
        settings = settings.sandboxed(SANDBOX_URL)
    report = anyio.run(lambda: diagnose(settings, transport=transport, sandbox=sandbox, refresh=refresh))
    print(report.render())
    sys.stdout.flush()
    return report.exit_code


async def diagnose(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    sandbox: bool = False,
    refresh: bool = False,
) -> Report:
    """Run every check and return the report (nothing printed)."""
    where = "the embedded sandbox" if sandbox else settings.api_url
    report = Report(f"{where}, org {settings.org_id if settings.org_id is not None else '(not set)'}")
    settings_ok = check_settings(report.section("Settings"), settings, sandbox)
    auth = await check_login(report.section("Login"), settings, sandbox, refresh, settings_ok)
    api = report.section(f"API (read endpoints from {ENDPOINTS_FILE})")
    if auth is None:
        api.add("skip", "every endpoint", "no usable credentials (see above)")
    else:
        async with AstravueClient(settings, auth=auth, transport=transport) as client:
            await ApiChecks(api, client, settings).run()
    check_limits(report.section("Limits in effect"), settings)
    return report


# ------------------------------------------------------------------ settings
def check_settings(section: Section, settings: Settings, sandbox: bool) -> bool:
    """Presence and shape of what a person supplies. Secrets are reported as set or not, never shown."""
    ok = True
    section.add("ok", ENV_BY_FIELD["api_url"], settings.api_url)
    if sandbox:
        section.add("ok", "credentials", "the sandbox's built-in token (no account needed)")
        section.add("ok", ENV_BY_FIELD["org_id"], str(settings.org_id))
        return True
    section.add("ok", ENV_BY_FIELD["auth_url"], settings.auth_url)
    if settings.access_token is not None:
        section.add("ok", ENV_BY_FIELD["access_token"], "set (hidden): used instead of the stored login")
    elif not settings.client_id:
        ok = _missing(section, "client_id")
    else:
        section.add("ok", ENV_BY_FIELD["client_id"], settings.client_id)
        if settings.client_secret is not None:
            section.add("ok", ENV_BY_FIELD["client_secret"], f"set (hidden), sent by {settings.token_auth_method}")
        else:
            section.add("warn", ENV_BY_FIELD["client_secret"], "not set: only works for a public (PKCE-only) client")
        section.add("ok", ENV_BY_FIELD["redirect_uri"], f"{settings.redirect_uri} (must match the one in Astravue)")
    if settings.org_id is None:
        ok = _missing(section, "org_id") and ok
    else:
        section.add("ok", ENV_BY_FIELD["org_id"], str(settings.org_id))
    return ok


def _missing(section: Section, name: str) -> bool:
    section.add("FAIL", ENV_BY_FIELD[name], f"not set: {HELP[name]}")
    return False


# ------------------------------------------------------------------ login
async def check_login(
    section: Section, settings: Settings, sandbox: bool, refresh: bool, settings_ok: bool
) -> httpx2.Auth | None:
    """Discovery, the stored login and (on request) a refresh; returns the auth for the API checks."""
    if sandbox:
        section.add("skip", "login", "the sandbox needs none")
        return BearerAuth(_secret(settings.access_token), "the sandbox")
    if settings.access_token is not None:
        section.add("skip", "login", f"{ENV_BY_FIELD['access_token']} is used as is (no discovery, no refresh)")
        return BearerAuth(_secret(settings.access_token), ENV_BY_FIELD["access_token"])
    await _check_discovery(section, settings)
    if not settings.client_id:
        section.add("skip", "stored login", f"needs {ENV_BY_FIELD['client_id']}")
        return None
    try:
        store = await anyio.to_thread.run_sync(open_store, settings)
        tokens = await anyio.to_thread.run_sync(store.load)
    except (StoreError, AstravueError) as exc:
        section.add("FAIL", "stored login", f"cannot read the token store: {exc}")
        return None
    if tokens is None:
        section.add("FAIL", "stored login", f'none in {store.description}: run "astravue-mcp login"')
        return None
    now = time.time()
    who = tokens.claims.get("preferred_username") or tokens.claims.get("email") or tokens.claims.get("sub")
    section.add("ok", "stored login", f"{who or 'present'} in {store.description}")
    _check_expiry(section, tokens, now)
    manager = TokenManager(settings, store=store)
    if refresh:
        await _check_refresh(section, manager, tokens.access_token)
    else:
        section.add("skip", "refresh", "not tried: pass --refresh to test it (it rotates the refresh token)")
    return manager if settings_ok else None


async def _check_discovery(section: Section, settings: Settings) -> None:
    try:
        document = await oidc.discover(settings)
    except oidc.ProviderUnavailable as exc:
        section.add("FAIL", "discovery", f"{exc}: check {ENV_BY_FIELD['auth_url']} (and HTTPS_PROXY behind a proxy)")
        return
    advertised = document.get("token_endpoint")
    if advertised and advertised != settings.token_endpoint:
        section.add("warn", "discovery", f"token endpoint is {advertised}, but {settings.token_endpoint} is used")
        return
    section.add("ok", "discovery", f"{settings.discovery_url} (issuer {document.get('issuer', '?')})")


def _check_expiry(section: Section, tokens: Any, now: float) -> None:
    if tokens.expires_at is None:
        section.add("ok", "access token", "expiry not reported (renewed when the API answers 401)")
    elif tokens.expires_at > now:
        section.add("ok", "access token", f"expires in {duration(tokens.expires_at - now)}")
    elif tokens.refresh_token:
        section.add("ok", "access token", f"expired {duration(now - tokens.expires_at)} ago; renewed on next call")
    else:
        section.add("FAIL", "access token", 'expired and no refresh token: run "astravue-mcp login"')
    if not tokens.refresh_token:
        section.add("warn", "refresh token", "none: the login ends when the access token expires")
    elif tokens.refresh_expires_at is None:
        section.add("ok", "refresh token", "present, no fixed expiry reported")
    elif tokens.refresh_expired(now):
        section.add("FAIL", "refresh token", 'expired: run "astravue-mcp login"')
    else:
        section.add("ok", "refresh token", f"expires in {duration(tokens.refresh_expires_at - now)}")


async def _check_refresh(section: Section, manager: Any, access_token: str) -> None:
    # The same single-flight, store-locked renewal a 401 takes: exactly what this check must exercise.
    try:
        renewed = await manager.refresh_now(rejected=access_token)
    except AstravueError as exc:
        section.add("FAIL", "refresh", str(exc))
        return
    valid = f"valid {duration(renewed.expires_at - renewed.obtained_at)}" if renewed.expires_at else "lifetime unknown"
    section.add("ok", "refresh", f"works: new access token {valid}; saved to the store")


# ------------------------------------------------------------------ API
@dataclass
class Samples:
    """Ids found on the way, to fill the path parameters of the endpoints that need them."""

    ids: dict[str, int] = field(default_factory=dict)
    personal_task: int | None = None
    missing: dict[str, str] = field(default_factory=dict)
    """Why an id could not be found, by id name ('personal' for the personal task)."""

    def for_endpoint(self, operation: str, path: str) -> dict[str, int] | str:
        """The ids for this endpoint, or why they are missing."""
        ids: dict[str, int] = {}
        for name in _placeholders(path):
            key = "personal" if name == "taskId" and operation in PERSONAL_TASK_OPERATIONS else name
            value = self.personal_task if key == "personal" else self.ids.get(name)
            if value is None:
                return self.missing.get(key, f"no {name} found to try it with")
            ids[name] = value
        return ids


class ApiChecks:
    """Probe every GET of the endpoint table once, collecting ids on the way."""

    def __init__(self, section: Section, client: AstravueClient, settings: Settings) -> None:
        self.section = section
        self.client = client
        self.settings = settings
        # Read at call time: the table the client uses right now.
        self.reads = {name: ep for name, ep in endpoints.ENDPOINTS.items() if ep.method == "GET"}
        self.samples = Samples()
        self.results: dict[str, Any] = {}
        self.tried: set[str] = set()

    async def run(self) -> None:
        # The org check is the first call: every other answer depends on it.
        if not await self.check_org():
            self.section.add("skip", "every other endpoint", "the organisation check failed")
            return
        await self.sample()
        for operation in self.reads:
            if operation not in self.tried:
                await self.probe(operation)
        # Ids were collected in dependency order; report in the table's order, the org line first.
        order = {f"{name}:": index for index, name in enumerate(self.reads)}
        self.section.checks.sort(key=lambda c: order.get(c.detail.split(" ", 1)[0], -1))

    async def check_org(self) -> bool:
        org = f"org {self.settings.org_id}"
        endpoint = self.reads["list_spaces"]
        self.tried.add("list_spaces")
        try:
            data = await self.client.call("list_spaces", params=_params("list_spaces"))
        except AstravueError as exc:
            status = exc.status if isinstance(exc, ApiError) else None
            var = ENV_BY_FIELD["org_id"]
            hint = {
                400: f"the API did not accept the org id: check {var}",
                403: f"this login has no access to {org}: check {var}",
                404: f"unknown org or path: check {var}, then the path of list_spaces in {ENDPOINTS_FILE}",
            }.get(status or 0, str(exc))
            answer = f"HTTP {status}" if status else "no answer"
            self.section.add("FAIL", org, f"rejected: {endpoint.method} {endpoint.path} -> {answer}: {hint}")
            return False
        self.results["list_spaces"] = data
        count = _count(data)
        self.section.add("ok", org, f"accepted ({count} space{'' if count == 1 else 's'} visible)")
        self.section.add("ok", f"{endpoint.method} {endpoint.path}", "list_spaces: 200")
        return True

    async def probe(self, operation: str) -> bool:
        """Call one read endpoint and add its line; True when it answered."""
        self.tried.add(operation)
        endpoint = self.reads[operation]
        ids = self.samples.for_endpoint(operation, endpoint.path)
        if isinstance(ids, str):
            self.section.add("skip", f"{endpoint.method} {endpoint.path}", f"{operation}: {ids}")
            return False
        line = f"{endpoint.method} {endpoint.url(**ids)}"
        try:
            self.results[operation] = await self.client.call(operation, ids=ids, params=_params(operation))
        except AstravueError as exc:
            status = exc.status if isinstance(exc, ApiError) else None
            self.section.add("FAIL", line, f"{operation}: {_explain(status, exc, endpoint)}")
            return False
        self.section.add("ok", line, f"{operation}: 200")
        return True

    async def sample(self) -> None:
        """Walk space -> project -> project task (and the personal tasks, and a subtask) for ids."""
        chain = [
            ("list_spaces", "spaceId", models.Space, "space_id", "a space"),
            ("list_projects", "projectId", models.Project, "project_id", "a project"),
            ("list_project_tasks", "taskId", models.Task, "task_id", "a project task"),
        ]
        for position, (operation, key, model, attribute, what) in enumerate(chain):
            if operation not in self.results and not await self.probe(operation):
                reason = f"needs {what}, but {operation} failed"
            elif (value := _first(self.results[operation], model, attribute)) is None:
                reason = f"no {what.split(' ', 1)[1]} found to try it with"
            else:
                self.samples.ids[key] = value
                continue
            for _, later, *_ in chain[position:]:  # everything further down the chain lacks its id too
                self.samples.missing.setdefault(later, reason)
            break
        if await self.probe("list_tasks"):
            self.samples.personal_task = _first(self.results["list_tasks"], models.Task, "task_id")
            if self.samples.personal_task is None:
                self.samples.missing["personal"] = "no personal task found to try it with"
        else:
            self.samples.missing["personal"] = "needs a personal task, but list_tasks failed"
        if "taskId" not in self.samples.ids and self.samples.personal_task is not None:
            # Task ids are global: comments, checklists and timers can be tried on a personal task.
            self.samples.ids["taskId"] = self.samples.personal_task
        await self.sample_subtask()

    async def sample_subtask(self) -> None:
        """Find a project task that has subtasks among the first few (the subtask endpoints need one)."""
        operation = "list_project_task_subtasks"
        if "projectId" not in self.samples.ids:
            self.samples.missing["subtaskId"] = "needs a project task first"
            return
        first_task = self.samples.ids["taskId"]
        for index, raw in enumerate(_items(self.results.get("list_project_tasks"))[:SUBTASK_SEARCH]):
            self.samples.ids["taskId"] = models.Task.model_validate(raw).task_id
            if index:
                self.section.checks.pop()  # one line per endpoint: the last task tried replaces the previous
            if not await self.probe(operation):
                self.samples.missing["subtaskId"] = f"needs a subtask, but {operation} failed"
                break
            subtask = _first(self.results[operation], models.Task, "task_id")
            if subtask is not None:
                self.samples.ids["subtaskId"] = subtask
                break
        else:
            self.samples.missing["subtaskId"] = f"none of the first {SUBTASK_SEARCH} project tasks has a subtask"
        if "subtaskId" not in self.samples.ids:
            self.samples.ids["taskId"] = first_task


def _explain(status: int | None, exc: Exception, endpoint: Any) -> str:
    fix = f"fix its path in {ENDPOINTS_FILE} (the reference's confidence: {endpoint.confidence})"
    if status == 404:
        return f"HTTP 404: wrong path, or the id does not exist; {fix}"
    if status == 405:
        return f"HTTP 405: the path exists but not for {endpoint.method}; {fix}"
    if status in (400, 422):
        return f"HTTP {status}: the API wants other parameters: {exc}"
    if status is not None:
        return f"HTTP {status}: {exc}"
    return str(exc)


def _placeholders(path: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(path) if name]


def _params(operation: str) -> dict[str, Any]:
    params: dict[str, Any] = {endpoints.PAGE: endpoints.PAGES_START_AT, endpoints.PAGE_SIZE: SAMPLE_PAGE}
    if "timesheet" in operation:
        today = datetime.now(UTC).date()
        params[endpoints.TIMESHEET_RANGE["start"]] = (today - timedelta(days=7)).isoformat()
        params[endpoints.TIMESHEET_RANGE["end"]] = today.isoformat()
    return params if operation.startswith("list_") or "timesheet" in operation else {}


def _items(data: Any) -> list[Any]:
    try:
        return models.page_of(data).items
    except ValueError:
        return []


def _count(data: Any) -> int:
    try:
        page = models.page_of(data)
    except ValueError:
        return 0
    return page.total if page.total is not None else len(page.items)


def _first(data: Any, model: type[Any], attribute: str) -> int | None:
    for raw in _items(data):
        try:
            return int(getattr(model.model_validate(raw), attribute))
        except (ValueError, TypeError):
            continue
    return None


# ------------------------------------------------------------------ limits
def check_limits(section: Section, settings: Settings) -> None:
    s = settings
    budget = f"{s.rate_limit} requests/min client-side" if s.rate_limit else "off (no client-side budget)"
    section.add("ok", "rate budget", f"{budget}, {s.max_concurrency} calls in parallel")
    section.add(
        "ok",
        "timeouts",
        f"connect {s.connect_timeout:g} s, read {s.read_timeout:g} s per API call, {s.call_timeout:g} s per tool call",
    )
    section.add("ok", "retries", f"up to {s.max_retries} for safe calls, within {s.retry_budget:g} s")


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""
