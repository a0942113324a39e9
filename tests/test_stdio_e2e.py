"""End to end with real processes: `astravue-mcp sandbox` + `astravue-mcp serve` over stdio JSON-RPC.

Every line the server writes to stdout must be JSON-RPC, whatever happens.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest

from astravue_mcp.config import SANDBOX_TOKEN

EXE = [sys.executable, "-m", "astravue_mcp"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*EXE, "sandbox", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(f"{url}/v1/spaces", timeout=1)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"sandbox did not start: {proc.stderr.read() if proc.stderr else ''}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


class StdioServer:
    """The real `astravue-mcp serve` process, spoken to line by line."""

    timeout = 30.0
    """Seconds to wait for an answer (a class attribute: subclasses may start the process their own way)."""

    def __init__(self, env: dict[str, str], *args: str, serve_args: tuple[str, ...] = ()) -> None:
        command = [*EXE, *args, "serve", *serve_args]
        self.proc = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.stdout: list[bytes] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self._id = 0

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)

    def send(self, method: str, params: dict | None = None, notify: bool = False) -> dict | None:
        message: dict = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if not notify:
            self._id += 1
            message["id"] = self._id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()
        if notify:
            return None
        while True:
            answer = json.loads(self.lines.get(timeout=self.timeout))
            if answer.get("id") == self._id:
                return answer

    def close(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        return self.proc.stderr.read().decode() if self.proc.stderr else ""


def server_env(api_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    return env | {"ASTRAVUE_API_URL": api_url, "ASTRAVUE_ACCESS_TOKEN": SANDBOX_TOKEN, "ASTRAVUE_ORG_ID": "1"} | extra


def initialize(server: StdioServer) -> dict:
    answer = server.send(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
    )
    server.send("notifications/initialized", notify=True)
    assert answer is not None
    return answer


def assert_pure_jsonrpc(lines: list[bytes]) -> None:
    assert lines, "the server wrote nothing"
    for line in lines:
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0", line
        assert ("id" in message) or ("method" in message), line


def test_stdio_session_lists_and_calls_tools(sandbox_url: str) -> None:
    server = StdioServer(server_env(sandbox_url, ASTRAVUE_LOG_LEVEL="DEBUG"))
    try:
        init = initialize(server)
        assert init["result"]["serverInfo"]["name"] == "astravue"
        tools = server.send("tools/list")
        assert tools is not None
        names = {t["name"] for t in tools["result"]["tools"]}
        assert {"astravue_list_spaces", "astravue_create_project"} <= names
        listed = server.send("tools/call", {"name": "astravue_list_spaces", "arguments": {"limit": 2}})
        assert listed is not None
        assert listed["result"]["structuredContent"]["items"][0] == {
            "id": 1,
            "name": "Product",
            "description": "Product development: apps and platform.",
        }
        missing = server.send("tools/call", {"name": "astravue_get_space", "arguments": {"space_id": 424242}})
        assert missing is not None and missing["result"]["isError"] is True
        bad = server.send("tools/call", {"name": "astravue_get_space", "arguments": {"space_id": "x" * 10_000}})
        assert bad is not None and bad["result"]["isError"] is True
        unknown = server.send("no/such/method")
        assert unknown is not None and "error" in unknown
    finally:
        stderr = server.close()
    assert_pure_jsonrpc(server.stdout)
    assert SANDBOX_TOKEN not in stderr
    assert "GET /v1/spaces" in stderr  # DEBUG logs went to stderr, not stdout


def test_stdio_without_login_answers_with_the_login_hint(tmp_path) -> None:
    env = server_env(
        "http://127.0.0.1:9", ASTRAVUE_CLIENT_ID="cid", ASTRAVUE_TOKEN_STORE="file", ASTRAVUE_TOKEN_DIR=str(tmp_path)
    )
    del env["ASTRAVUE_ACCESS_TOKEN"]
    server = StdioServer(env)
    try:
        initialize(server)
        answer = server.send("tools/call", {"name": "astravue_list_spaces", "arguments": {}})
        assert answer is not None
        assert answer["result"]["isError"] is True
        assert "astravue-mcp login" in answer["result"]["content"][0]["text"]
    finally:
        server.close()
    assert_pure_jsonrpc(server.stdout)


NOT_A_MESSAGE = "Invalid Request: not a JSON-RPC 2.0 request, notification or response"
BATCH = "Invalid Request: batches are not supported, send one message per line"
# What the SDK's stdio transport used to drop without a word (the client then waited forever),
# with the answer each line now gets, as over Streamable HTTP.
MALFORMED: list[tuple[bytes, dict]] = [
    (b"not json", {"id": None, "code": -32700, "message": "Parse error: expected ident at line 1 column 2"}),
    (
        b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"n":' + b"9" * 4301 + b"}}",
        {"id": None, "code": -32700, "message": "Parse error: number out of range at line 1 column 4356"},
    ),
    (
        b'{"jsonrpc":"2.0","id":8,"method":"ping","params":{"x":' + b"[" * 300 + b"]" * 300 + b"}}",
        {"id": None, "code": -32700, "message": "Parse error: recursion limit exceeded at line 1 column 254"},
    ),
    (
        b'[{"jsonrpc":"2.0","id":9,"method":"ping"}]',
        {"id": None, "code": -32600, "message": BATCH},
    ),
    (
        b'{"jsonrpc":"2.0","id":10,"method":"tools/call","params":"x"}',
        {"id": 10, "code": -32600, "message": NOT_A_MESSAGE},
    ),
    (
        b'{"jsonrpc":"2.0","id":true,"method":"tools/call","params":{"name":"astravue_delete_space"}}',
        {"id": None, "code": -32600, "message": "Invalid Request: the id must be a string or an integer"},
    ),
    (
        b'{"jsonrpc":"2.0","method":5}',
        {"id": None, "code": -32600, "message": NOT_A_MESSAGE},
    ),
]


def test_every_line_that_is_not_a_message_gets_a_json_rpc_error(sandbox_url: str) -> None:
    """Pinned bug: these lines got no answer at all over stdio."""
    server = StdioServer(server_env(sandbox_url))
    try:
        initialize(server)
        assert server.proc.stdin is not None
        for line, expected in MALFORMED:
            server.proc.stdin.write(line + b"\n")
            server.proc.stdin.flush()
            answer = json.loads(server.lines.get(timeout=10))
            assert answer == {
                "jsonrpc": "2.0",
                "id": expected["id"],
                "error": {"code": expected["code"], "message": expected["message"]},
            }, line[:80]
        # Blank lines are not messages and need no answer; a CRLF line is one message; the session carries on.
        server.proc.stdin.write(b"\n  \n")
        assert server.send("ping") == {"jsonrpc": "2.0", "id": server._id, "result": {}}
        server.proc.stdin.write(b'{"jsonrpc":"2.0","id":"crlf","method":"ping"}\r\n')
        server.proc.stdin.flush()
        assert json.loads(server.lines.get(timeout=10)) == {"jsonrpc": "2.0", "id": "crlf", "result": {}}
        tools = server.send("tools/list")  # a long answer still arrives whole
        assert tools is not None and len(tools["result"]["tools"]) > 30
    finally:
        stderr = server.close()
    assert "Traceback" not in stderr
    assert_pure_jsonrpc(server.stdout)
    assert server.proc.returncode == 0


def test_task_text_reaches_a_stdio_client_as_data(sandbox_url: str) -> None:
    """The same forged-record title, through the real process: the rows match the header's count."""
    from tests.support import INJECTION, assert_member_text_is_data

    httpx2.post(f"{sandbox_url}/_sandbox/reset", timeout=5).raise_for_status()
    server = StdioServer(server_env(sandbox_url))
    try:
        initialize(server)
        scope = {"space_id": 1, "project_id": 2}
        created = server.send(
            "tools/call", {"name": "astravue_create_task", "arguments": {**scope, "title": INJECTION}}
        )
        assert created is not None and created["result"]["isError"] is False, created
        listed = server.send(
            "tools/call", {"name": "astravue_list_project_tasks", "arguments": {**scope, "limit": 200}}
        )
        assert listed is not None
        result = listed["result"]
        assert_member_text_is_data(result["content"][0]["text"], result["structuredContent"]["items"])
    finally:
        server.close()
