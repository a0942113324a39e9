"""The command line as people use it: options where they type them, help for every option, every
missing setting in one message, the sandbox on its own terms, and prompt stops on Ctrl-C and SIGTERM.

Most checks start the real ``astravue-mcp`` command as a separate process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from astravue_mcp.cli import parser
from astravue_mcp.config import SANDBOX_ORG_ID, SettingsError, load_settings
from tests.support import stop, wait_until_up

EXE = str(Path(sys.executable).parent / "astravue-mcp")
TIMEOUT = 60


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASTRAVUE_", "BROWSER", "DISPLAY", "WAYLAND"))}
    return {**env, **extra}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env or clean_env(), timeout=TIMEOUT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- options and help
def subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_and_argument_has_help() -> None:
    for name, command in {"(root)": parser(), **subcommands()}.items():
        for action in command._actions:
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.dest} has no help"


@pytest.mark.parametrize("command", ["serve", "call", "doctor", "tools", "login", "sandbox", "demo"])
def test_global_options_work_after_the_command_too(command: str) -> None:
    extra = ["astravue_list_spaces"] if command == "call" else []
    assert parser().parse_args([command, *extra, "--log-level", "DEBUG"]).log_level == "DEBUG"
    assert parser().parse_args(["--log-level", "ERROR", command, *extra]).log_level == "ERROR"
    assert parser().parse_args([command, *extra]).log_level is None


def test_log_level_after_the_command_takes_effect() -> None:
    done = run("call", "astravue_get_space", "--sandbox", "--args", '{"space_id": 1}', "--log-level", "INFO")
    assert done.returncode == 0, done.stderr
    assert " INFO httpx2: HTTP Request: GET " in done.stderr


def test_login_help_names_the_settings_it_needs() -> None:
    done = run("login", "--help")
    assert done.returncode == 0
    for var in ("ASTRAVUE_CLIENT_ID", "ASTRAVUE_CLIENT_SECRET", "ASTRAVUE_REDIRECT_URI", "ASTRAVUE_AUTH_URL"):
        assert var in done.stdout


# ---------------------------------------------------------------- settings errors
def test_every_missing_setting_is_reported_in_one_line() -> None:
    done = run("serve")
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("astravue-mcp: ASTRAVUE_CLIENT_ID and ASTRAVUE_ORG_ID are not set.")
    assert "Settings" in line and "organisation" in line  # what to do, for each


@pytest.mark.parametrize(
    ("var", "example"),
    [
        ("ASTRAVUE_REDIRECT_URI", "http://127.0.0.1:8765/callback"),
        ("ASTRAVUE_AUTH_URL", "https://auth.astravue.com/realms/astravue"),
        ("ASTRAVUE_API_URL", "https://api.astravue.com"),
    ],
)
def test_url_errors_show_an_example_of_that_url(var: str, example: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({var: "localhost:8765"})
    assert str(caught.value) == f"{var}='localhost:8765' is invalid: must be an http(s) URL such as {example}."


@pytest.mark.parametrize(
    ("app", "first"),
    [
        ("app", "astravue-mcp: ASTRAVUE_CLIENT_ID and ASTRAVUE_ORG_ID are not set."),
        ("remote_app", "astravue-mcp: remote mode cannot start:"),  # before: a traceback around it
    ],
)
def test_asgi_start_up_error_is_what_to_fix_without_a_traceback(app: str, first: str) -> None:
    cmd = [sys.executable, "-m", "uvicorn", f"astravue_mcp.asgi:{app}", "--port", str(free_port())]
    done = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=TIMEOUT)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(first) and "Traceback" not in done.stderr, done.stderr
    assert all(line.startswith("  - ") for line in lines[1:]), done.stderr


# ---------------------------------------------------------------- the sandbox is a world of its own
def test_sandbox_ignores_account_settings_and_says_so() -> None:
    env = clean_env(ASTRAVUE_ORG_ID="12345", ASTRAVUE_CLIENT_ID="your-client-id", ASTRAVUE_API_URL="http://x.test")
    done = run("call", "astravue_list_spaces", "--sandbox", "--args", '{"limit": 1}', env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items"][0]["name"] == "Product"
    assert done.stderr.strip() == (
        "astravue-mcp: the sandbox ignores ASTRAVUE_API_URL, ASTRAVUE_CLIENT_ID, ASTRAVUE_ORG_ID: it has its own "
        f"data, organisation ({SANDBOX_ORG_ID}) and token."
    )
    settings = load_settings({"ASTRAVUE_ORG_ID": "12345", "ASTRAVUE_CLIENT_ID": "c"}).sandboxed("http://s.test")
    assert (settings.org_id, settings.client_id, settings.api_url) == (SANDBOX_ORG_ID, None, "http://s.test")


INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}  # fmt: skip
LIST_SPACES = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "astravue_list_spaces"}}


def read_answer(proc: subprocess.Popen[str], wanted: int) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"the server stopped; stderr: {proc.stderr.read() if proc.stderr else ''}"
        message = json.loads(line)
        if message.get("id") == wanted:
            return dict(message)
    raise AssertionError("no answer in time")


def send(proc: subprocess.Popen[str], *messages: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    proc.stdin.flush()


def test_sandbox_command_prints_a_line_that_points_a_server_at_it() -> None:
    port = free_port()
    sandbox = subprocess.Popen(
        [EXE, "sandbox", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=clean_env(),
    )  # fmt: skip
    server = None
    try:
        assert sandbox.stdout is not None
        banner = [sandbox.stdout.readline() for _ in range(3)]
        assert banner[0].startswith(f"Astravue sandbox at http://127.0.0.1:{port} (organisation id 1, ")
        line = banner[2].strip()
        assert line.endswith(" serve"), banner
        wait_until_up(f"http://127.0.0.1:{port}/_sandbox/stats", sandbox)  # the banner comes first
        # Exactly the printed line, in a shell, with none of this environment's settings.
        server = subprocess.Popen(
            ["/bin/sh", "-c", line], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=clean_env(),
        )  # fmt: skip
        send(server, INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"}, LIST_SPACES)
        answer = read_answer(server, 2)
        assert not answer["result"].get("isError"), answer
        assert answer["result"]["structuredContent"]["items"][0]["name"] == "Product"
    finally:
        for proc in (server, sandbox):
            if proc is not None:
                stop(proc)


# ---------------------------------------------------------------- stopping
@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_promptly_on_sigint_and_sigterm(transport: str, signum: signal.Signals) -> None:
    port = free_port()
    options = ["--transport", "http", "--port", str(port)] if transport == "http" else []
    proc = subprocess.Popen(
        [EXE, "serve", "--sandbox", *options], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=clean_env(),
    )  # fmt: skip
    try:
        if transport == "stdio":  # serving: it answered; stdin stays open, as a client keeps it
            send(proc, INIT)
            read_answer(proc, 1)
        else:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", proc)
        sent = time.monotonic()
        proc.send_signal(signum)
        code = proc.wait(10)
        assert time.monotonic() - sent < 5
        assert code in (0, 128 + signum, -signum), code
    finally:
        if proc.poll() is None:
            stop(proc)


# ---------------------------------------------------------------- demo and login
def test_demo_checks_the_port_before_claiming_anything() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("demo", "--port", str(port))
    assert done.returncode == 2
    assert done.stdout == ""  # no tour, no "Now serving"
    assert done.stderr.strip() == (
        f"astravue-mcp: Cannot listen on 127.0.0.1:{port}: Address already in use. Choose another port with --port."
    )


def test_login_uses_browser_even_without_a_display(tmp_path: Path) -> None:
    opened = tmp_path / "opened"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    code = "from astravue_mcp.auth.login import open_browser; print(open_browser('http://127.0.0.1:9/authorize'))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(BROWSER=str(browser)),
        timeout=TIMEOUT,
    )  # fmt: skip
    assert done.stdout.strip() == "True", done.stderr
    assert opened.read_text().strip() == "http://127.0.0.1:9/authorize"
    if sys.platform.startswith("linux"):  # without BROWSER or a display, no text browser in the terminal
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60)
        assert done.stdout.strip() == "False"
