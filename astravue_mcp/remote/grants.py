"""Each person's Astravue login (their "grant") in the shared state, and the API client that uses it.

The local token manager (:class:`~astravue_mcp.auth.manager.TokenManager`) already does the hard
part: silent refresh, single flight in a process, the store re-read under a lock so rotation never
refreshes twice. Here it gets a store per person backed by the shared state, whose lock is a lock
in that state, so exactly one replica refreshes a person's Keycloak token and every other replica
picks up the rotated tokens. The tokens are sealed with the key ring, bound to the person's record.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.from_thread
import httpx2
from pydantic import ValidationError

from astravue_mcp.api.limits import MAX_BUDGET_WAIT, BudgetSpent, CallScope
from astravue_mcp.auth.manager import TokenManager
from astravue_mcp.auth.renew import RENEW_DEADLINE, LoginUnavailable
from astravue_mcp.auth.store import LOCK_TIMEOUT, StoreError, TokenSet
from astravue_mcp.config import Settings
from astravue_mcp.errors import ApiError, AuthError
from astravue_mcp.remote.crypto import KeyRing, SealedValueError
from astravue_mcp.remote.state import State, StateUnavailable

if TYPE_CHECKING:
    from astravue_mcp.api.client import AstravueClient

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_TTL = RENEW_DEADLINE + 15
"""How long a replica that died mid-refresh can hold a person's refresh lock: longer than any refresh."""
OPEN_ORGS_TTL = 600.0
"""Seconds the organisations a person's account opens are kept before they are checked again."""
MAX_CACHED_USERS = 2000
"""Per-person API clients kept in a process; the least recently used are dropped beyond this."""


def user_key(user: str) -> str:
    """A person's id in state keys: a hash, so an id chosen upstream cannot shape our key space."""
    return hashlib.sha256(user.encode()).hexdigest()[:32]


