"""Signing in from inside a client session (URL-mode elicitation), against the real OpenID provider.

The server never starts a login by itself: only a tool call that finds no login, from a client that
declares URL elicitation, offers the sign-in URL; the person signs in in their browser and the next
call works, without a terminal and without restarting anything.
"""

from __future__ import annotations

import anyio
import mcp_types as types
import pytest
from mcp.client import Client

from astravue_mcp.auth.elicit import DECLINED, OPENED
from astravue_mcp.auth.manager import NO_LOGIN_MESSAGE
from astravue_mcp.auth.store import open_store
from astravue_mcp.config import Settings
from astravue_mcp.server import build_server
from tests.oidc import Browser

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
