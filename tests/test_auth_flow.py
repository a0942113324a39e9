"""OAuth end to end against a real OpenID provider (node oidc-provider dressed as a Keycloak realm).

Login through a scripted browser, status, logout, the login failure modes, and silent refresh
through real tool calls: in one process (single flight), across three `astravue-mcp serve`
processes sharing one store with refresh-token rotation, and after the refresh token is revoked.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from astravue_mcp import account_commands as commands
from astravue_mcp.api.client import AstravueClient
from astravue_mcp.auth import login as login_module
from astravue_mcp.auth import renew as renew_module
from astravue_mcp.auth.credentials import auth_for
from astravue_mcp.auth.manager import EXPIRED_MESSAGE, NO_LOGIN_MESSAGE, LoginUnavailable, TokenManager
from astravue_mcp.auth.store import FileStore, TokenSet, TokenStore, open_store
from astravue_mcp.config import Settings
from astravue_mcp.server import build_server
from tests.oidc import ACCESS_TTL, CLIENT_SECRET, Browser, Realm, Recorder, free_port, realm

pytestmark = pytest.mark.anyio
TOOL = "astravue_list_spaces"
LONG_TTL = 120


def log_in(settings: Settings, monkeypatch: pytest.MonkeyPatch, browser: Browser | None = None, **kw: Any) -> int:
    """Run the real `login` command with the scripted browser in place of the system browser."""
    browser = browser or Browser()
    monkeypatch.setattr(login_module, "open_browser", browser)
    code = commands.login(settings, no_browser=False, timeout=kw.pop("timeout", 10))
    browser.join()
    return code


def stored(settings: Settings) -> TokenSet:
    tokens = open_store(settings).load()
    assert tokens is not None
    return tokens


def expire_stored_access_token(store: TokenStore) -> TokenSet:
    """Make the stored access token look expired, so the next call refreshes; returns the stored set."""
    assert isinstance(store, FileStore)
    with store.lock.held():  # also waits for a refresh helper still finishing a previous one
        tokens = store.load()
        assert tokens is not None and tokens.refresh_token, "the login is gone"
        store.save(tokens.model_copy(update={"expires_at": tokens.obtained_at}))
    return tokens


async def until_expired(tokens: TokenSet) -> None:
    assert tokens.expires_at is not None
    await anyio.sleep(max(0.0, tokens.expires_at - tokens.obtained_at) + 0.2)


@contextmanager
def occupied(settings: Settings) -> Iterator[int]:
    """Another program listening on the redirect URI's port."""
    port = int(httpx2.URL(settings.redirect_uri).port or 0)
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past our last login's TIME_WAIT
        busy.bind(("127.0.0.1", port))
        busy.listen()
        yield port


def secrets_of(tokens: TokenSet) -> list[str]:
    return [t for t in (tokens.access_token, tokens.refresh_token, CLIENT_SECRET) if t]


