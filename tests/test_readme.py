"""The README's promises, checked: every client snippet starts the server it documents, the quick
start is two commands, the install story is the one that works today, every number about the tool
surface is measured, and the ASGI deployment behaves as described.

Client snippets name an installed ``astravue-mcp`` by an absolute placeholder path (or run
``uvx astravue-mcp ...``); the snippet's command is mapped to this environment's ``astravue-mcp``
with the snippet's own arguments and environment (placeholders included), and must answer
``initialize`` and ``tools/list`` over stdio. That is what a client does first, and it needs no
network (the login is only used on the first call).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest

from astravue_mcp import __version__
from astravue_mcp.config import ENV, SANDBOX_TOKEN, SettingsError, load_settings
from astravue_mcp.demo import tool_sizes
from astravue_mcp.tools.registry import TOOLSETS
from tests.support import stop, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXE = str(Path(sys.executable).parent / "astravue-mcp")
START_TIMEOUT = 60


def blocks(language: str) -> list[str]:
    return [b for b in re.findall(rf"^ *```{language}\n(.*?)^ *```$", README, re.S | re.M)]


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def server_entries() -> list[tuple[str, dict[str, Any]]]:
    """(client heading, server entry) for every JSON snippet in the README."""
    found = []
    for text in blocks("json"):
        document = json.loads(text)  # every JSON snippet parses
        servers = document.get("mcpServers") or document.get("servers")
        assert isinstance(servers, dict) and list(servers) == ["astravue"], text
        found.append((text, servers["astravue"]))
    return found


def command_line(entry: dict[str, Any]) -> list[str]:
    """The documented command with this environment's astravue-mcp in place of uvx."""
    command, args = entry["command"], list(entry["args"])
    if re.search(r"(^|[\\/])uvx(\.exe)?$", command):
        assert args[0] == "astravue-mcp", args
        return [EXE, *args[1:]]
    assert re.search(r"(^|[\\/])astravue-mcp(\.exe)?$", command), command
    return [EXE, *args]


def test_every_client_is_documented_with_a_snippet() -> None:
    clients = section("Client set-up")
    for heading in ("Claude Desktop", "Claude Code", "Cursor", "VS Code", "Windsurf", "Windows and macOS pitfalls"):
        assert f"\n### {heading}\n" in clients
    for words in ("claude_desktop_config.json", ".vscode/mcp.json", "~/.cursor/mcp.json", "mcp_config.json"):
        assert words in clients
    entries = server_entries()
    assert len(entries) >= 5
    for _, entry in entries:
        assert command_line(entry)[1] == "serve"
        for var in entry.get("env", {}):
            assert var in ENV, f"{var} is not a setting"
    vscode = json.loads(blocks("json")[2])
    assert vscode["servers"]["astravue"]["type"] == "stdio"
    assert vscode["inputs"][0]["password"] is True


def test_claude_code_command_runs_the_same_server() -> None:
    (text,) = [b for b in blocks("bash") if b.startswith("claude mcp add astravue")]
    words = shlex.split(text.replace("\\\n", " "))
    assert words[:4] == ["claude", "mcp", "add", "astravue"]
    assert words[words.index("--") + 1 :] == ["/home/you/.local/bin/astravue-mcp", "serve"]
    assert "(Once on PyPI: `-- uvx astravue-mcp serve`." in section("Client set-up")
    env = [words[i + 1].split("=")[0] for i, w in enumerate(words) if w == "--env"]
    assert env == ["ASTRAVUE_CLIENT_ID", "ASTRAVUE_CLIENT_SECRET", "ASTRAVUE_ORG_ID"]


INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}  # fmt: skip


