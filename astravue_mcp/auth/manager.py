"""Silent refresh of the stored OAuth login, plugged into the API client as an ``httpx2.Auth``.

The rules, in the order they matter:

1. Nothing happens at construction: the stdio server must start instantly. The store is opened
   and read on the first request, in a worker thread.
2. Before a request, an access token that expires within ``refresh_margin`` is refreshed first;
   a 401 from the API causes one refresh and one resend.
3. Single flight in a process: concurrent requests that need a refresh wait on one lock; whoever
   gets it second finds a fresh token and uses it.
4. Across processes: the refresh runs under a lock file next to the store, and the store is
   re-read after taking it. If another process rotated the tokens meanwhile, theirs are used; a
   process never refreshes with a stale refresh token, so rotation ("Revoke Refresh Token" in
   Keycloak) never produces ``invalid_grant`` between our own processes. The store is written
   only while holding the lock, only with tokens obtained from the store's current refresh token.
5. ``invalid_grant`` is final for that refresh token: calls get an actionable error and nothing
   is retried until the store holds a different refresh token (a ``login`` in a terminal), which
   is picked up on the next call without a restart. Network trouble is retried with backoff and
   never erases anything.
6. A refresh, once started, finishes and is saved whatever happens to the call or the process
   that started it (cancellation, stdin closing, SIGTERM, kill -9): see :mod:`.renew`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TypeVar

import anyio
import anyio.to_thread
import httpx2

from astravue_mcp.auth import renew
from astravue_mcp.auth.renew import LoginUnavailable
from astravue_mcp.auth.store import StoreError, TokenSet, TokenStore, open_store
from astravue_mcp.config import Settings, SettingsError
from astravue_mcp.errors import AuthError

log = logging.getLogger(__name__)

T = TypeVar("T")

EXPIRED_MESSAGE = 'Your Astravue login has expired. Run "astravue-mcp login" in a terminal.'
NO_LOGIN_MESSAGE = 'You are not logged in to Astravue. Run "astravue-mcp login" in a terminal.'
__all__ = ["EXPIRED_MESSAGE", "NO_LOGIN_MESSAGE", "LoginUnavailable", "TokenManager"]


class TokenManager(httpx2.Auth):
    """Attaches the stored access token to API requests and renews it silently."""

    requires_request_body = True  # a 401 resend must be able to replay the body

    def __init__(
        self,
        settings: Settings,
        *,
        store: TokenStore | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._store = store
        self._transport = transport  # for the token endpoint only (tests)
        self._clock = clock
        self._tokens: TokenSet | None = None
        self._loaded = False
        self._dead_refresh_token: str | None = None
        """The refresh token the provider declared invalid; never sent again."""
        self._lock = anyio.Lock()
        self.refresh_count = 0
        """Successful refreshes done by this manager (diagnostics and tests)."""

    # ------------------------------------------------------------ httpx2.Auth
    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        raise RuntimeError("TokenManager works with httpx2.AsyncClient only")

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        if self.settings.access_token is not None:  # pragma: no cover - auth_for() never does this
            raise RuntimeError("a static ASTRAVUE_ACCESS_TOKEN is handled by BearerAuth")
        await request.aread()
        tokens = await self.current_tokens()
        request.headers["Authorization"] = f"{_scheme(tokens)} {tokens.access_token}"
        response = yield request
        if response.status_code != 401:
            return
        log.info("The API answered 401; renewing the access token once and resending")
        tokens = await self._refresh(rejected=tokens.access_token)
        request.headers["Authorization"] = f"{_scheme(tokens)} {tokens.access_token}"
        yield request

    # ------------------------------------------------------------ tokens
    async def current_tokens(self) -> TokenSet:
        """A usable token set: from memory, from the store, or freshly refreshed."""
        if not self._loaded or self._tokens is None or self._dead_refresh_token is not None:
            # Not logged in or dead: look again every time, a `login` elsewhere may have fixed it.
            await self._reload()
        tokens = self._tokens
        if tokens is None:
            raise AuthError(NO_LOGIN_MESSAGE)
        if self._dead_refresh_token is not None:
            raise AuthError(EXPIRED_MESSAGE)
        if tokens.expires_within(self.settings.refresh_margin, self._clock()):
            tokens = await self._refresh(rejected=tokens.access_token)
        return tokens

    async def _reload(self) -> None:
        stored = await self._from_store()
        self._loaded = True
        if stored is None:
            self._tokens = None
            return
        if self._dead_refresh_token is not None and stored.refresh_token != self._dead_refresh_token:
            log.info("A new login was found in the token store; using it")
            self._dead_refresh_token = None
        self._tokens = stored

    async def refresh_now(self, rejected: str) -> TokenSet:
        """Renew now, exactly as a 401 would (single flight, store lock, rotation); for ``doctor --refresh``."""
        return await self._refresh(rejected)

    async def _refresh(self, rejected: str) -> TokenSet:
        """Renew the access token that was found expiring or was rejected (single flight)."""
        async with self._lock:
            # Another task of this process may have renewed while we waited for the lock.
            if self._usable(self._tokens, rejected):
                assert self._tokens is not None
                return self._tokens
            store = await self._open_store()
            try:
                # Shielded: a waiter cancelled mid-acquire must still get (and then release) the
                # lock the thread may have taken, or the store would stay locked for this process.
                with anyio.CancelScope(shield=True):
                    await _in_thread(store.lock.acquire)
            except StoreError as exc:
                raise LoginUnavailable(f"Could not renew the Astravue login: {exc}. Try again.") from None
            try:
                return await self._refresh_locked(store, rejected)
            finally:
                store.lock.release()

    async def _refresh_locked(self, store: TokenStore, rejected: str) -> TokenSet:
        # The store, not our memory, is the truth: another process may have rotated the tokens,
        # or a `logout` may have removed them.
        current = await self._from_store(store)
        if current is None:
            self._tokens = None
            raise AuthError(NO_LOGIN_MESSAGE)
        if self._usable(current, rejected):
            log.info("Another process already renewed the access token; using its tokens")
            self._tokens = current
            self._dead_refresh_token = None
            return current
        if not current.refresh_token or current.refresh_token == self._dead_refresh_token:
            self._tokens = current
            raise AuthError(EXPIRED_MESSAGE)
        if current.refresh_expired(self._clock()):
            self._tokens, self._dead_refresh_token = current, current.refresh_token
            raise AuthError(EXPIRED_MESSAGE)
        detached = renew.can_detach(store, self._transport)
        # Shielded: once the refresh token is sent, the provider may have spent it, so the call's
        # cancellation (a client's notifications/cancelled, stdin closing, a deadline) must not
        # drop the answer. Bounded: a provider that never answers cannot hold the call forever.
        # In process, renew() bounds only the provider call: a deadline here could also cut off
        # the save of tokens the provider already issued. The helper saves on its own, so only our
        # wait for it is bounded.
        bound = renew.RENEW_DEADLINE + renew.HELPER_GRACE
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + bound if detached else math.inf):
            try:
                if detached:
                    renewed = await renew.renew_detached(self.settings, store)
                else:
                    renewed = await renew.renew(
                        self.settings, store, current, self._transport, self._clock, self._to_store
                    )
            except renew.RefreshRefused:  # final for this refresh token, keep the store as is
                self._tokens, self._dead_refresh_token = current, current.refresh_token
                raise AuthError(EXPIRED_MESSAGE) from None
            self._tokens = renewed
            self._dead_refresh_token = None
            self.refresh_count += 1
            log.info(
                "Access token renewed for %s (valid %s)",
                renewed.claims.get("preferred_username") or renewed.claims.get("sub") or "the stored login",
                f"{renewed.expires_at - renewed.obtained_at:.0f} s" if renewed.expires_at else "for an unknown time",
            )
            return renewed
        raise LoginUnavailable(f"Renewing the Astravue login took over {bound:.0f} s. Try again in a moment.")

    def _usable(self, tokens: TokenSet | None, rejected: str) -> bool:
        return (
            tokens is not None
            and tokens.access_token != rejected
            and not tokens.expires_within(self.settings.refresh_margin, self._clock())
        )

    # ------------------------------------------------------------ store
    async def _open_store(self) -> TokenStore:
        if self._store is None:
            try:
                # Choosing the store may probe the OS keyring (slow import, maybe D-Bus).
                self._store = await _in_thread(open_store, self.settings)
            except SettingsError as exc:
                raise AuthError(f'{exc} Then run "astravue-mcp login" in a terminal.') from None
        return self._store

    async def _to_store(self, tokens: TokenSet) -> None:
        """Save renewed tokens (the store's lock is held); raises ``StoreError`` or ``OSError``."""
        store = await self._open_store()
        await _in_thread(store.save, tokens)

    async def _from_store(self, store: TokenStore | None = None) -> TokenSet | None:
        store = store or await self._open_store()
        try:
            return await _in_thread(store.load)
        except StoreError as exc:
            raise LoginUnavailable(f"Could not read the stored Astravue login: {exc}.") from None


def _scheme(tokens: TokenSet) -> str:
    # Keycloak says "Bearer"; some providers say "bearer". The header wants the canonical case.
    return "Bearer" if tokens.token_type.lower() == "bearer" else tokens.token_type


async def _in_thread(func: Callable[..., T], *args: object) -> T:
    return await anyio.to_thread.run_sync(func, *args)
