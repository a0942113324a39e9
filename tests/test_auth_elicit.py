"""Signing in from inside a client session (URL-mode elicitation), against the real OpenID provider.

The server never starts a login by itself: only a tool call that finds no login, from a client that
declares URL elicitation, offers the sign-in URL; the person signs in in their browser and the next
call works, without a terminal and without restarting anything. In process through the SDK's client,
and over real stdio and Streamable HTTP processes on every revision (raw JSON-RPC for the dated
ones, where URL mode exists only from 2025-11-25; the SDK's client across rounds on 2026-07-28).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from astravue_mcp.auth.elicit import DECLINED, OPENED
from astravue_mcp.auth.manager import NO_LOGIN_MESSAGE
from astravue_mcp.auth.store import open_store
from astravue_mcp.config import Settings
from astravue_mcp.elicitation import URL_SINCE
from astravue_mcp.server import build_server
from tests import wire
from tests.oidc import Browser, Realm, realm

pytestmark = pytest.mark.anyio
TOOL = "astravue_list_spaces"
MODES = ["legacy", "auto"]
"""The initialize handshake (2025-11-25), and what the SDK's client negotiates by default (2026-07-28)."""


class Person:
    """The client's URL prompt, answered by a scripted person at a browser."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.browser = Browser()
        self.asked: list[types.ElicitRequestParams] = []

    async def __call__(self, context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params)
        if not self.accept:
            return types.ElicitResult(action="decline")
        self.browser(params.url)  # type: ignore[union-attr]
        return types.ElicitResult(action="accept")


async def stored_login(settings: Settings) -> None:
    with anyio.fail_after(20):
        while open_store(settings).load() is None:
            await anyio.sleep(0.05)


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_that_opens_urls_gets_a_sign_in_and_the_next_call_works(settings: Settings, mode: str) -> None:
    person = Person()
    async with Client(build_server(settings), mode=mode, elicitation_callback=person) as client:
        assert client.session.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        first = await client.call_tool(TOOL, {})
        assert first.is_error and first.content[0].text == OPENED
        assert len(person.asked) == 1 and person.asked[0].mode == "url"
        assert person.asked[0].url.startswith(f"{settings.authorize_endpoint}?response_type=code")
        await stored_login(settings)
        person.browser.join()
        assert person.browser.page is not None and "You can close this tab" in person.browser.page.text
        second = await client.call_tool(TOOL, {})
        assert not second.is_error, second.content[0].text
        assert [s["name"] for s in second.structured_content["items"]] == ["Product", "Marketing", "Operations"]
    assert len(person.asked) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_declined_sign_in_says_how_to_log_in_and_leaves_nothing_listening(
    settings: Settings, mode: str
) -> None:
    person = Person(accept=False)
    async with Client(build_server(settings), mode=mode, elicitation_callback=person) as client:
        result = await client.call_tool(TOOL, {})
        assert result.content[0].text == DECLINED
        # The callback port is free again: a terminal login can use it.
        listener = await anyio.create_tcp_listener(
            local_host="127.0.0.1", local_port=int(settings.redirect_uri.split(":")[2].split("/")[0])
        )
        await listener.aclose()
    assert open_store(settings).load() is None


async def test_clients_without_url_elicitation_get_the_terminal_hint(settings: Settings) -> None:
    async with Client(build_server(settings), mode="legacy") as client:
        result = await client.call_tool(TOOL, {})
    assert result.is_error and result.content[0].text == NO_LOGIN_MESSAGE


# ------------------------------------------------------------ over the real process, per revision and transport
DATED, MODERN = wire.DATED, wire.MODERN
URL_CLIENT = {"elicitation": {"form": {}, "url": {}}}
SPACES = ["Product", "Marketing", "Operations"]


def account_env(oidc: Realm, settings: Settings) -> dict[str, str]:
    """``astravue-mcp serve`` on the realm's API with an empty token store: no login yet."""
    return wire.env() | oidc.env(settings)


@contextmanager
def connection(oidc: Realm, settings: Settings, transport: str) -> Iterator[Callable[[], wire.Peer]]:
    """Opens peers (one per client) to one server process (HTTP) or one process each (stdio)."""
    environment = account_env(oidc, settings)
    peers: list[wire.Peer] = []
    server = wire.HttpServer(environment, server=wire.ACCOUNT) if transport == "http" else None

    def open_peer() -> wire.Peer:
        peer: wire.Peer = (
            wire.HttpPeer(server.url) if server else wire.StdioPeer(server=wire.ACCOUNT, environment=environment)
        )
        peers.append(peer)
        return peer

    try:
        yield open_peer
    finally:
        for peer in peers:
            peer.close()
        if server is not None:
            server.stop()


