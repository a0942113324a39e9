"""A test host for MCP Apps views: real HTTP on 127.0.0.1, a real MCP server on the embedded sandbox.

- the *host* origin serves ``views_host/host.html`` and ``POST /rpc``, a small bridge that forwards
  the page's MCP requests (tools/list, tools/call, resources/read) to an in-process server through
  the SDK's client, which advertises MCP Apps support like a rendering client does;
- the *sandbox* origin (another port, so another origin) serves each published view with the
  Content-Security-Policy that a host builds from the resource's ``_meta.ui.csp`` (spec, "Content
  Security Policy Enforcement");
- the *outside* origin only counts the requests it receives: a page that could reach it broke out.

The MCP client lives on its own event loop in a thread (an anyio blocking portal), so the
synchronous HTTP handlers and Playwright's synchronous API can both use it.
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp.client import Client
from mcp.client.extension import ClientExtension, advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from astravue_mcp.config import load_settings
from astravue_mcp.server import sandbox_server

HOST_PAGE = Path(__file__).parent / "views_host" / "host.html"
SCHEMA = Path(__file__).parent / "node" / "node_modules" / "@modelcontextprotocol" / "ext-apps" / "dist" / "src"
SCHEMA = SCHEMA / "generated" / "schema.json"


class ExtAppsSchema:
    """The JSON Schemas of the MCP Apps messages and metadata, as the ext-apps npm package publishes them."""

    def __init__(self, path: Path = SCHEMA) -> None:
        if not path.exists():
            raise AssertionError(
                f"{path} is missing: `python3 tasks.py test` installs the test suite's Node packages "
                "(tests/node, which includes @modelcontextprotocol/ext-apps)."
            )
        self.document = json.loads(path.read_text(encoding="utf-8"))

    def validate(self, instance: Any, definition: str) -> None:
        # Each definition is a whole schema whose own references point into itself.
        jsonschema.Draft202012Validator(self.document["$defs"][definition]).validate(instance)

    def validate_message(self, message: dict[str, Any], definition: str) -> None:
        """A JSON-RPC request or notification: the schemas describe ``method`` and ``params`` only."""
        self.validate({k: v for k, v in message.items() if k in ("method", "params")}, definition)


@functools.cache
def ext_apps() -> ExtAppsSchema:
    return ExtAppsSchema()


def renders_apps() -> ClientExtension:
    """What a client that renders MCP Apps (Claude, VS Code) advertises."""
    return advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})


def apps_client(server: Any = None, **settings: object) -> Client:
    """An in-memory client that says it renders MCP Apps, as Claude or VS Code do (on a fresh sandbox by default)."""
    return Client(server or sandbox_server(load_settings({}, **settings)), extensions=[renders_apps()])


def csp_header(csp: dict[str, list[str]]) -> str:
    """The policy a host derives from a resource's declared domains (the spec's own construction)."""

    def extra(key: str) -> str:
        return " ".join(csp.get(key) or [])

    res = extra("resourceDomains")
    directives = [
        "default-src 'none'",
        f"script-src 'self' 'unsafe-inline' {res}",
        f"style-src 'self' 'unsafe-inline' {res}",
        f"connect-src 'self' {extra('connectDomains')}",
        f"img-src 'self' data: {res}",
        f"font-src 'self' {res}",
        f"media-src 'self' data: {res}",
        f"frame-src {extra('frameDomains') or chr(39) + 'none' + chr(39)}",
        "object-src 'none'",
        f"base-uri {extra('baseUriDomains') or chr(39) + 'self' + chr(39)}",
    ]
    return "; ".join(" ".join(d.split()) for d in directives)


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class AppsHost:
    """The three origins and the MCP client behind them; ``url(tool, args)`` opens a view in the host."""

    def __init__(self, portal: BlockingPortal, client: Client) -> None:
        self.portal = portal
        self.client = client
        self.pages: dict[str, tuple[str, str]] = {}
        self.outside_hits: list[str] = []
        self._servers: list[ThreadingHTTPServer] = []
        self.host = self._serve(self._host_handler())
        self.sandbox = self._serve(self._sandbox_handler())
        self.outside = self._serve(self._outside_handler())

    # ------------------------------------------------------------ MCP through the portal
    def mcp(self, method: str, params: dict[str, Any]) -> Any:
        if method == "tools/list":
            return dump(self.portal.call(self.client.list_tools))
        if method == "tools/call":
            name, args = params["name"], params.get("arguments") or {}
            return dump(self.portal.call(self.client.call_tool, name, args))
        if method == "resources/read":
            return dump(self.portal.call(self.client.read_resource, params["uri"]))
        if method == "sandbox/publish":
            key = secrets.token_urlsafe(8)
            self.pages[key] = (params["html"], csp_header(params.get("csp") or {}))
            return {"url": f"{self.sandbox}/view/{key}"}
        raise ValueError(f"the test host does not forward {method}")

    def url(self, tool: str, args: dict[str, Any], theme: str = "light", width: int = 0, styles: bool = True) -> str:
        """The host page showing ``tool``'s view; ``styles=False``: a host that sends no theme variables."""
        query = {"tool": tool, "args": json.dumps(args), "theme": theme, "width": str(width)}
        if not styles:
            query["styles"] = "none"
        return f"{self.host}/host.html?{urlencode(query)}"

    # ------------------------------------------------------------ HTTP
    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _host_handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/host.html":
                    return self.reply(404, b"not found")
                self.reply(200, HOST_PAGE.read_bytes(), "text/html; charset=utf-8")

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                try:
                    answer = {"result": host.mcp(request["method"], request.get("params") or {})}
                except Exception as exc:  # reported to the page, which logs it for the test
                    answer = {"error": f"{type(exc).__name__}: {exc}"}
                self.reply(200, json.dumps(answer).encode(), "application/json")

        return Handler

    def _sandbox_handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                page = host.pages.get(self.path.removeprefix("/view/"))
                if page is None:
                    return self.reply(404, b"not found")
                html, policy = page
                self.reply(200, html.encode(), "text/html; charset=utf-8", {"Content-Security-Policy": policy})

        return Handler

    def _outside_handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                host.outside_hits.append(self.path)
                self.reply(200, b"reached", "text/plain", {"Access-Control-Allow-Origin": "*"})

            do_POST = do_GET

        return Handler


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's own signature)
        pass

    def reply(self, status: int, body: bytes, kind: str = "text/plain", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def apps_host(**settings: object) -> Iterator[AppsHost]:
    """The host and a fresh sandbox-backed server for it; everything is stopped on exit."""
    with ExitStack() as stack:
        portal = stack.enter_context(start_blocking_portal())
        client = apps_client(**settings)
        stack.enter_context(portal.wrap_async_context_manager(client))
        host = AppsHost(portal, client)
        stack.callback(host.close)
        yield host
