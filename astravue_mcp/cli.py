"""Command line: parses arguments, loads settings, hands over. No business logic lives here.

In stdio mode stdout belongs to JSON-RPC: everything this module says goes to stderr, except
commands whose output is the point (``tools``, ``call``, ``status``, ``--version``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import shlex
import signal
import sys
from typing import Any

from astravue_mcp import __version__, sandbox
from astravue_mcp.config import SANDBOX_ORG_ID, SANDBOX_TOKEN, Settings, SettingsError, load_settings
from astravue_mcp.redact import setup_logging

log = logging.getLogger("astravue_mcp")


def _selection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--toolsets", help="comma-separated toolsets, or 'all' (env ASTRAVUE_TOOLSETS)")
    p.add_argument("--tools", help="comma-separated allow-list of tool names (env ASTRAVUE_TOOLS)")
    p.add_argument("--read-only", action="store_true", default=None, help="hide and refuse every tool that writes")


LOG_LEVEL_HELP = "DEBUG, INFO, WARNING (default) or ERROR; logs go to stderr (env ASTRAVUE_LOG_LEVEL)"

LOGIN_EPILOG = """settings it reads (environment variables):
  ASTRAVUE_CLIENT_ID      required: the id of the API client created in Astravue (profile icon > Settings)
  ASTRAVUE_CLIENT_SECRET  that client's secret (not needed for a public client)
  ASTRAVUE_REDIRECT_URI   default http://127.0.0.1:8765/callback; must be registered for the client
  ASTRAVUE_AUTH_URL       default https://auth.astravue.com/realms/astravue
  ASTRAVUE_SCOPE, ASTRAVUE_OFFLINE_ACCESS, ASTRAVUE_TOKEN_STORE  see the README's settings table
ASTRAVUE_ORG_ID is not needed to log in; `serve` needs it.

example:
  export ASTRAVUE_CLIENT_ID=your-client-id ASTRAVUE_CLIENT_SECRET=your-client-secret
  astravue-mcp login              # or: astravue-mcp login --no-browser (over SSH)