def check_sign_in_url(settings: Settings, request: dict[str, Any]) -> str:
    """The question is the real login's authorization URL, and every address in it is loopback."""
    assert request["method"] == "elicitation/create"
    params = request["params"]
    assert params["mode"] == "url" and params["elicitationId"]
    url = params["url"]
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{settings.authorize_endpoint}?response_type=code")
    assert query["redirect_uri"] == [settings.redirect_uri] and query["code_challenge_method"] == ["S256"]
    assert {urlsplit(u).hostname for u in (url, settings.redirect_uri)} == {"127.0.0.1"}
    return str(url)


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("revision", DATED)
def test_the_sign_in_offer_on_every_dated_revision(
    oidc: Realm, settings: Settings, revision: str, transport: str
) -> None:
    """Before 2025-11-25 the terminal hint, whatever the client declares; from it, the URL question."""
    browser = Browser()

    def decline(request: dict[str, Any]) -> dict[str, Any]:
        check_sign_in_url(settings, request)
        return {"action": "decline"}

    def accept(request: dict[str, Any]) -> dict[str, Any]:
        browser(check_sign_in_url(settings, request))
        return {"action": "accept"}

    with connection(oidc, settings, transport) as open_peer:
        if revision >= URL_SINCE:
            plain = open_peer()  # a client that cannot show a URL, on the same revision
            plain.initialize(revision, {"elicitation": {"form": {}}})
            result = plain.call(TOOL, {})
            assert result["isError"] and result["content"][0]["text"] == NO_LOGIN_MESSAGE
        peer = open_peer()
        assert peer.initialize(revision, URL_CLIENT)["result"]["protocolVersion"] == revision
        if revision < URL_SINCE:
            result = peer.call(TOOL, {})
            assert result["isError"] and result["content"][0]["text"] == NO_LOGIN_MESSAGE
            assert [m for m in peer.received if "id" in m] == []  # nothing asked
            return
        declined = peer.call(TOOL, {}, decline)
        assert declined["isError"] and declined["content"][0]["text"] == DECLINED
        opened = peer.call(TOOL, {}, accept)
        assert opened["isError"] and opened["content"][0]["text"] == OPENED
        browser.join()
        assert browser.page is not None and "You can close this tab" in browser.page.text
        anyio.run(stored_login, settings)  # the server exchanges the code after the page is shown
        asked = [m for m in peer.received if m.get("method") == "elicitation/create"]
        assert len(asked) == 2 and len({m["params"]["elicitationId"] for m in asked}) == 2
        after = peer.call(TOOL, {})
        assert [s["name"] for s in after["structuredContent"]["items"]] == SPACES


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_the_sign_in_offer_across_rounds_on_2026(oidc: Realm, settings: Settings, transport: str) -> None:
    environment = account_env(oidc, settings)
    server = wire.HttpServer(environment, server=wire.ACCOUNT) if transport == "http" else None
    target: Any = (
        server.url if server else StdioServerParameters(command=wire.ACCOUNT[0], args=wire.ACCOUNT[1:], env=environment)
    )
    declining, person = Person(accept=False), Person()
    try:
        async with Client(target, mode=MODERN) as client:  # declares no elicitation at all
            result = await client.call_tool(TOOL, {})
            assert result.is_error and result.content[0].text == NO_LOGIN_MESSAGE
        async with Client(target, mode=MODERN, elicitation_callback=declining) as client:
            assert (await client.call_tool(TOOL, {})).content[0].text == DECLINED
        async with Client(target, mode=MODERN, elicitation_callback=person) as client:
            assert client.session.protocol_version == MODERN
            assert (await client.call_tool(TOOL, {})).content[0].text == OPENED
            await stored_login(settings)
            person.browser.join()
            result = await client.call_tool(TOOL, {})
            assert not result.is_error, result.content[0].text
            assert [s["name"] for s in result.structured_content["items"]] == SPACES
        for asked in (*declining.asked, *person.asked):
            assert asked.mode == "url" and asked.url.startswith(f"{settings.authorize_endpoint}?response_type=code")
        assert len(declining.asked) == len(person.asked) == 1
    finally:
        if server is not None:
            server.stop()


@pytest.fixture(scope="module")
def long_lived() -> Iterator[Realm]:
    """Access tokens that outlive the test: only the API's 401 makes the server renew one."""
    with realm(access_ttl=120) as r:
        yield r


async def test_a_sign_in_offer_after_a_lost_write_answer_keeps_the_may_have_landed_warning(
    long_lived: Realm, tmp_path: Path
) -> None:
    """Pinned bug: the offer's text replaced "the change may have been applied" of an update whose
    first answer was lost and whose retry then found the login gone."""
    settings = long_lived.settings(tmp_path / "store", read_timeout=0.3)
    person = Person()
    async with Client(build_server(settings), mode="legacy", elicitation_callback=person) as client:
        assert (await client.call_tool(TOOL, {})).content[0].text == OPENED
        await stored_login(settings)
        person.browser.join()
        tokens = open_store(settings).load()
        assert tokens is not None and tokens.refresh_token
        long_lived.provider.revoke(tokens.refresh_token)
        faults = f"{long_lived.api.url}/_sandbox/faults"
        # The rename lands and its answer is held past the read timeout; the resend gets a 401.
        httpx2.post(faults, json={"delay": 0.8, "after_write": True, "operations": ["update_space"]})
        httpx2.post(faults, json={"status": 401, "operations": ["update_space"]})
        person.accept = False
        result = await client.call_tool("astravue_update_space", {"space_id": 2, "name": "Renamed"})
    text = result.content[0].text
    assert result.is_error and text.startswith(DECLINED), text
    assert "An earlier attempt was sent and got no definite answer. The change may or may not have been applied" in text
    assert long_lived.api.app.state.sandbox.spaces[2].name == "Renamed"
