"""Stdout purity: in stdio mode every byte on stdout is JSON-RPC, whatever else happens in the process.

The real `astravue-mcp serve` process talks to the sandbox over TCP through a session full of
trouble: API faults (retried 503s, a dropped connection, a truncated body, a timeout, a 429),
warnings (Python dev mode, every warning shown, DEBUG logs), a misbehaving library that prints to
stdout and writes straight to file descriptor 1 during a call, a deliberate internal error in a
tool, and finally a fatal crash of the process.

How the misbehaviour gets in without shipping a booby trap: the process is started from a
launcher script written by this test (``LAUNCHER``). It wraps ``AstravueClient.call`` so that a
call for project 999999 misbehaves (print, raw write, warning, then ``RuntimeError``) and a call
for project 999998 raises a ``BaseException`` no handler catches, then hands over to the real
``astravue_mcp.cli.main()``. Nothing of it exists outside this test.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from astravue_mcp.sandbox import SandboxServer
from tests.test_stdio_e2e import StdioServer, assert_pure_jsonrpc, initialize, server_env

LAUNCHER = '''
import os
import sys
import warnings

warnings.warn("a library warns while being imported", DeprecationWarning, stacklevel=1)

from astravue_mcp import cli
from astravue_mcp.api import client as api_client

real_call = api_client.AstravueClient.call


class Fatal(BaseException):
    """Escapes every handler: the process goes down."""


async def call(self, operation, ids=None, params=None, body=None):
    project = (ids or {}).get("projectId")
    if project == 999999:
        print("a library prints to stdout during a call")
        os.write(1, b"a library writes to fd 1 during a call\\n")
        sys.stdout.write("a partial line without newline")
        warnings.warn("a library warns during a call", UserWarning, stacklevel=1)
        raise RuntimeError("deliberate internal error (test launcher)")
    if project == 999998:
        print("a library prints to stdout just before the crash")
        raise Fatal("deliberate fatal crash (test launcher)")
    return await real_call(self, operation, ids, params, body)


api_client.AstravueClient.call = call
sys.exit(cli.main())
'''


class Launched(StdioServer):
    """StdioServer started through the test launcher instead of ``python -m astravue_mcp``."""

    def __init__(self, env: dict[str, str], launcher: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(launcher), "serve"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.stdout: list[bytes] = []
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        self._id = 0

    def wait_closed(self) -> tuple[int, str]:
        """Exit code and stderr of a process that ended by itself (or is killed after 15 s)."""
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        self._pump_thread.join(5)
        return code, self.proc.stderr.read().decode() if self.proc.stderr else ""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def launched(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Launched]:
    httpx2.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    env = server_env(
        sandbox.url,
        ASTRAVUE_LOG_LEVEL="DEBUG",
        ASTRAVUE_READ_TIMEOUT="0.3",
        ASTRAVUE_MAX_RETRIES="1",
        ASTRAVUE_RETRY_BUDGET="3",
        PYTHONWARNINGS="always",
        PYTHONDEVMODE="1",
        PYTHONUNBUFFERED="",
    )
    env.pop("PYTHONUNBUFFERED")  # stdout block-buffered, as under a real MCP client
    server = Launched(env, launcher)
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait(5)


def tool(server: StdioServer, name: str, args: dict) -> dict:
    answer = server.send("tools/call", {"name": name, "arguments": args})
    assert answer is not None and "result" in answer, answer
    return answer["result"]


def fault(sandbox: SandboxServer, **spec: object) -> None:
    httpx2.post(f"{sandbox.url}/_sandbox/faults", json=spec, timeout=5).raise_for_status()


def test_stdout_is_only_json_rpc_through_faults_warnings_and_an_internal_error(
    sandbox: SandboxServer, launched: Launched
) -> None:
    initialize(launched)
    assert launched.send("logging/setLevel", {"level": "debug"}) is not None
    assert len(launched.send("tools/list")["result"]["tools"]) > 30  # type: ignore[index]

    fault(sandbox, status=503, operations=["list_spaces"])
    assert tool(launched, "astravue_list_spaces", {})["isError"] is False  # retried
    for spec in ({"body": "reset"}, {"body": "truncated"}, {"delay": 1.0}, {"status": 429}, {"status": 500}):
        fault(sandbox, **spec, count=2, operations=["get_space"])
        assert tool(launched, "astravue_get_space", {"space_id": 1})["isError"] is True
        httpx2.delete(f"{sandbox.url}/_sandbox/faults", timeout=5).raise_for_status()  # unused retries' share
    assert tool(launched, "astravue_get_space", {"space_id": "x" * 50_000})["isError"] is True
    assert tool(launched, "astravue_get_space", {"space_id": 1, "surprise": "\x00\ud7ff💥"})["isError"] is True

    crashed = tool(launched, "astravue_get_project", {"space_id": 1, "project_id": 999999})
    assert crashed["isError"] is True
    assert crashed["content"][0]["text"] == "Error executing tool astravue_get_project"
    # The server is still there, and a bad message on stdin is answered, not fatal.
    assert tool(launched, "astravue_list_spaces", {"limit": 1})["structuredContent"]["items"][0]["id"] == 1
    assert launched.proc.stdin is not None
    launched.proc.stdin.write(b"this is not json\n")
    launched.proc.stdin.flush()
    assert tool(launched, "astravue_get_space", {"space_id": 2})["structuredContent"]["name"] == "Marketing"

    stderr = launched.close()
    assert launched.proc.returncode == 0, stderr
    assert_pure_jsonrpc(launched.stdout)
    # The trouble really happened, and went to stderr.
    for sign in (
        "a library warns while being imported",
        "a library warns during a call",
        "a library writes to fd 1 during a call",
        "deliberate internal error (test launcher)",
        "GET /v1/spaces",
    ):
        assert sign in stderr, sign
    notices = [json.loads(line) for line in launched.stdout if b'"notifications/message"' in line]
    assert any("astravue_get_space" in str(n["params"]["data"]) for n in notices)


def test_stdout_stays_pure_when_the_process_crashes(sandbox: SandboxServer, launched: Launched) -> None:
    initialize(launched)
    assert tool(launched, "astravue_list_spaces", {"limit": 1})["isError"] is False
    message = {
        "jsonrpc": "2.0",
        "id": 99,
        "method": "tools/call",
        "params": {"name": "astravue_get_project", "arguments": {"space_id": 1, "project_id": 999998}},
    }
    assert launched.proc.stdin is not None
    launched.proc.stdin.write(json.dumps(message).encode() + b"\n")
    launched.proc.stdin.flush()
    time.sleep(0.5)
    launched.proc.stdin.close()  # a thread blocked reading stdin outlives the crash until stdin closes
    code, stderr = launched.wait_closed()
    assert code != 0
    assert "deliberate fatal crash (test launcher)" in stderr
    assert "a library prints to stdout just before the crash" in stderr
    assert_pure_jsonrpc(launched.stdout)


def test_a_configuration_error_writes_nothing_to_stdout(sandbox: SandboxServer) -> None:
    env = server_env(sandbox.url, ASTRAVUE_RATE_LIMIT="-1")
    done = subprocess.run(
        [sys.executable, "-m", "astravue_mcp", "serve"], env=env, capture_output=True, timeout=30, input=b""
    )
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"ASTRAVUE_RATE_LIMIT" in done.stderr
