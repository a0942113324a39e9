"""Command line: parses arguments, loads settings, hands over. No business logic lives here.

In stdio mode stdout belongs to JSON-RPC: everything this module says goes to stderr, except
commands whose output is the point (``tools``, ``call``, ``status``, ``--version``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sys
from typing import Any

from astravue_mcp import __version__
from astravue_mcp.config import Settings, SettingsError, load_settings
from astravue_mcp.redact import setup_logging

log = logging.getLogger("astravue_mcp")


def _selection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--toolsets", help="comma-separated toolsets, or 'all' (env ASTRAVUE_TOOLSETS)")
    p.add_argument("--tools", help="comma-separated allow-list of tool names (env ASTRAVUE_TOOLS)")
    p.add_argument("--read-only", action="store_true", default=None, help="hide and refuse every tool that writes")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="astravue-mcp", description="MCP server for Astravue.")
    root.add_argument("--version", action="version", version=f"astravue-mcp {__version__}")
    root.add_argument("--log-level", help="DEBUG, INFO, WARNING (default) or ERROR; logs go to stderr")
    sub = root.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--sandbox", action="store_true", help="use the embedded sandbox: no account needed")
    serve.add_argument(
        "--remote", action="store_true", help="serve a whole team over HTTP: each person signs in with OAuth"
    )
    serve.add_argument("--public-url", help="remote mode: the https URL clients reach (env ASTRAVUE_PUBLIC_URL)")
    _selection_flags(serve)

    demo = sub.add_parser("demo", help="try the server on the embedded sandbox, then serve it over HTTP")
    demo.add_argument("--port", type=int, default=8000, help="HTTP port to serve the sandbox on (default 8000)")
    demo.add_argument("--once", action="store_true", help="show the tour and exit instead of serving")
    _selection_flags(demo)

    sandbox = sub.add_parser("sandbox", help="run the Astravue sandbox alone as an HTTP server")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8900)
    sandbox.add_argument("--issuer", help="validate JWT access tokens from this OpenID issuer instead")
    sandbox.add_argument("--latency-ms", type=float, default=0.0, help="simulated latency per request")

    login = sub.add_parser("login", help="log in to Astravue once (OAuth in the browser)")
    login.add_argument("--no-browser", action="store_true", help="print the URL and read the redirect URL from stdin")
    login.add_argument("--timeout", type=float, help="seconds to wait for the browser (default 300)")
    sub.add_parser("status", help="who is logged in and when the tokens expire (never prints a token)")
    sub.add_parser("logout", help="revoke and delete the stored login")

    tools = sub.add_parser("tools", help="list tools per toolset with the bytes each costs in tools/list")
    _selection_flags(tools)

    call = sub.add_parser("call", help="call one tool from the terminal and print its structured result")
    call.add_argument("tool")
    call.add_argument("--args", default="{}", help="JSON object of arguments")
    call.add_argument("--sandbox", action="store_true", help="use the embedded sandbox")
    _selection_flags(call)

    doctor = sub.add_parser("doctor", help="check settings, login and every read endpoint against a live account")
    doctor.add_argument("--sandbox", action="store_true", help="run the checks against the embedded sandbox")
    doctor.add_argument("--refresh", action="store_true", help="also try a token refresh (rotates the token)")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help(sys.stderr)
        return 2
    try:
        overrides: dict[str, Any] = {"log_level": args.log_level}
        for name in ("toolsets", "tools", "read_only", "public_url"):
            overrides[name] = getattr(args, name, None)
        settings = load_settings(**overrides)
        setup_logging(settings.log_level)
        return COMMANDS[args.command](settings, args)
    except SettingsError as exc:
        print(f"astravue-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    # Start-up allocates only long-lived objects (the SDK, models, schemas): collecting them while
    # they are being built is wasted time, so the collector waits until they are frozen below.
    if args.remote:
        return serve_remote(settings, args)
    gc.disable()
    from astravue_mcp.server import build_server, sandbox_server

    if not args.sandbox:
        settings.require("org_id")
        if settings.access_token is None:
            settings.require("client_id")
    server = sandbox_server(settings) if args.sandbox else build_server(settings)
    # Everything built so far (the SDK's types, every schema and model) lives as long as the process:
    # out of the collector's sight, each full collection during a call stays cheap.
    gc.freeze()
    gc.enable()
    if args.transport == "stdio":
        from astravue_mcp.stdio import answering_every_line

        try:
            with answering_every_line():
                server.run("stdio")
        finally:
            _divert_stray_stdout()
        return 0
    from astravue_mcp.http_app import serve_http

    return serve_http(server, settings, args.host, args.port)


def serve_remote(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.http_app import run_app
    from astravue_mcp.remote.app import create_remote_app

    if args.sandbox or args.transport != "stdio":
        raise SettingsError("--remote always serves Streamable HTTP against the real API: drop --sandbox/--transport.")
    app = create_remote_app(settings)
    return run_app(
        app, settings, args.host, args.port, url=f"{app.state.provider.resource} (on {args.host}:{args.port})"
    )


def _divert_stray_stdout() -> None:
    """Send what a library left in ``sys.stdout``'s buffer to stderr, not to the client.

    While serving, the SDK points fd 1 at stderr, but a ``print()`` to a pipe sits in Python's
    buffer and would be flushed at exit, after fd 1 is the wire again.
    """
    with contextlib.suppress(OSError, ValueError):
        os.dup2(sys.stderr.fileno(), 1)
        sys.stdout.flush()


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.demo import run_demo

    return run_demo(settings, None if args.once else args.port)


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.sandbox import run_sandbox

    run_sandbox(host=args.host, port=args.port, issuer=args.issuer, latency_ms=args.latency_ms)
    return 0


def cmd_login(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.auth import commands

    return commands.login(settings, no_browser=args.no_browser, timeout=args.timeout)


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.auth import commands

    return commands.status(settings)


def cmd_logout(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.auth import commands

    return commands.logout(settings)


def cmd_tools(settings: Settings, args: argparse.Namespace) -> int:
    import anyio

    from astravue_mcp.catalogue import toolset_of
    from astravue_mcp.server import sandbox_server

    async def sizes() -> list[tuple[str, str, int]]:
        tools = await sandbox_server(settings).list_tools()
        rows = []
        for t in tools:
            size = len(json.dumps(t.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":")))
            rows.append((toolset_of(t.name), t.name, size))
        return rows

    rows = anyio.run(sizes)
    for toolset in dict.fromkeys(r[0] for r in rows):
        print(f"{toolset}:")
        for _, name, size in (r for r in rows if r[0] == toolset):
            print(f"  {name:<42} {size:>6} B")
    total = sum(r[2] for r in rows)
    print(f"{len(rows)} tools, {total} bytes in tools/list (~{total // 4} tokens), {total // max(len(rows), 1)} B/tool")
    return 0


def cmd_call(settings: Settings, args: argparse.Namespace) -> int:
    import anyio
    from mcp.client import Client

    from astravue_mcp.server import build_server, sandbox_server
    from astravue_mcp.tools.registry import text_of

    try:
        arguments = json.loads(args.args)
        if not isinstance(arguments, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        print(f"astravue-mcp: --args must be a JSON object ({exc}).", file=sys.stderr)
        return 2
    server = sandbox_server(settings) if args.sandbox else build_server(settings)

    async def call() -> int:
        async with Client(server) as client:
            result = await client.call_tool(args.tool, arguments)
        if result.is_error:
            print(text_of(result) or "error", file=sys.stderr)
            return 1
        print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
        return 0

    return anyio.run(call)


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.doctor import run_doctor

    return run_doctor(settings, sandbox=args.sandbox, refresh=args.refresh)


COMMANDS = {
    "serve": cmd_serve,
    "demo": cmd_demo,
    "sandbox": cmd_sandbox,
    "login": cmd_login,
    "status": cmd_status,
    "logout": cmd_logout,
    "tools": cmd_tools,
    "call": cmd_call,
    "doctor": cmd_doctor,
}