def initialize_and_list(cmd: list[str], env: dict[str, str]) -> list[str]:
    """Start the server as a client would, speak JSON-RPC over stdio, return the tool names."""
    messages = [INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]  # fmt: skip
    stdin = "".join(json.dumps(m) + "\n" for m in messages)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(stdin)
        proc.stdin.flush()
        answers: dict[int, Any] = {}
        deadline = time.monotonic() + START_TIMEOUT
        while 2 not in answers and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            if "id" in message:
                answers[message["id"]] = message
        assert 2 in answers, f"no tools/list answer; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        assert answers[1]["result"]["serverInfo"]["version"] == __version__
        return [t["name"] for t in answers[2]["result"]["tools"]]
    finally:
        proc.kill()
        proc.wait(10)


def test_every_json_snippet_starts_the_documented_server(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    base.update(ASTRAVUE_TOKEN_STORE="file", ASTRAVUE_TOKEN_DIR=str(tmp_path))  # never touch a real keyring
    runs = []
    for _, entry in server_entries():
        env = dict(base)
        for var, value in entry.get("env", {}).items():
            env[var] = re.sub(r"\$\{input:[^}]+\}", "secret-from-vscode", value)  # VS Code fills these in
        runs.append((command_line(entry), env, "--read-only" in entry["args"]))
    with ThreadPoolExecutor(3) as pool:
        listed = list(pool.map(lambda run: initialize_and_list(run[0], run[1]), runs))
    for (_, _, read_only), names in zip(runs, listed, strict=True):
        assert "astravue_list_spaces" in names
        assert ("astravue_delete_space" in names) is not read_only


def test_quick_start_is_two_commands_and_install_lines_are_there() -> None:
    (quick,) = blocks("bash")[:1]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()] == [
        "python3 tasks.py demo",
        "python3 tasks.py test",
    ]
    install = section("Install")
    assert "not on PyPI yet" in install
    (commands,) = blocks("bash")[1:2]
    assert [line.split("#")[0].strip() for line in commands.strip().splitlines()][1:] == [
        "pip install .",
        "pipx install .",
        "uvx --from . astravue-mcp --version",
    ]
    wheel = f"./astravue_mcp-{__version__}-py3-none-any.whl"
    for line in (f"pip install {wheel}", f"pipx install {wheel}", f"uvx --from {wheel} astravue-mcp serve"):
        assert line in install
    for line in ("pip install astravue-mcp", "pipx install astravue-mcp", "uvx astravue-mcp"):
        assert line in install  # what applies once published
    assert "npx @modelcontextprotocol/inspector astravue-mcp serve --sandbox" in README
    assert "uvicorn astravue_mcp.asgi:app" in README


def test_node_versions_are_stated_once() -> None:
    quick = section("Quick start")
    for version in ("Node.js 20+", "Node.js 22.19+"):
        assert README.count(version) == 1 and version in quick
    assert not re.search(r"Node(\.js)? ?\d", README.replace(quick, "")), "a Node version outside Quick start"


def measured(**selection: Any) -> tuple[int, int]:
    rows = tool_sizes(load_settings({}, **selection))
    return len(rows), sum(size for _, _, size in rows)


def test_every_number_about_the_tool_surface_is_measured() -> None:
    """The toolset table and the totals are what `astravue-mcp tools [--toolsets …] [--read-only]` prints."""
    tools = section("Tools, toolsets and read-only mode")
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \| ([\d,]+) \| (.*) \|$", tools, re.M)
    assert [r[0] for r in rows] == list(TOOLSETS)
    for toolset, count, size, names in rows:
        selected = [name for _, name, _ in tool_sizes(load_settings({}, toolsets=toolset))]
        assert (int(count), int(size.replace(",", ""))) == measured(toolsets=toolset), toolset
        assert set(re.findall(r"`(\w+)`", names)) - set(TOOLSETS) == {n.removeprefix("astravue_") for n in selected}
    count, size = measured(toolsets="all")
    assert f"{count} tools in {len(TOOLSETS)} toolsets" in tools
    assert size / count < 1000
    tokens = f"~{round(size / 4, -2):,.0f} tokens"
    assert f"**Default: every toolset**, {count} tools, {size:,} bytes ({tokens}, under 1,000 bytes per tool" in tools
    ro_count, ro_size = measured(toolsets="all", read_only=True)
    assert f"the {count - ro_count} tools that write disappear" in tools
    assert f"({ro_count} tools, {ro_size:,} bytes remain)" in tools


