"""``astravue-mcp doctor``: all green on the sandbox, precise red lines when a path or the org is wrong.

The wrong-path tests build the sandbox app *before* patching the endpoint table: the sandbox
generates its routes from the same table, so patching first would move the sandbox along with
the client and hide the mistake the doctor must find.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx2
import pytest

from astravue_mcp.api.endpoints import ENDPOINTS, Endpoint
from astravue_mcp.cli import main
from astravue_mcp.config import SANDBOX_URL, Settings, load_settings
from astravue_mcp.doctor import Report, diagnose
from astravue_mcp.sandbox import create_app

pytestmark = pytest.mark.anyio

READS = [name for name, ep in ENDPOINTS.items() if ep.method == "GET"]
LINE = re.compile(r"^\s*(ok|warn|skip|FAIL)\s{2,}(.+?)\s{2,}(.*)$")


def lines(text: str, verdict: str) -> list[str]:
    """The report's lines with this verdict, columns separated by exactly two spaces."""
    return [norm(m.group(0)) for m in map(LINE.match, text.splitlines()) if m and m.group(1) == verdict]


def norm(text: str) -> str:
    return "\n".join(re.sub(r"\s{2,}", "  ", line.strip()) for line in text.splitlines())


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, **env: str) -> tuple:
    for var in [v for v in __import__("os").environ if v.startswith("ASTRAVUE_")]:
        monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    code = main(["doctor", *args])
    out, err = capsys.readouterr()
    return code, norm(out), err


async def sandbox_report(
    settings: Settings | None = None, transport: httpx2.AsyncBaseTransport | None = None
) -> Report:
    settings = (settings or load_settings({})).sandboxed(SANDBOX_URL)
    return await diagnose(settings, transport=transport or httpx2.ASGITransport(app=create_app()), sandbox=True)


def test_sandbox_is_all_green(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "--sandbox")
    assert code == 0, out
    assert lines(out, "FAIL") == [] and lines(out, "warn") == []
    answered = {m.group(3).split(":")[0] for m in map(LINE.match, out.splitlines()) if m and m.group(1) == "ok"}
    assert set(READS) <= answered, f"not every read endpoint was checked: {set(READS) - answered}"
    assert "ok  org 1" in out and "accepted (3 spaces visible)" in out
    assert "GET /v1/spaces/1/projects/1/tasks/2/subtasks" in out  # a task that has subtasks was found
    assert "rate budget  off (no client-side budget), 8 calls in parallel" in out  # the sandbox needs none
    assert "timeouts  connect 5 s, read 30 s per API call, 30 s per tool call" in out
    assert out.rstrip().endswith("Verdict: OK (26 ok, 1 skip).")