"""


def parser() -> argparse.ArgumentParser:
    # Global options are accepted before and after the command: `serve --sandbox --log-level DEBUG`
    # is what people type. SUPPRESS keeps a subcommand from overwriting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, help=LOG_LEVEL_HELP)
    root = argparse.ArgumentParser(prog="astravue-mcp", description="MCP server for Astravue.")
    root.add_argument("--version", action="version", version=f"astravue-mcp {__version__}")
    root.add_argument("--log-level", help=LOG_LEVEL_HELP)
    sub = root.add_subparsers(dest="command", metavar="COMMAND", help="one of these; COMMAND --help for its options")

    def command(name: str, help: str, **options: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common], **options)

    serve = command("serve", "run the MCP server (stdio by default)")
    serve.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (default: started by an MCP client) or http (Streamable HTTP at /mcp)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--sandbox", action="store_true", help="use the embedded sandbox: no account needed")
    serve.add_argument(
        "--remote", action="store_true", help="serve a whole team over HTTP: each person signs in with OAuth"
    )
    serve.add_argument("--public-url", help="remote mode: the https URL clients reach (env ASTRAVUE_PUBLIC_URL)")
    _selection_flags(serve)

    demo = command("demo", "try the server on the embedded sandbox, then serve it over HTTP")
    demo.add_argument("--port", type=int, default=8000, help="HTTP port to serve the sandbox on (default 8000)")
    demo.add_argument("--once", action="store_true", help="show the tour and exit instead of serving")
    _selection_flags(demo)

    sandbox = command("sandbox", "run the Astravue sandbox alone as an HTTP server")
    sandbox.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8900, help="port (default 8900)")
    sandbox.add_argument("--issuer", help="validate JWT access tokens from this OpenID issuer instead")
    sandbox.add_argument("--latency-ms", type=float, default=0.0, help="simulated latency per request")

    login = command(
        "login",
        "log in to Astravue once (OAuth in the browser)",
        epilog=LOGIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument("--no-browser", action="store_true", help="print the URL and read the redirect URL from stdin")
    login.add_argument("--timeout", type=float, help="seconds to wait for the browser (default 300)")
    command("status", "who is logged in and when the tokens expire (never prints a token)")
    command("logout", "revoke and delete the stored login")

    tools = command("tools", "list tools per toolset with the bytes each costs in tools/list")
    _selection_flags(tools)

    call = command("call", "call one tool from the terminal and print its structured result")
    call.add_argument("tool", help="the tool's name, e.g. astravue_list_spaces (`astravue-mcp tools` lists them)")
    call.add_argument("--args", default="{}", help="JSON object of arguments")
    call.add_argument("--sandbox", action="store_true", help="use the embedded sandbox")
    _selection_flags(call)

    doctor = command("doctor", "check settings, login and every read endpoint against a live account")
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
        ignored = settings.account_settings() if args.command == "demo" or getattr(args, "sandbox", False) else []
        if ignored:
            print(
                f"astravue-mcp: the sandbox ignores {', '.join(ignored)}: it has its own data, "
                f"organisation ({SANDBOX_ORG_ID}) and token.",
                file=sys.stderr,
            )
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
    from astravue_mcp.server import build_server, sandbox_server  # deferred: the SDK (~1 s) only where a server runs

    if args.transport == "http":
        from astravue_mcp.http_app import check_port  # deferred: the HTTP stack, --transport http only

        check_port(args.host, args.port)
    if not args.sandbox:
        settings.require_account()
    server = sandbox_server(settings) if args.sandbox else build_server(settings)
    # Everything built so far (the SDK's types, every schema and model) lives as long as the process:
    # out of the collector's sight, each full collection during a call stays cheap.
    gc.freeze()
    gc.enable()
    if args.transport == "stdio":
        from astravue_mcp.stdio import answering_every_line  # deferred: the SDK's types, only where a server runs

        _stop_on_signals()
        if sys.stdin.isatty():
            print("astravue-mcp: serving MCP on stdin/stdout for an MCP client; Ctrl-C stops.", file=sys.stderr)
        try:
            with answering_every_line():
                server.run("stdio")
        finally:
            _divert_stray_stdout()
        return 0
    from astravue_mcp.http_app import serve_http  # deferred: the HTTP app is for --transport http only

    url = f"http://{args.host}:{args.port}/mcp"
    print(f"astravue-mcp: MCP over Streamable HTTP at {url}; Ctrl-C stops.", file=sys.stderr)
    return serve_http(server, settings, args.host, args.port)


def _stop_on_signals() -> None:
    """Exit at once on SIGINT and SIGTERM.

    The stdio transport reads stdin in a worker thread that cannot be cancelled: after a plain
    KeyboardInterrupt the process would wait for one more line of input before exiting.
    """

    def stop(signum: int, frame: object) -> None:
        _divert_stray_stdout()
        sys.stderr.flush()
        os._exit(128 + signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def serve_remote(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.http_app import run_app  # deferred: the HTTP stack is for --transport http and --remote only
    from astravue_mcp.remote.app import create_remote_app  # deferred: the authorization server, remote mode only

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


def cmd_try(settings: Settings, args: argparse.Namespace) -> int:
    """``demo``, ``tools`` and ``call``: the server driven from the terminal."""
    from astravue_mcp import demo  # deferred: the MCP SDK and a server load only for the commands that run one

    if args.command == "demo":
        return demo.run_demo(settings, None if args.once else args.port)
    if args.command == "tools":
        return demo.print_tool_sizes(settings)
    return demo.call_tool(settings, args.tool, args.args, sandbox=args.sandbox)


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.demo import exe_path  # deferred: the demo module loads the SDK (~1 s)

    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    url = f"http://{f'[{host}]' if ':' in host else host}:{args.port}"
    if args.issuer:
        auth = f"JWT access tokens from {args.issuer}"
        point = f"ASTRAVUE_API_URL={url} ASTRAVUE_AUTH_URL={args.issuer} ASTRAVUE_ORG_ID={SANDBOX_ORG_ID}"
    else:
        auth = f"bearer token {SANDBOX_TOKEN}"
        point = f"ASTRAVUE_API_URL={url} ASTRAVUE_ACCESS_TOKEN={SANDBOX_TOKEN} ASTRAVUE_ORG_ID={SANDBOX_ORG_ID}"
    print(
        f"Astravue sandbox at {url} (organisation id {SANDBOX_ORG_ID}, {auth}); Ctrl-C stops it.\n"
        f"Point a server at it (in another terminal):\n  {point} {shlex.quote(exe_path())} serve",
        flush=True,
    )
    sandbox.run_sandbox(host=args.host, port=args.port, issuer=args.issuer, latency_ms=args.latency_ms)
    return 0


def cmd_account(settings: Settings, args: argparse.Namespace) -> int:
    """``login``, ``status`` and ``logout``."""
    from astravue_mcp import account_commands as commands  # deferred: OAuth flow and keyring load for these only

    if args.command == "login":
        return commands.login(settings, no_browser=args.no_browser, timeout=args.timeout)
    if args.command == "status":
        return commands.status(settings)
    return commands.logout(settings)


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from astravue_mcp.doctor import run_doctor  # deferred: the checks load the client, sandbox and login modules

    return run_doctor(settings, sandbox=args.sandbox, refresh=args.refresh)


COMMANDS = {
    "serve": cmd_serve,
    "demo": cmd_try,
    "sandbox": cmd_sandbox,
    "login": cmd_account,
    "status": cmd_account,
    "logout": cmd_account,
    "tools": cmd_try,
    "call": cmd_try,
    "doctor": cmd_doctor,
}