# ---------------------------------------------------------------- the ASGI deployment
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The documented uvicorn command behind an (imagined) proxy, talking to a sandbox process."""
    sandbox_port, app_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    procs = [subprocess.Popen([EXE, "sandbox", "--port", str(sandbox_port)], env=env, stderr=subprocess.DEVNULL)]
    env.update(
        ASTRAVUE_API_URL=f"http://127.0.0.1:{sandbox_port}",
        ASTRAVUE_ACCESS_TOKEN=SANDBOX_TOKEN,
        ASTRAVUE_ORG_ID="1",
        ASTRAVUE_ALLOWED_HOSTS="mcp.example.com",
        ASTRAVUE_HTTP_TOKEN="t0ken-for-the-test-at-least-32-characters",
        ASTRAVUE_TOKEN_DIR=str(tmp_path_factory.mktemp("tokens")),
    )
    uvicorn = [sys.executable, "-m", "uvicorn", "astravue_mcp.asgi:app", "--host", "127.0.0.1", "--port", str(app_port)]
    procs.append(subprocess.Popen([*uvicorn, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"], env=env,
                                  stderr=subprocess.PIPE))  # fmt: skip
    url = f"http://127.0.0.1:{app_port}"
    try:
        wait_until_up(f"{url}/healthz", procs[1], START_TIMEOUT)
        yield {"url": url, "token": env["ASTRAVUE_HTTP_TOKEN"]}
    finally:
        for proc in procs:
            stop(proc)


MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_asgi_health_needs_no_token(deployed: dict[str, str]) -> None:
    answer = httpx2.get(f"{deployed['url']}/healthz", timeout=10)
    assert answer.json() == {"status": "ok", "version": __version__}


def test_asgi_wants_the_bearer_token_and_an_allowed_host(deployed: dict[str, str]) -> None:
    mcp = f"{deployed['url']}/mcp"
    auth = {"Authorization": f"Bearer {deployed['token']}"}
    assert httpx2.post(mcp, json=INIT, headers=MCP_HEADERS, timeout=10).status_code == 401
    evil = httpx2.post(mcp, json=INIT, headers={**MCP_HEADERS, **auth, "Host": "evil.example"}, timeout=10)
    assert evil.status_code == 421
    for host in ("mcp.example.com", "127.0.0.1:1234"):  # the proxy's name; loopback on any port
        ok = httpx2.post(mcp, json=INIT, headers={**MCP_HEADERS, **auth, "Host": host}, timeout=10)
        assert ok.status_code == 200, (host, ok.text)


@pytest.mark.anyio
async def test_asgi_serves_tools_through_the_mcp_client(deployed: dict[str, str]) -> None:
    from mcp.client import Client

    headers = {"Authorization": f"Bearer {deployed['token']}"}
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    from mcp.client.streamable_http import streamable_http_client

    async with http, Client(streamable_http_client(f"{deployed['url']}/mcp", http_client=http)) as client:
        result = await client.call_tool("astravue_get_space", {"space_id": 1})
    assert result.structured_content == {
        "id": 1, "name": "Product", "description": "Product development: apps and platform."
    }  # fmt: skip


def test_asgi_refuses_a_public_host_without_a_token() -> None:
    from astravue_mcp.asgi import create_app

    settings = load_settings({}, org_id=1, access_token="x", allowed_hosts="mcp.example.com")
    with pytest.raises(SettingsError, match="ASTRAVUE_HTTP_TOKEN is not set"):
        create_app(settings)
    with pytest.raises(SettingsError, match="ASTRAVUE_ORG_ID is not set"):
        create_app(load_settings({}, access_token="x"))
