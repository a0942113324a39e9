"""Protocol correctness on every revision a client may speak (2024-11-05 ... 2025-11-25, and 2026-07-28).

Through the SDK's client where it shows what a client sees, and raw JSON-RPC over the real
process (``tests/wire.py``) where the SDK's client hides the wire or cannot speak an older revision.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.subscriptions import ResourceUpdated
from pydantic import BaseModel, Field

from astravue_mcp import elicitation
from astravue_mcp.config import load_settings
from astravue_mcp.sandbox import create_app
from astravue_mcp.server import build_server, sandbox_server
from astravue_mcp.tools.request import Confirmation
from tests import wire

DATED, MODERN = wire.DATED, wire.MODERN
MISSING = {"space_id": 99}


@pytest.fixture(autouse=True)
def _quiet_deprecations() -> Iterator[None]:
    # logging/setLevel and resources/subscribe are deprecated in 2026-07-28 and tested here on purpose.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        yield


def log_messages(received: list[Any]) -> list[types.LoggingMessageNotificationParams]:
    return [m for m in received if isinstance(m, types.LoggingMessageNotificationParams)]


# ------------------------------------------------------------------ elicitation, per revision and transport


def decline(request: dict[str, Any]) -> dict[str, Any]:
    assert request["method"] == "elicitation/create"
    return {"action": "decline"}


def accept(request: dict[str, Any]) -> dict[str, Any]:
    assert request["method"] == "elicitation/create"
    assert request["params"]["requestedSchema"]["properties"]["confirm"]["type"] == "boolean"
    return {"action": "accept", "content": {"confirm": True}}


@pytest.fixture(scope="module")
def http_server() -> Iterator[wire.HttpServer]:
    server = wire.HttpServer()
    yield server
    server.stop()


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("revision", DATED)
def test_a_delete_is_confirmed_on_every_dated_revision(revision: str, transport: str, request: Any) -> None:
    """Elicitation exists from 2025-06-18 on; a client on an older revision cannot be asked."""
    peer = wire.StdioPeer() if transport == "stdio" else wire.HttpPeer(request.getfixturevalue("http_server").url)
    can_ask = revision >= "2025-06-18"
    # Each revision deletes a task of its own from the shared HTTP server's sandbox.
    task = {"task_id": 8 + DATED.index(revision), "space_id": 1, "project_id": 1}
    try:
        init = peer.initialize(revision, {"elicitation": {}} if can_ask else {})
        assert init["result"]["protocolVersion"] == revision
        if can_ask:
            refused = peer.call("astravue_delete_task", task, decline)
            assert refused["isError"] is True and refused["content"][0]["text"].startswith("Not done: the person")
            assert not peer.call("astravue_get_task", task).get("isError")
        done = peer.call("astravue_delete_task", task, accept)
        assert not done.get("isError"), done
        asked = [m for m in peer.received if m.get("method") == "elicitation/create"]
        assert len(asked) == (2 if can_ask else 0)
        assert peer.call("astravue_get_task", task)["isError"] is True
    finally:
        peer.close()


class Person:
    def __init__(self, action: str) -> None:
        self.action = action
        self.asked: list[types.ElicitRequestParams] = []

    async def __call__(self, context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params)
        content = {"confirm": True} if self.action == "accept" else None
        return types.ElicitResult(action=self.action, content=content)  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_delete_is_confirmed_across_rounds_on_2026(transport: str, request: Any) -> None:
    target: Any = (
        StdioServerParameters(command=wire.SERVER[0], args=wire.SERVER[1:], env=wire.env())
        if transport == "stdio"
        else request.getfixturevalue("http_server").url
    )
    task = {"task_id": 12, "space_id": 1, "project_id": 1}
    for action, deleted in (("decline", False), ("accept", True)):
        person = Person(action)
        async with Client(target, mode=MODERN, elicitation_callback=person) as client:
            result = await client.call_tool("astravue_delete_task", task)
            assert result.is_error is not deleted, result.content
            assert [q.message for q in person.asked] == ["Confirm: delete task 12 in project 1?"]
            assert (await client.call_tool("astravue_get_task", task)).is_error is deleted


@pytest.mark.anyio
async def test_on_2026_a_delete_waits_for_the_answer_instead_of_proceeding() -> None:
    """The first round only asks: the task is still there while the person is being asked."""
    app = create_app()
    store = app.state.sandbox
    settings = load_settings({}).sandboxed("http://sandbox.astravue.local")
    server = build_server(settings, transport=httpx2.ASGITransport(app=app))
    present_when_asked: list[bool] = []

    async def person(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        present_when_asked.append(12 in store.tasks)
        return types.ElicitResult(action="accept", content={"confirm": True})

    async with Client(server, elicitation_callback=person) as client:
        assert client.session.protocol_version == MODERN
        result = await client.call_tool("astravue_delete_task", {"task_id": 12, "space_id": 1, "project_id": 1})
        assert not result.is_error, result.content
    assert present_when_asked == [True] and 12 not in store.tasks


class Org(BaseModel):
    org: str = Field(description="Organization")


def two_questions() -> MCPServer:
    """A server whose tool asks twice in one call, as an engine choosing an org and then confirming would."""
    server = MCPServer("two-questions")

    @server.tool()
    async def pick_and_confirm(ctx: Context) -> types.CallToolResult | types.InputRequiredResult:
        try:
            org = await elicitation.ask_form(ctx, "org", "Which organization?", Org)
            confirmed = await elicitation.ask_form(ctx, "confirm", f"Confirm: use {org.content}?", Confirmation)
        except elicitation.InputRequired as question:  # what the tool wrapper does for every catalogue tool
            return question.result
        text = f"{org.content} {elicitation.accepted(confirmed, 'confirm')}"
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    return server


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_one_call_can_ask_several_questions_on_every_revision(mode: str) -> None:
    asked: list[str] = []

    async def person(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        content = {"org": "acme"} if params.message.startswith("Which") else {"confirm": True}
        return types.ElicitResult(action="accept", content=content)

    async with Client(two_questions(), mode=mode, elicitation_callback=person) as client:
        result = await client.call_tool("pick_and_confirm", {})
    assert not result.is_error, result.content
    assert result.content[0].text == "{'org': 'acme'} True"
    # Each question is asked once: the first answer rides the state into the round that asks the second.
    assert asked == ["Which organization?", "Confirm: use {'org': 'acme'}?"]


# ------------------------------------------------------------------ logging


@pytest.mark.anyio
async def test_logging_is_declared_and_the_client_chooses_the_level() -> None:
    got: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        got.append(params)

    async with Client(sandbox_server(load_settings({})), mode="legacy", logging_callback=on_log) as client:
        assert client.server_capabilities is not None and client.server_capabilities.logging is not None
        await client.call_tool("astravue_get_space", MISSING)  # by default: warnings and above
        assert [(m.level, m.logger) for m in log_messages(got)] == [("warning", "astravue")]
        assert str(log_messages(got)[0].data).startswith("astravue_get_space: Space 99 was not found")
        await client.set_logging_level("error")
        await client.call_tool("astravue_get_space", MISSING)
        assert len(log_messages(got)) == 1
        await client.set_logging_level("debug")
        await client.call_tool("astravue_get_space", MISSING)
        assert len(log_messages(got)) == 2


@pytest.mark.anyio
async def test_on_2026_log_messages_are_sent_only_to_a_request_that_asks() -> None:
    got: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        got.append(params)

    server = sandbox_server(load_settings({}))
    async with Client(server, logging_callback=on_log) as client:  # negotiates 2026-07-28 (server/discover)
        assert client.session.protocol_version == MODERN
        assert client.server_capabilities is not None and client.server_capabilities.logging is not None
        await client.call_tool("astravue_get_space", MISSING)
        assert got == []
    async with Client(server, mode=MODERN, logging_callback=on_log, log_level="warning") as client:
        await client.call_tool("astravue_get_space", MISSING)
        assert [m.level for m in log_messages(got)] == ["warning"]


def test_an_unknown_log_level_is_invalid_params() -> None:
    peer = wire.StdioPeer()
    try:
        peer.initialize("2025-06-18")
        error = peer.request("logging/setLevel", {"level": "loud"})["error"]
        assert error["code"] == types.INVALID_PARAMS and "one of: debug, info, notice, warning" in error["message"]
        assert "result" in peer.request("logging/setLevel", {"level": "error"})
    finally:
        peer.close()


# ------------------------------------------------------------------ subscriptions


@pytest.mark.anyio
async def test_subscribed_resources_are_updated_after_a_write_on_dated_revisions() -> None:
    updated: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(message.params.uri)

    async with Client(sandbox_server(load_settings({})), mode="legacy", message_handler=on_message) as client:
        caps = client.server_capabilities
        assert caps is not None and caps.resources is not None and caps.resources.subscribe is True
        await client.subscribe_resource("astravue://spaces")
        await client.subscribe_resource("astravue://tasks/2")
        await client.call_tool("astravue_create_space", {"name": "Research"})
        await client.call_tool("astravue_update_task", {"task_id": 2, "space_id": 1, "project_id": 1, "completion": 90})
        await client.call_tool("astravue_list_spaces", {})  # a read changes nothing
        assert updated == ["astravue://spaces", "astravue://tasks/2"]
        await client.unsubscribe_resource("astravue://spaces")
        await client.call_tool("astravue_create_space", {"name": "Legal"})
        assert updated == ["astravue://spaces", "astravue://tasks/2"]


@pytest.mark.anyio
async def test_subscribed_resources_are_updated_after_a_write_on_2026() -> None:
    server = sandbox_server(load_settings({}))
    async with Client(server) as client:  # negotiates 2026-07-28 (server/discover)
        assert client.session.protocol_version == MODERN
        caps = client.server_capabilities
        assert caps is not None and caps.resources is not None and caps.resources.subscribe is True
        uris = ["astravue://spaces", "astravue://tasks/2"]
        async with client.listen(resource_subscriptions=uris) as subscription:
            await client.call_tool("astravue_create_space", {"name": "Research"})
            args = {"task_id": 2, "space_id": 1, "project_id": 1, "completion": 90}
            await client.call_tool("astravue_update_task", args)
            seen: list[str] = []
            with anyio.fail_after(10):
                async for event in subscription:
                    assert isinstance(event, ResourceUpdated)
                    seen.append(event.uri)
                    if len(seen) == 2:
                        break
        assert seen == uris


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_a_made_up_pagination_cursor_is_invalid_params(transport: str, request: Any) -> None:
    peer = wire.StdioPeer() if transport == "stdio" else wire.HttpPeer(request.getfixturevalue("http_server").url)
    try:
        peer.initialize("2025-11-25")
        for method in ("tools/list", "prompts/list", "resources/list", "resources/templates/list"):
            error = peer.request(method, {"cursor": "page-2"})["error"]
            assert error["code"] == types.INVALID_PARAMS and error["message"].startswith(f"Invalid cursor for {method}")
            assert "result" in peer.request(method, {})
    finally:
        peer.close()


# ------------------------------------------------------------------ resource errors


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "missing_code"), [("legacy", -32002), (MODERN, types.INVALID_PARAMS)])
async def test_resource_errors_carry_the_spec_codes(mode: str, missing_code: int) -> None:
    async with Client(sandbox_server(load_settings({})), mode=mode) as client:
        with pytest.raises(MCPError) as missing:
            await client.read_resource("astravue://tasks/999999")
        assert missing.value.error.code == missing_code
        assert missing.value.error.data == {"uri": "astravue://tasks/999999"}
        assert missing.value.error.message.startswith("Task 999999 was not found in any of the 5 project(s) you can")
        assert missing.value.error.message.endswith("Check the id with astravue_find_tasks.")
        with pytest.raises(MCPError) as no_space:  # the API's own 404
            await client.read_resource("astravue://spaces/99/projects")
        assert no_space.value.error.code == missing_code and "Space 99 was not found" in no_space.value.error.message
        with pytest.raises(MCPError) as malformed:
            await client.read_resource("astravue://tasks/abc")
        assert malformed.value.error.code == types.INVALID_PARAMS
        assert malformed.value.error.message == "task_id must be a positive integer of at most 18 digits (got 'abc')."


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_an_unknown_tool_is_a_protocol_error(transport: str, request: Any) -> None:
    peer = wire.StdioPeer() if transport == "stdio" else wire.HttpPeer(request.getfixturevalue("http_server").url)
    try:
        peer.initialize("2025-11-25")
        unknown = peer.request("tools/call", {"name": "astravue_fly", "arguments": {}})["error"]
        assert unknown["code"] == types.INVALID_PARAMS
        assert unknown["message"] == (
            "Unknown tool 'astravue_fly': it does not exist or is switched off (toolsets, read-only)."
        )
    finally:
        peer.close()


HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_a_request_without_a_session_gets_no_session_id_to_come_back_with(http_server: wire.HttpServer) -> None:

    response = httpx2.post(http_server.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=HEADERS)
    assert response.status_code == 400 and "mcp-session-id" not in response.headers
    assert response.json()["error"]["message"] == "Bad Request: Missing session ID"


def test_a_bad_protocol_version_header_is_answered_in_the_session_s_terms(http_server: wire.HttpServer) -> None:

    peer = wire.HttpPeer(http_server.url)
    try:
        peer.initialize("2025-06-18")
        assert peer.session_id is not None
        headers = HEADERS | {"Mcp-Session-Id": peer.session_id, "Mcp-Protocol-Version": "2025-13-01"}
        response = httpx2.post(
            http_server.url, json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"}, headers=headers
        )
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert message.startswith("Unsupported MCP-Protocol-Version '2025-13-01': send the version negotiated")
        assert "_meta" not in message
    finally:
        peer.close()