async def test_wrong_path_is_one_precise_red_line(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = httpx2.ASGITransport(app=create_app())  # routes from the correct table
    monkeypatch.setitem(ENDPOINTS, "list_task_comments", Endpoint("GET", "/v1/tasks/{taskId}/comment", "task", "low"))
    report = await sandbox_report(transport=transport)
    text = norm(report.render())
    assert report.exit_code == 1
    assert lines(text, "FAIL") == [
        "FAIL  GET /v1/tasks/2/comment  list_task_comments: HTTP 404: wrong path, or the id "
        "does not exist; fix its path in astravue_mcp/api/endpoints.py (the reference's confidence: low)"
    ]
    assert "ok  GET /v1/tasks/2/checklists" in text  # its neighbours are still checked
    assert "Verdict: FAILED (25 ok, 1 skip, 1 FAIL)." in text


async def test_wrong_list_path_names_what_could_not_be_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = httpx2.ASGITransport(app=create_app())
    monkeypatch.setitem(ENDPOINTS, "list_projects", Endpoint("GET", "/v1/spaces/{spaceId}/project", "space", "high"))
    text = norm((await sandbox_report(transport=transport)).render())
    fails = lines(text, "FAIL")
    assert len(fails) == 1 and fails[0].startswith("FAIL  GET /v1/spaces/1/project ")
    assert "list_projects: HTTP 404" in fails[0]
    skipped = lines(text, "skip")
    assert any("get_project: needs a project, but list_projects failed" in s for s in skipped)
    # Task ids are global: comments are still tried, on a personal task.
    assert "ok  GET /v1/tasks/61/comments" in text


async def test_wrong_method_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = httpx2.ASGITransport(app=create_app())
    # A path that exists for PUT only: the API answers 405, and the line says so.
    wrong = Endpoint("GET", "/v1/time-track/tasks/{taskId}/stop", "task", "low")
    monkeypatch.setitem(ENDPOINTS, "list_active_timers", wrong)
    fails = lines((await sandbox_report(transport=transport)).render(), "FAIL")
    assert len(fails) == 1
    assert fails[0].startswith("FAIL  GET /v1/time-track/tasks/2/stop ")
    assert fails[0].endswith(
        "list_active_timers: HTTP 405: the path exists but not for GET; fix its path in "
        "astravue_mcp/api/endpoints.py (the reference's confidence: low)"
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_wrong_org_is_one_red_line() -> None:
    # `--sandbox` ignores ASTRAVUE_ORG_ID (the sandbox has its own org): a wrong one is set afterwards.
    settings = load_settings({}).sandboxed(SANDBOX_URL).model_copy(update={"org_id": 999})
    report = await diagnose(settings, transport=httpx2.ASGITransport(app=create_app()), sandbox=True)
    out = norm(report.render())
    assert report.exit_code == 1
    assert lines(out, "FAIL") == [
        "FAIL  org 999  rejected: GET /v1/spaces -> HTTP 403: this login has no access to org 999: "
        "check ASTRAVUE_ORG_ID"
    ]
    assert "skip  every other endpoint  the organisation check failed" in out


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/realms/astravue"


def test_missing_settings_and_unreachable_provider(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_url = closed_port_url()
    code, out, _ = run_cli(capsys, monkeypatch, ASTRAVUE_AUTH_URL=auth_url)
    assert code == 1
    fails = lines(out, "FAIL")
    assert fails[0].startswith("FAIL  ASTRAVUE_CLIENT_ID  not set: create an API client in Astravue")
    assert fails[1].startswith("FAIL  ASTRAVUE_ORG_ID  not set: set the numeric id")
    assert fails[2].startswith(f"FAIL  discovery  could not read {auth_url}/.well-known/openid-configuration")
    assert "skip  every endpoint  no usable credentials (see above)" in out


def test_no_stored_login(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out, _ = run_cli(
        capsys,
        monkeypatch,
        ASTRAVUE_AUTH_URL=closed_port_url(),
        ASTRAVUE_CLIENT_ID="my-client",
        ASTRAVUE_CLIENT_SECRET="s3cret-value-Xq",
        ASTRAVUE_ORG_ID="7",
        ASTRAVUE_TOKEN_STORE="file",
        ASTRAVUE_TOKEN_DIR=str(tmp_path),
    )
    assert code == 1
    assert "ok  ASTRAVUE_CLIENT_SECRET  set (hidden), sent by client_secret_post" in out
    assert "s3cret-value-Xq" not in out
    assert any(
        f.startswith("FAIL  stored login  none in file ") and 'run "astravue-mcp login"' in f
        for f in lines(out, "FAIL")
    )


def test_malformed_setting_names_the_variable_without_the_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli(capsys, monkeypatch, "--sandbox", ASTRAVUE_ORG_ID="acme", ASTRAVUE_CLIENT_SECRET="zz-9")
    assert code == 2 and out == ""
    assert "ASTRAVUE_ORG_ID='acme' is invalid" in err and "zz-9" not in err


# ---------------------------------------------------------------- a real OpenID provider
def test_live_login_discovery_and_refresh(
    oidc: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from astravue_mcp import account_commands as commands
    from astravue_mcp.auth import login as login_module
    from astravue_mcp.auth.store import open_store
    from tests.oidc import Browser

    settings = oidc.settings(tmp_path / "store")  # type: ignore[attr-defined]
    browser = Browser()
    monkeypatch.setattr(login_module, "open_browser", browser)
    assert commands.login(settings, timeout=10) == 0
    browser.join()
    before = open_store(settings).load()
    assert before is not None
    capsys.readouterr()

    code, out, _ = run_cli(capsys, monkeypatch, "--refresh", **oidc.env(settings))  # type: ignore[attr-defined]

    login = out.split("\nLogin\n", 1)[1].split("\n\n", 1)[0]
    assert lines(login, "FAIL") == [] and lines(login, "warn") == [], login
    assert f"ok  discovery  {settings.discovery_url} (issuer {settings.auth_url})" in login
    assert re.search(r"ok  stored login  alice in file .*tokens-\w+\.json", login)
    assert re.search(r"ok  refresh  works: new access token valid \d+ s; saved to the store", login)
    after = open_store(settings).load()
    assert after is not None and after.refresh_token != before.refresh_token  # rotated and saved
    # The API is the sandbox over real HTTP, validating the provider's JWTs: the new token works everywhere.
    assert "ok  org 1  accepted (3 spaces visible)" in out
    assert lines(out, "FAIL") == [] and lines(out, "skip") == []
    assert code == 0 and out.rstrip().endswith("Verdict: OK (34 ok).")
    for secret in (after.access_token, after.refresh_token or "", settings.client_secret.get_secret_value()):
        assert secret not in out