def _blocking(call: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Run the state's coroutine from the worker thread the token manager calls its store in."""
    try:
        return anyio.from_thread.run(call, *args)
    except StateUnavailable as exc:
        raise StoreError(str(exc)) from None


class GrantStore:
    """One person's Astravue tokens, sealed, in the shared state (the token manager's store)."""

    def __init__(self, state: State, ring: KeyRing, user: str) -> None:
        self.state, self.ring = state, ring
        self.key = f"grant:{user_key(user)}"
        self.description = "the shared state"
        self.lock_name = f"refresh:{user_key(user)}"

    async def read(self) -> TokenSet | None:
        sealed = await self.state.get(self.key)
        if sealed is None:
            return None
        try:
            return TokenSet.model_validate_json(self.ring.open(sealed, self.key))
        except (SealedValueError, ValidationError) as exc:
            # Unreadable (e.g. its key was dropped from the ring): the person signs in again.
            log.warning("Ignoring an unreadable Astravue login in the shared state (%s)", exc)
            return None

    async def write(self, tokens: TokenSet) -> None:
        await self.state.set(self.key, self.ring.seal(tokens.model_dump_json().encode(), self.key))

    async def remove(self) -> bool:
        return await self.state.delete(self.key) > 0

    # The token manager's (blocking) TokenStore protocol, called from its worker threads.
    def load(self) -> TokenSet | None:
        return _blocking(self.read)

    def save(self, tokens: TokenSet) -> None:
        _blocking(self.write, tokens)

    def delete(self) -> bool:
        return _blocking(self.remove)


class SharedBudget:
    """The per-person API budget (requests per minute) counted in the shared state across replicas."""

    def __init__(self, state: State, user: str, per_minute: int, window: float = 60.0) -> None:
        self.state, self.per_minute, self.window = state, per_minute, window
        self.prefix = f"rate:{user_key(user)}"

    async def acquire(self, scope: CallScope | None = None) -> None:
        """Take a slot in this minute; wait for the next minute if that fits the call, else say when."""
        give_up = time.monotonic() + min(MAX_BUDGET_WAIT, scope.remaining() if scope is not None else math.inf)
        while True:
            now = time.time()
            slot = int(now // self.window)
            if await self.state.count(f"{self.prefix}:{slot}", self.window) <= self.per_minute:
                return
            wait = (slot + 1) * self.window - now
            if time.monotonic() + wait > give_up:
                why = f"your budget of {self.per_minute} API requests a minute (ASTRAVUE_RATE_LIMIT) is spent"
                raise BudgetSpent(why, math.ceil(wait))
            if scope is not None:
                await scope.waiting(f"waiting {wait:.0f} s for the rate budget ({self.per_minute} requests/min)")
            await anyio.sleep(wait)


class SharedTransport(httpx2.AsyncBaseTransport):
    """The one connection pool every person's client uses; closing a client must not close it."""

    def __init__(self, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.transport = transport or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self.transport.handle_async_request(request)

    async def aclose(self) -> None:
        return None


def _for_remote(exc: AuthError) -> AuthError:
    """The local manager's "run astravue-mcp login" becomes what a remote person can do: reconnect."""
    from astravue_mcp.auth.manager import EXPIRED_MESSAGE, NO_LOGIN_MESSAGE  # deferred: once a person has a grant

    return AuthError(RECONNECT) if str(exc) in (NO_LOGIN_MESSAGE, EXPIRED_MESSAGE) else exc


class PersonTokens(TokenManager):
    """One person's Astravue login: the local token manager over their sealed record in the shared state.

    The local manager reads and saves its store and waits for its lock in worker threads (a file and
    a file lock). Here all three are network calls to the shared state, made in the event loop: with
    many people refreshing at once, a thread blocked per waiting person would exhaust the thread pool,
    holders would wait for threads while waiters held them, and the lock's ttl would then let a
    second replica refresh the same rotating token. And renewed tokens are saved without waiting for
    a free thread, at the moment the provider has already spent the old refresh token.
    """

    def __init__(self, settings: Settings, grant: GrantStore, transport: httpx2.AsyncBaseTransport) -> None:
        super().__init__(settings, store=grant, transport=transport)  # type: ignore[arg-type]
        self.grant = grant

    async def _to_store(self, tokens: TokenSet) -> None:
        """Save renewed tokens straight from the event loop: no wait for a worker thread to hand back to it."""
        try:
            await self.grant.write(tokens)
        except StateUnavailable as exc:
            raise StoreError(str(exc)) from None

    async def _from_store(self, store: object = None) -> TokenSet | None:
        try:
            return await self.grant.read()
        except StateUnavailable as exc:
            raise LoginUnavailable(f"Could not read your Astravue login: {exc}") from None

    async def current_tokens(self) -> TokenSet:
        try:
            return await super().current_tokens()
        except AuthError as exc:
            raise _for_remote(exc) from None

    async def _refresh(self, rejected: str) -> TokenSet:
        """Single flight in this process (the manager's lock), then across replicas (the shared lock)."""
        try:
            async with self._lock:
                if self._usable(self._tokens, rejected):
                    assert self._tokens is not None
                    return self._tokens
                state, name = self.grant.state, self.grant.lock_name
                with anyio.CancelScope(shield=True):  # a lock taken must be released, cancelled or not
                    token = await state.acquire(name, ttl=LOCK_TTL, wait=LOCK_TIMEOUT)
                try:
                    return await self._refresh_locked(self.grant, rejected)  # type: ignore[arg-type]
                finally:
                    await state.release(name, token)
        except AuthError as exc:
            raise _for_remote(exc) from None
        except StateUnavailable as exc:
            raise LoginUnavailable(f"Could not renew your Astravue login: {exc}") from None


def _bound(cache: OrderedDict[str, Any]) -> None:
    """Drop the least recently used people beyond what a process keeps."""
    while len(cache) > MAX_CACHED_USERS:
        cache.popitem(last=False)


RECONNECT = (
    "Your Astravue sign-in for this server has ended. Disconnect and reconnect this server in your MCP "
    "client (or remove and add it again) to sign in to Astravue again."
)


class Users:
    """Per-person API clients for one process: their own token manager, org and rate budget.

    A person's organisation is the deployment's default (``ASTRAVUE_ORG_ID``) until they choose
    another of ``ASTRAVUE_ORGS``; the choice is kept in the shared state, so every replica sees it.
    """

    def __init__(
        self,
        settings: Settings,
        state: State,
        ring: KeyRing,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings, self.state, self.ring = settings, state, ring
        self.transport = SharedTransport(transport)
        self._clients: OrderedDict[str, AstravueClient] = OrderedDict()
        self._memos: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._orgs: OrderedDict[str, int] = OrderedDict()
        """The organisations people chose, once read from the shared state."""

    def grant(self, user: str) -> GrantStore:
        return GrantStore(self.state, self.ring, user)

    def manager(self, user: str) -> PersonTokens:
        return PersonTokens(self.settings, self.grant(user), self.transport)

    def client_for(self, user: str) -> AstravueClient:
        client = self._clients.get(user)
        if client is None:
            client = self._client(user, self.org_of(user), self.manager(user))
            self._clients[user] = client
            _bound(self._clients)  # its pool is the shared one: nothing to close
        else:
            self._clients.move_to_end(user)
        return client

    def _client(self, user: str, org: int | None, auth: httpx2.Auth) -> AstravueClient:
        from astravue_mcp.api.client import AstravueClient  # deferred: ~60 ms with its models; only on a first call

        settings = self.settings if org == self.settings.org_id else self.settings.model_copy(update={"org_id": org})
        client = AstravueClient(settings, auth=auth, transport=self.transport)
        client.budget = SharedBudget(self.state, user, self.settings.rate_limit)  # type: ignore[assignment]
        return client

    # ------------------------------------------------------------ the person's organisation
    def org_of(self, user: str) -> int | None:
        """The organisation the person works in: their choice, else the deployment's default."""
        return self._orgs.get(user, self.settings.org_id)

    def has_chosen(self, user: str) -> bool:
        """Whether nothing is left to choose: one organisation in the deployment, or the person chose."""
        return len(self.settings.org_choices) <= 1 or user in self._orgs

    async def choose(self, user: str, org: int) -> None:
        """Keep the person's organisation in the shared state; their client and memo start afresh in it."""
        await self.state.set(f"org:{user_key(user)}", str(org).encode())
        self._settle(user, org)

    async def unchoose(self, user: str) -> None:
        """A new sign-in chooses afresh: the person is asked again (and their organisations checked again)."""
        await self.state.delete(f"org:{user_key(user)}", f"orgs-open:{user_key(user)}")
        self._settle(user, None)

    async def _load_org(self, user: str) -> None:
        """The person's choice as the shared state has it now (another replica may have made or reset it)."""
        if len(self.settings.org_choices) <= 1:
            return
        stored = (await self.state.get(f"org:{user_key(user)}") or b"").decode()
        self._settle(user, int(stored) if stored.isdigit() and int(stored) in self.settings.org_choices else None)

    def _settle(self, user: str, org: int | None) -> None:
        from astravue_mcp.identity import IDENTITY_KEY  # deferred: identity, on a first request

        before = self.org_of(user)
        if org is None:
            self._orgs.pop(user, None)
        else:
            self._orgs[user] = org
            self._orgs.move_to_end(user)
            _bound(self._orgs)
        if self.org_of(user) == before:
            return
        client = self._clients.get(user)
        if client is not None and client.auth is not None:  # the same login (one refresh at a time), another org
            self._clients[user] = self._client(user, self.org_of(user), client.auth)
        memo = self._memos.get(user)
        if memo is not None:  # what was learnt in another organisation does not hold here; who they are does
            self._memos[user] = {k: v for k, v in memo.items() if k == IDENTITY_KEY}

    async def open_orgs(self, user: str) -> list[int]:
        """The deployment's organisations this person's account can open (one request to each).

        Kept a while in the shared state: until the person settles (their client may be unable to ask),
        every call would otherwise spend that many requests of their budget again.
        """
        key = f"orgs-open:{user_key(user)}"
        known = await self.state.get(key)
        if known is not None:
            return [int(org) for org in known.decode().split(",") if org.isdigit()]
        auth = self.client_for(user).auth
        assert auth is not None
        found, sure = [], True
        for org in self.settings.org_choices:
            async with self._client(user, org, auth) as probe:
                try:
                    await probe.call("list_spaces")
                except ApiError as exc:
                    if exc.status == 403:
                        continue  # not a member
                    sure = False  # any other failure leaves this one open, and says nothing for long
            found.append(org)
        if sure:
            await self.state.set(key, ",".join(map(str, found)).encode(), ttl=OPEN_ORGS_TTL)
        return found

    def memo_for(self, user: str) -> dict[str, Any]:
        """The person's memo (the engines' per-session answers, such as who "me" is)."""
        memo = self._memos.get(user)
        if memo is None:
            memo = self._memos[user] = {}
            _bound(self._memos)
        else:
            self._memos.move_to_end(user)
        return memo

    async def prepare(self, user: str) -> None:
        """Before a request: the person's organisation, and their identity (from their login's claims) in their memo."""
        from astravue_mcp.identity import IDENTITY_KEY, Identity  # deferred: identity, on a first request

        await self._load_org(user)
        memo = self.memo_for(user)
        if IDENTITY_KEY not in memo:
            tokens = await self.grant(user).read()
            memo[IDENTITY_KEY] = Identity.from_claims(tokens.claims) if tokens is not None else None

    def forget(self, user: str) -> None:
        self._clients.pop(user, None)
        self._memos.pop(user, None)
        self._orgs.pop(user, None)

    async def aclose(self) -> None:
        self._clients.clear()
        await self.transport.transport.aclose()
