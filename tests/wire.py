"""A raw JSON-RPC client for the real server process, over stdio or Streamable HTTP.

Where the SDK's client hides the wire (it always proposes the newest revision, answers the
server's own requests itself, never sends a malformed message), tests speak the protocol
directly: any revision, any capabilities, and every message the server sends is kept.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx2

from tests.support import free_port, stop, wait_until_up

ACCOUNT = [sys.executable, "-m", "astravue_mcp", "serve"]
"""Serving an account: needs the ASTRAVUE_* settings of one (the OAuth tests' realm gives them)."""
SERVER = [*ACCOUNT, "--sandbox"]
TIMEOUT = 30.0
DATED = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]
"""The revisions negotiated by the initialize handshake (the SDK's client always proposes the newest)."""
MODERN = "2026-07-28"
Answer = Callable[[dict[str, Any]], dict[str, Any]]
"""Answers a request the server sent (``elicitation/create``, ...) with a result."""


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}


def no_answer(request: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError(f"the server asked something unexpected: {request}")


class Peer:
    """One connection. ``request`` returns the response to it; everything else the server sent is kept."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.received: list[dict[str, Any]] = []
        """Every server-initiated message (requests and notifications), in order."""
        self.protocol_version: str | None = None

    def request(self, method: str, params: dict[str, Any] | None = None, answer: Answer = no_answer) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self.ids), "method": method}
        if params is not None:
            message["params"] = params
        return self.exchange(message, answer)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def initialize(self, version: str, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        info = {"name": "wire-test", "version": "1"}
        params = {"protocolVersion": version, "capabilities": capabilities or {}, "clientInfo": info}
        response = self.request("initialize", params)
        self.protocol_version = response["result"]["protocolVersion"]
        self.notify("notifications/initialized")
        return response

    def call(self, tool: str, arguments: dict[str, Any], answer: Answer = no_answer) -> dict[str, Any]:
        response = self.request("tools/call", {"name": tool, "arguments": arguments}, answer)
        assert "result" in response, response
        return response["result"]

    def handle(self, message: dict[str, Any], answer: Answer) -> None:
        """A message that is not our response: keep it, and answer it if it is a request."""
        self.received.append(message)
        if "method" in message and "id" in message:
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": answer(message)})

    def exchange(self, message: dict[str, Any], answer: Answer) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class StdioPeer(Peer):
    def __init__(self, *args: str, server: list[str] = SERVER, environment: dict[str, str] | None = None) -> None:
        super().__init__()
        self.proc = subprocess.Popen(
            [*server, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env() if environment is None else environment,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.write(json.dumps(message).encode() + b"\n")

    def next_message(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        try:
            return dict(json.loads(self.lines.get(timeout=timeout)))
        except queue.Empty:
            raise AssertionError(f"no message from the server within {timeout} s") from None

    def exchange(self, message: dict[str, Any], answer: Answer) -> dict[str, Any]:
        self.send(message)
        while True:
            got = self.next_message()
            if got.get("id") == message["id"] and "method" not in got:
                return got
            self.handle(got, answer)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class HttpServer:
    """``serve --sandbox --transport http`` on a free loopback port (``url`` is its MCP endpoint)."""

    def __init__(self, environment: dict[str, str] | None = None, server: list[str] = SERVER) -> None:
        port = free_port()
        self.proc = subprocess.Popen(
            [*server, "--transport", "http", "--host", "127.0.0.1", "--port", str(port)],
            env=env() if environment is None else environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}/mcp"
        try:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", self.proc, TIMEOUT)
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        stop(self.proc)


class HttpPeer(Peer):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.session_id: str | None = None
        self.http = httpx2.Client(timeout=TIMEOUT)

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version is not None:
            headers["Mcp-Protocol-Version"] = self.protocol_version
        return headers

    def send(self, message: dict[str, Any]) -> None:
        response = self.http.post(self.url, json=message, headers=self.headers())
        assert response.status_code == 202, (response.status_code, response.text)

    def exchange(self, message: dict[str, Any], answer: Answer) -> dict[str, Any]:
        with self.http.stream("POST", self.url, json=message, headers=self.headers()) as response:
            self.session_id = response.headers.get("mcp-session-id", self.session_id)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                response.read()
                return {"status": response.status_code, **response.json()}
            for got in sse_messages(response.iter_lines()):
                if got.get("id") == message["id"] and "method" not in got:
                    return got
                self.handle(got, answer)
        raise AssertionError(f"the response stream ended without answering {message['method']}")

    def close(self) -> None:
        if self.session_id is not None:
            self.http.delete(self.url, headers=self.headers())
        self.http.close()


def sse_messages(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON-RPC messages of a server-sent event stream."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            text = "\n".join(data)
            data = []
            if text:
                yield dict(json.loads(text))