# ------------------------------------------------------------ login, status, logout
@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_login_status_logout(
    oidc: Realm, tmp_path: Path, method: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = oidc.settings(tmp_path / "store", method=method)
    browser = Browser("alice")
    assert log_in(settings, monkeypatch, browser) == 0
    assert browser.page is not None and browser.page.status_code == 200
    assert "You can close this tab" in browser.page.text
    url = httpx2.URL(browser.opened[0])
    assert url.params["code_challenge_method"] == "S256" and url.params["scope"] == "openid profile email"
    assert len(url.params["state"]) >= 32

    store = open_store(settings)
    assert isinstance(store, FileStore)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert [p.name for p in store.path.parent.iterdir() if p.suffix == ".tmp"] == []
    raw = store.path.read_text()
    assert CLIENT_SECRET not in raw  # the secret stays in the environment, never in the store
    tokens = stored(settings)
    assert tokens.claims["preferred_username"] == "alice" and tokens.refresh_token
    assert tokens.refresh_expires_at is not None  # from Keycloak's refresh_expires_in

    capsys.readouterr()
    assert commands.status(settings) == 0
    out, err = capsys.readouterr()
    # The person's name from the ID token, then what else tells them apart.
    assert "Logged in:    Test alice (alice, alice@example.test)" in out
    assert settings.client_id in out and oidc.provider.issuer in out and "Org id:       1" in out
    assert "Access token: expires in" in out and "Refresh token: expires in" in out
    for secret in secrets_of(tokens):
        assert secret not in out + err

    assert commands.logout(settings) == 0
    err = capsys.readouterr().err
    assert "revoked the login" in err and not store.path.exists()
    # Really revoked: the provider refuses the old refresh token now.
    answer = httpx2.post(
        settings.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
        auth=(settings.client_id, CLIENT_SECRET),
    )
    assert answer.json()["error"] == "invalid_grant"
    assert commands.status(settings) == 1
    assert "Not logged in" in capsys.readouterr().err


def test_headless_login_reads_the_pasted_redirect(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Person:
        """Reads the printed URL, logs in on 'another machine', pastes the final address."""

        def readline(self) -> str:
            url = re.search(r"(http://\S+/auth\?\S+)", capsys.readouterr().err)
            assert url, "the login URL was not printed"
            return Browser("bob").walk(url.group(1)) + "\n"

    monkeypatch.setattr(sys, "stdin", Person())
    # The redirect port is busy: headless mode must not need it.
    with occupied(settings):
        assert commands.login(settings, no_browser=True, timeout=10) == 0
    assert stored(settings).claims["sub"] == "bob"


def test_a_callback_with_a_wrong_state_is_ignored_and_the_login_goes_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Any local program or web page can hit the callback; without our state it must not end the login."""
    forged: list[httpx2.Response] = []

    class Interloper(Browser):
        def walk(self, url: str) -> str:
            final = super().walk(url)
            for bad in ("state=forged", "state=%C3%A9t%C3%A9", "error=access_denied"):  # no state, non-ASCII...
                forged.append(httpx2.get(re.sub(r"state=[^&]+", bad, final), timeout=10))
            return final  # then the person's real redirect arrives

    assert log_in(settings, monkeypatch, Interloper()) == 0
    assert [r.status_code for r in forged] == [400, 400, 400]
    assert caplog.text.count("state mismatch") == 3  # logged, not fatal
    assert stored(settings).claims["sub"] == "alice"


def oidc_grants(settings: Settings) -> dict[str, int]:
    base = settings.auth_url.split("/realms/")[0]
    return httpx2.get(f"{base}/_test/stats").json()["grants"]


def test_access_denied_at_the_provider(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert log_in(settings, monkeypatch, Browser(approve=False)) == 1
    err = capsys.readouterr().err
    assert "cancelled or access was denied" in err and "astravue-mcp login" in err
    assert open_store(settings).load() is None


def test_callback_timeout_then_port_is_free_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(login_module, "open_browser", lambda url: True)  # nobody logs in
    assert commands.login(settings, timeout=0.5) == 1
    assert "No login arrived within" in capsys.readouterr().err
    assert log_in(settings, monkeypatch) == 0  # the one-shot server released its port


def test_busy_port_is_reported_before_opening_a_browser(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    browser = Browser()
    with occupied(settings) as port:
        assert log_in(settings, monkeypatch, browser) == 1
    err = capsys.readouterr().err
    assert f"Port {port} on 127.0.0.1 is busy" in err and "ASTRAVUE_REDIRECT_URI" in err
    assert browser.opened == []


def test_callback_server_listens_on_loopback_only(settings: Settings) -> None:
    async def main() -> None:
        flow = login_module.LoginFlow(settings)
        async with flow.loopback() as callback:
            port = callback.port
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.connect(("127.0.0.1", port))
            addresses = {a for *_, (a, *__) in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
            for address in addresses - {"127.0.0.1", "127.0.1.1"}:
                with socket.socket() as probe, pytest.raises(OSError):
                    probe.settimeout(1)
                    probe.connect((address, port))

    anyio.run(main)


# ------------------------------------------------------------ silent refresh, one process
async def test_expiry_refreshes_silently_through_a_real_tool_call(
    oidc: Realm, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await anyio.to_thread.run_sync(log_in, settings, monkeypatch) == 0
    first = stored(settings)
    api = Recorder()
    async with Client(build_server(settings, transport=api)) as client:
        result = await client.call_tool(TOOL, {})
        assert not result.is_error, result.content
        first = stored(settings)  # renewed already if this first call came late (a busy machine)
        oidc.provider.reset_stats()
        await until_expired(first)
        result = await client.call_tool(TOOL, {})
        assert not result.is_error, result.content
        assert result.structured_content and result.structured_content["items"]
    renewed = stored(settings)
    assert renewed.refresh_token != first.refresh_token  # rotated, and the rotation was saved
    assert oidc.provider.stats()["grants"].get("refresh_token") == 1
    assert api.statuses == [200, 200]  # refreshed before the API had to say 401


async def test_a_401_refreshes_once_and_resends(
    oidc: Realm, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await anyio.to_thread.run_sync(log_in, settings, monkeypatch) == 0
    tokens = stored(settings)
    # A clock skew: this process believes the token lives an hour, the API knows better.
    open_store(settings).save(tokens.model_copy(update={"expires_at": tokens.obtained_at + 3600}))
    await until_expired(tokens)
    recorder = Recorder()
    async with AstravueClient(settings, auth=auth_for(settings), transport=recorder) as api:
        assert await api.call("list_spaces")
    assert recorder.statuses == [401, 200]
    assert oidc.provider.stats()["grants"].get("refresh_token") == 1


async def test_a_margin_longer_than_the_token_lifetime_does_not_refresh_every_call(
    oidc: Realm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default 60 s margin on 2 s tokens: capped at a quarter of the lifetime (0.5 s).
    settings = oidc.settings(tmp_path / "store", refresh_margin=60.0)
    oidc.provider.reset_stats()
    assert await anyio.to_thread.run_sync(log_in, settings, monkeypatch) == 0
    auth = auth_for(settings)
    assert isinstance(auth, TokenManager)
    async with AstravueClient(settings, auth=auth) as api:
        started = anyio.current_time()
        for _ in range(10):
            assert await api.call("list_spaces")
        calls_took = anyio.current_time() - started
    if calls_took < ACCESS_TTL * 0.75 - 0.1:  # all within the first three quarters of the lifetime
        assert auth.refresh_count == 0
    # At most one refresh per three quarters of a lifetime that the calls took (a busy machine is slow).
    allowed = 1 + int(calls_took / (ACCESS_TTL * 0.75))
    assert auth.refresh_count <= min(allowed, 5), f"{auth.refresh_count} refreshes for 10 calls in {calls_took:.2f} s"
    assert oidc.provider.stats()["grants"].get("refresh_token", 0) == auth.refresh_count


@pytest.fixture(scope="module")
def long_lived() -> Iterator[Realm]:
    """Access tokens that outlive any burst on a busy machine: expiry is forced through the store."""
    with realm(access_ttl=LONG_TTL) as r:
        yield r


async def test_a_hundred_concurrent_calls_at_expiry_cause_one_refresh(
    long_lived: Realm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = long_lived.settings(tmp_path / "store")
    assert await anyio.to_thread.run_sync(log_in, settings, monkeypatch) == 0
    before = expire_stored_access_token(open_store(settings))
    long_lived.provider.reset_stats()
    auth = auth_for(settings)  # a server that starts (or wakes) with an expired access token
    assert isinstance(auth, TokenManager)
    results: list[Any] = []
    async with AstravueClient(settings, auth=auth) as api:

        async def one() -> None:
            results.append(await api.call("list_spaces"))

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
    assert len(results) == 100 and all(results)
    # The new token lives LONG_TTL s, far beyond the burst: exactly one refresh serves all 100 callers.
    assert auth.refresh_count == 1
    assert long_lived.provider.stats()["grants"] == {"refresh_token": 1}
    assert long_lived.provider.stats()["errors"] == {}
    assert stored(settings).refresh_token != before.refresh_token


async def test_network_errors_during_refresh_are_retried_and_never_erase_the_login(
    oidc: Realm, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await anyio.to_thread.run_sync(log_in, settings, monkeypatch) == 0
    monkeypatch.setattr(renew_module, "REFRESH_BACKOFF", 0.01)

    class Flaky(httpx2.AsyncBaseTransport):
        """The real network, except that the first ``failures`` requests cannot connect."""

        def __init__(self, failures: int) -> None:
            self.failures = failures
            self.real = httpx2.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            if self.failures > 0:
                self.failures -= 1
                raise httpx2.ConnectError("connection refused", request=request)
            return await self.real.handle_async_request(request)

    before = stored(settings)
    await until_expired(before)
    down = TokenManager(settings, transport=Flaky(100))
    async with AstravueClient(settings, auth=down) as api:
        with pytest.raises(LoginUnavailable, match="The login is kept"):
            await api.call("list_spaces")
    assert stored(settings) == before  # nothing erased or changed

    flaky = TokenManager(settings, transport=Flaky(2))
    async with AstravueClient(settings, auth=flaky) as api:
        assert await api.call("list_spaces")
    assert flaky.refresh_count == 1 and stored(settings).refresh_token != before.refresh_token


async def test_no_stored_login_gives_the_actionable_message(settings: Settings) -> None:
    store_dir = Path(settings.token_dir or "")
    auth = auth_for(settings)
    assert not store_dir.exists()  # constructing the auth did no disk work
    async with Client(build_server(settings)) as client:
        result = await client.call_tool(TOOL, {})
    assert result.is_error and NO_LOGIN_MESSAGE in result.content[0].text
    assert isinstance(auth, TokenManager)


def test_logout_without_the_provider_deletes_locally(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from astravue_mcp.config import load_settings

    dead = f"http://127.0.0.1:{free_port()}/realms/astravue"
    settings = load_settings({}, auth_url=dead, client_id="cid", token_store="file", token_dir=str(tmp_path))
    store = open_store(settings)
    store.save(
        TokenSet.from_response(
            {"access_token": "a" * 20, "refresh_token": "r" * 20, "expires_in": 60}, auth_url=dead, client_id="cid"
        )
    )
    assert commands.logout(settings) == 0
    err = capsys.readouterr().err
    assert "could not reach the provider" in err and "only removed locally" in err
    assert store.load() is None
    assert "r" * 20 not in err


# ------------------------------------------------------------ real server processes
def server_params(oidc: Realm, settings: Settings) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")} | oidc.env(settings)
    return StdioServerParameters(
        command=sys.executable, args=["-m", "astravue_mcp", "serve"], env=env, cwd=str(Path(__file__).parent.parent)
    )


@asynccontextmanager
async def serving(oidc: Realm, settings: Settings) -> AsyncIterator[Client]:
    async with Client(server_params(oidc, settings)) as client:
        yield client


async def test_three_processes_share_one_rotating_login(
    oidc: Realm, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await anyio.to_thread.run_sync(log_in, settings, monkeypatch) == 0
    rounds, per_round = 3, 4
    period = ACCESS_TTL + 0.4
    outcomes: list[str | None] = []
    ready = [anyio.Event() for _ in range(3)]
    go = anyio.Event()
    start: list[float] = []

    async def server(index: int) -> None:
        async with serving(oidc, settings) as client:
            await client.call_tool(TOOL, {})  # warm up: loads the stored login
            ready[index].set()
            await go.wait()
            for k in range(1, rounds + 1):
                await anyio.sleep_until(start[0] + k * period)  # everyone at once, just after expiry

                async def call() -> None:
                    result = await client.call_tool(TOOL, {})
                    outcomes.append(result.content[0].text if result.is_error else None)

                async with anyio.create_task_group() as tg:
                    for _ in range(per_round):
                        tg.start_soon(call)

    with anyio.fail_after(40):
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(server, i)
            for event in ready:
                await event.wait()
            oidc.provider.reset_stats()
            start.append(anyio.current_time())
            go.set()

    stats = oidc.provider.stats()
    assert [o for o in outcomes if o] == [] and len(outcomes) == 3 * rounds * per_round
    assert stats["errors"] == {}, stats  # no invalid_grant: nobody refreshed with a spent token
    assert 1 <= stats["grants"].get("refresh_token", 0) <= rounds, stats
    # The login survived: the stored refresh token is the live one.
    async with AstravueClient(settings, auth=auth_for(settings)) as api:
        await until_expired(stored(settings))
        assert await api.call("list_spaces")
    assert oidc.provider.stats()["errors"] == {}


async def test_revoked_login_is_reported_and_a_new_login_recovers_without_restart(
    oidc: Realm, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await anyio.to_thread.run_sync(log_in, settings, monkeypatch) == 0
    async with serving(oidc, settings) as client:
        assert not (await client.call_tool(TOOL, {})).is_error
        tokens = stored(settings)
        assert tokens.refresh_token
        oidc.provider.revoke(tokens.refresh_token)
        await until_expired(tokens)

        for _ in range(2):  # final: the dead refresh token is not tried again
            result = await client.call_tool(TOOL, {})
            assert result.is_error and EXPIRED_MESSAGE in result.content[0].text
            for secret in secrets_of(tokens):
                assert secret not in result.content[0].text
        assert oidc.provider.stats()["errors"] == {"invalid_grant": 1}
        assert open_store(settings).load() == tokens  # the store was left alone

        assert await anyio.to_thread.run_sync(log_in, settings, monkeypatch) == 0  # in a terminal
        result = await client.call_tool(TOOL, {})  # same server process, no restart
        assert not result.is_error, result.content[0].text
