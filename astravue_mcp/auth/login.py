"""The interactive login: authorization code + PKCE (S256) + state, via a loopback callback or a paste.

:class:`LoginFlow` holds one attempt (state, PKCE verifier, authorization URL) and knows how to
check the browser's answer and exchange the code. :func:`run_login` is the terminal command around
it. The flow is async and self-contained so the MCP server can also run it in the background (for
example after offering :attr:`LoginFlow.authorization_url` through URL-mode elicitation):

    flow = LoginFlow(settings)
    async with flow.loopback() as callback:      # binds 127.0.0.1:<port of the redirect URI>
        ...show flow.authorization_url...
        tokens = await flow.complete(await callback.wait())
"""

from __future__ import annotations

import base64
import errno
import hashlib
import html
import logging
import os
import secrets
import sys
import webbrowser
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
import anyio.abc
import anyio.to_thread
import httpx2

from astravue_mcp.auth import oidc
from astravue_mcp.auth.store import TokenSet, TokenStore, open_store
from astravue_mcp.config import ENV_BY_FIELD, Settings
from astravue_mcp.redact import redact

log = logging.getLogger(__name__)

MAX_REQUEST = 16 * 1024
CLIENT_READ_TIMEOUT = 10.0
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


class LoginError(Exception):
    """The login did not complete; the message says why and what to do (never a secret)."""


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (RFC 7636: 43-128 unreserved characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=")
    return verifier, challenge.decode("ascii")


def _clean(text: str, limit: int = 300) -> str:
    """Provider-supplied text for a terminal: printable characters only, bounded, no secrets."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return redact(printable)[:limit]


STATE_MISMATCH = (
    "The login answer does not belong to this login attempt (state mismatch); it was ignored. "
    'Run "astravue-mcp login" again and use the newest link only.'
)


class LoginFlow:
    """One login attempt."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: TokenStore | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        settings.require("client_id")
        self.settings = settings
        self._store = store
        self._transport = transport
        self.state = secrets.token_urlsafe(32)
        self._verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": settings.redirect_uri,
            "scope": settings.scopes,
            "state": self.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        self.authorization_url = f"{settings.authorize_endpoint}?{urlencode(query)}"

    # ------------------------------------------------------------ the browser's answer
    def owns(self, params: Mapping[str, str]) -> bool:
        """Whether a redirect carries this attempt's ``state`` (constant-time compare)."""
        return secrets.compare_digest(params.get("state", "").encode(), self.state.encode())

    def verify_callback(self, params: Mapping[str, str]) -> str:
        """Check the redirect's parameters and return the authorization code."""
        if not self.owns(params):
            raise LoginError(STATE_MISMATCH)
        issuer = params.get("iss")
        if issuer is not None and issuer.rstrip("/") != self.settings.auth_url:
            # RFC 9207: the answer came from another provider than the one we sent the user to.
            raise LoginError(
                f"The login answer came from {_clean(issuer)}, not from {self.settings.auth_url}; it was ignored."
            )
        error = params.get("error")
        if error:
            description = _clean(params.get("error_description", ""))
            if error == "access_denied":
                raise LoginError(
                    "The login was cancelled or access was denied in the browser"
                    + (f" ({description})" if description else "")
                    + '. Run "astravue-mcp login" again and approve the access.'
                )
            raise LoginError(
                f"Astravue's login server reported an error: {_clean(error, 80)}"
                + (f" ({description})" if description else "")
                + f". Check the API client's settings in Astravue ({ENV_BY_FIELD['client_id']}, "
                f"{ENV_BY_FIELD['redirect_uri']}={self.settings.redirect_uri} must be registered there)."
            )
        code = params.get("code")
        if not code:
            raise LoginError("The login answer carries no authorization code. Run the login again.")
        return code

    def verify_pasted(self, text: str) -> str:
        """Accept the final redirect URL pasted from the browser's address bar (or its query)."""
        text = text.strip()
        if not text:
            raise LoginError("Nothing was pasted. Run the login again.")
        query = urlsplit(text).query if "://" in text else text.lstrip("?")
        return self.verify_callback(dict(parse_qsl(query, keep_blank_values=True)))

    # ------------------------------------------------------------ code exchange
    async def complete(self, code: str) -> TokenSet:
        """Exchange the code for tokens and store them (replacing an older login of this account)."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_uri,
            "code_verifier": self._verifier,
        }
        try:
            payload = await oidc.token_request(self.settings, data, self._transport)
        except oidc.ProviderUnavailable as exc:
            raise LoginError(f"Could not exchange the login code: {exc}. Run the login again.") from None
        except oidc.OAuthError as exc:
            hint = ""
            if exc.error in ("invalid_client", "unauthorized_client"):
                hint = " Check ASTRAVUE_CLIENT_ID, ASTRAVUE_CLIENT_SECRET and ASTRAVUE_TOKEN_AUTH_METHOD."
            raise LoginError(f"Astravue's login server refused the login code ({exc}).{hint}") from None
        assert self.settings.client_id is not None
        try:
            tokens = TokenSet.from_response(payload, auth_url=self.settings.auth_url, client_id=self.settings.client_id)
        except ValueError as exc:
            raise LoginError(f"Astravue's login server gave an unusable answer ({exc}).") from None
        store = self._store if self._store is not None else await anyio.to_thread.run_sync(open_store, self.settings)

        def save() -> None:
            # Under the refresh lock, so a server mid-refresh never overwrites this new login.
            with store.lock.held():
                store.save(tokens)

        await anyio.to_thread.run_sync(save)
        log.info("Stored the new login in %s", store.description)
        return tokens

    # ------------------------------------------------------------ loopback callback
    @asynccontextmanager
    async def loopback(self) -> AsyncIterator[LoopbackCallback]:
        """Serve the redirect URI on 127.0.0.1 until the first valid callback arrives."""
        callback = LoopbackCallback(self)
        failure: Exception | None = None
        async with await callback.bind(), anyio.create_task_group() as tg:
            tg.start_soon(callback.serve)
            try:
                yield callback
            except Exception as exc:  # re-raised below, so the caller does not get an ExceptionGroup
                failure = exc
            finally:
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure


class LoopbackCallback:
    """A one-shot HTTP server on 127.0.0.1 that receives the browser's redirect."""

    def __init__(self, flow: LoginFlow) -> None:
        self.flow = flow
        parts = urlsplit(flow.settings.redirect_uri)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
            raise LoginError(
                f"{ENV_BY_FIELD['redirect_uri']}={flow.settings.redirect_uri} is not a local http://127.0.0.1:PORT "
                "address, so this computer cannot receive the login. Register such a redirect URI in Astravue, "
                'or run "astravue-mcp login --no-browser" and paste the final address back.'
            )
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._done = anyio.Event()
        self._claimed = False
        self._code: str | None = None
        self._error: LoginError | None = None

    async def bind(self) -> anyio.abc.Listener[anyio.abc.SocketStream]:
        try:
            # 127.0.0.1 only: nothing else on the network may deliver (or steal) the code.
            self._listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES, getattr(errno, "WSAEADDRINUSE", -1)):
                raise LoginError(
                    f"Port {self.port} on 127.0.0.1 is busy (or not allowed), so the login callback cannot be "
                    f"received. Close whatever uses it, or register another redirect URI in Astravue and set "
                    f"{ENV_BY_FIELD['redirect_uri']} to it (e.g. http://127.0.0.1:8766/callback)."
                ) from None
            raise LoginError(f"Cannot listen on 127.0.0.1:{self.port} for the login callback ({exc}).") from None
        return self._listener

    async def serve(self) -> None:
        assert self._listener is not None
        await self._listener.serve(self._handle)

    async def wait(self) -> str:
        """The authorization code of the first callback; raises LoginError for a bad one."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._code is not None
        return self._code

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(CLIENT_READ_TIMEOUT):  # browsers open idle pre-connections
                try:
                    target = await _read_request_target(stream)
                except (anyio.EndOfStream, anyio.BrokenResourceError, ValueError):
                    return
                url = urlsplit(target)
                if url.path != self.path:
                    await _respond(stream, 404, "Not found", "This address only receives the Astravue login.")
                    return
                if self._claimed:
                    await _respond(stream, 409, "Already done", "This login has already finished. Close this tab.")
                    return
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                if not self.flow.owns(params):
                    # Not our login's answer (a stale tab, another program or web page): anyone local can
                    # send one, so it must not end the wait for the real one.
                    log.warning("Ignored a login callback that does not belong to this login attempt (state mismatch)")
                    await _respond(stream, 400, "Not this login", STATE_MISMATCH)
                    return
                self._claimed = True  # set before any await: only the first valid callback counts
                try:
                    code = self.flow.verify_callback(params)
                except LoginError as exc:
                    # Answer the browser before waking the waiter: waking it ends this server.
                    await _respond(stream, 400, "Login failed", f"{exc} You can close this tab.")
                    self._error = exc
                else:
                    await _respond(
                        stream,
                        200,
                        "Astravue login received",
                        "Astravue received your login. You can close this tab and return to the terminal.",
                    )
                    self._code = code
                self._done.set()


async def _read_request_target(stream: anyio.abc.SocketStream) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive(4096)
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    method, target, _version = data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    if method != "GET":
        raise ValueError("not a GET")
    return target


async def _respond(stream: anyio.abc.SocketStream, status: int, title: str, message: str) -> None:
    title, message = html.escape(title), html.escape(message)
    body = (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>"
        f"<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{message}</p></body></html>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):  # the browser went away
        await stream.send(head + body)


# ------------------------------------------------------------ the terminal command
def open_browser(url: str) -> bool:
    """Open the system browser, unless this looks like a machine without a desktop.

    On Linux without DISPLAY/WAYLAND_DISPLAY, ``webbrowser`` would start a text browser (lynx,
    w3m) inside this very terminal; printing the URL is more useful there. A BROWSER the person
    chose (``wslview`` on WSL, a script over SSH) is always used.
    """
    desktop = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("BROWSER")
    if sys.platform.startswith("linux") and not desktop:
        return False
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False


def _read_stdin_line() -> str:
    return sys.stdin.readline()


async def run_login(
    settings: Settings,
    *,
    no_browser: bool = False,
    timeout: float | None = None,
    read_line: Callable[[], str] = _read_stdin_line,
    transport: httpx2.AsyncBaseTransport | None = None,
    store: TokenStore | None = None,
) -> TokenSet:
    """Run the whole login from a terminal; messages for the person go to stderr."""
    flow = LoginFlow(settings, store=store, transport=transport)
    timeout = settings.login_timeout if timeout is None else timeout
    code: str | None = None
    with anyio.move_on_after(timeout):
        if no_browser:
            _say(
                "Open this address in a browser on any machine and log in to Astravue:\n\n"
                f"  {flow.authorization_url}\n\n"
                "The browser then goes to an address starting with "
                f"{settings.redirect_uri} (it may show an error page: that is fine).\n"
                "Copy that whole address from the address bar and paste it here, then press Enter:"
            )
            # A thread blocked on stdin cannot be interrupted; abandon it when the timeout fires.
            line = await anyio.to_thread.run_sync(read_line, abandon_on_cancel=True)
            code = flow.verify_pasted(line)
        else:
            async with flow.loopback() as callback:
                opened = await anyio.to_thread.run_sync(open_browser, flow.authorization_url, abandon_on_cancel=True)
                _say(
                    ("A browser window was opened to log in to Astravue. " if opened else "")
                    + f"If it did not open, visit this address:\n\n  {flow.authorization_url}\n\n"
                    f"Waiting up to {timeout:.0f} s for the login (Ctrl+C to stop)..."
                )
                code = await callback.wait()
    if code is None:
        raise LoginError(
            f'No login arrived within {timeout:.0f} s. Run "astravue-mcp login" again '
            "(--timeout SECONDS gives more time; --no-browser lets you paste the address instead)."
        )
    return await flow.complete(code)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
