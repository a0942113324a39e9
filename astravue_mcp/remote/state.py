"""Shared state for remote mode: one small interface, two implementations.

Everything replicas must agree on (registered clients, authorization transactions, one-time codes,
refresh-token records, encrypted upstream grants, per-user locks, the per-user rate budget) lives
behind :class:`State`, which also carries messages every replica hears (resource-change events).
``memory://`` keeps it in this process (one replica); ``redis://host:port/db`` keeps it in Redis so
any replica can answer any request.

Values are bytes; callers encode and, for anything secret, encrypt (:mod:`.crypto`)
before a value reaches the store. Keys are plain strings, namespaced here.
"""

from __future__ import annotations

import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

import anyio

from astravue_mcp.errors import AstravueError

PREFIX = "astravue:"
MAX_CONNECTIONS = 100  # per replica; Redis allows 10,000 clients by default
LOCK_POLL = 0.02
RECONNECT_DELAY = 1.0
"""Seconds between attempts to hear a channel again after Redis went away."""
Handler = Callable[[bytes], None]
"""Receives one message; synchronous and must not raise (it runs on the reading task)."""

log = logging.getLogger("astravue_mcp.remote.state")


class StateUnavailable(AstravueError):
    """The shared state cannot be reached (Redis down or refusing); the message says which, why and what to do."""


RETRY = "Try again in a few seconds; if it persists, the operator should check Redis."


class LockTimeout(StateUnavailable):
    """Another holder kept a lock longer than we were willing to wait."""


class State(ABC):
    """Expiring bytes by key, with the few atomic operations the auth flows need."""

    url: str

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    @abstractmethod
    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Set only when absent; True when this call created the key."""

    @abstractmethod
    async def take(self, key: str) -> bytes | None:
        """Read and delete in one step: a one-time value is handed out at most once."""

    @abstractmethod
    async def delete(self, *keys: str) -> int: ...

    @abstractmethod
    async def delete_if(self, key: str, value: bytes) -> bool:
        """Delete only while the key still holds ``value`` (releasing a lock we own)."""

    @abstractmethod
    async def count(self, key: str, window: float) -> int:
        """Increment a counter that lives ``window`` seconds from its first increment; the new value."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`StateUnavailable` when the store does not answer."""

    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None:
        """Hand ``message`` to every replica hearing ``channel`` (this one included); no replay."""

    @abstractmethod
    def hear(self, channel: str, handler: Handler) -> AbstractAsyncContextManager[None]:
        """While entered, every message published on ``channel`` by any replica goes to ``handler``."""

    async def aclose(self) -> None:
        return None

    async def acquire(self, name: str, *, ttl: float = 30.0, wait: float = 60.0) -> bytes:
        """Take the lock ``name`` across every replica sharing this state; the token releases it.

        ``ttl`` bounds how long a crashed holder can block others; ``wait`` how long we queue.
        """
        token = secrets.token_bytes(16)
        deadline = time.monotonic() + wait
        while not await self.add(f"lock:{name}", token, ttl):
            if time.monotonic() >= deadline:
                raise LockTimeout(f"the shared lock {name!r} stayed busy for {wait:.0f} s. {RETRY}")
            await anyio.sleep(LOCK_POLL)
        return token

    async def release(self, name: str, token: bytes) -> None:
        with anyio.CancelScope(shield=True):
            await self.delete_if(f"lock:{name}", token)

    @asynccontextmanager
    async def lock(self, name: str, *, ttl: float = 30.0, wait: float = 60.0) -> AsyncIterator[None]:
        token = await self.acquire(name, ttl=ttl, wait=wait)
        try:
            yield
        finally:
            await self.release(name, token)


class MemoryState(State):
    """One process's state: correct for a single replica, gone at exit."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._handlers: dict[object, tuple[str, Handler]] = {}

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and time.monotonic() >= expires:
            del self._data[key]
            return None
        return value

    @staticmethod
    def _expiry(ttl: float | None) -> float | None:
        return None if ttl is None else time.monotonic() + ttl

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._data[key] = (value, self._expiry(ttl))

    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if self._live(key) is not None:
            return False
        self._data[key] = (value, self._expiry(ttl))
        return True

    async def take(self, key: str) -> bytes | None:
        value = self._live(key)
        self._data.pop(key, None)
        return value

    async def delete(self, *keys: str) -> int:
        return sum(self._live(k) is not None and self._data.pop(k, None) is not None for k in keys)

    async def delete_if(self, key: str, value: bytes) -> bool:
        if self._live(key) == value:
            del self._data[key]
            return True
        return False

    async def count(self, key: str, window: float) -> int:
        current = self._live(key)
        if current is None:
            self._data[key] = (b"1", self._expiry(window))
            return 1
        value = int(current) + 1
        self._data[key] = (str(value).encode(), self._data[key][1])
        return value

    async def ping(self) -> None:
        return None

    async def publish(self, channel: str, message: bytes) -> None:
        for heard, handler in list(self._handlers.values()):
            if heard == channel:
                handler(message)

    @asynccontextmanager
    async def hear(self, channel: str, handler: Handler) -> AsyncIterator[None]:
        token = object()
        self._handlers[token] = (channel, handler)
        try:
            yield
        finally:
            del self._handlers[token]


# Compare-and-delete must be one step on the server, or a lock that expired and was taken by
# another replica between our GET and DEL would be deleted from under it.
_DELETE_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"
_COUNT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n"


class RedisState(State):
    """State in Redis (``redis.asyncio``): shared by every replica pointed at the same database."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        import redis.asyncio as redis  # deferred: redis only for redis:// state

        self.url = url
        self._where = _display(url)
        # A burst of people (or a lock queue) can want more connections than the pool holds: a
        # blocking pool makes them wait their turn (up to the timeout) instead of failing the request.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        self._redis = redis.Redis.from_pool(pool)  # closes the pool with the client
        # Pub/sub ignores the database number: deployments sharing one Redis must not hear each other.
        self._channels = f"{PREFIX}{self._redis.connection_pool.connection_kwargs.get('db', 0)}:"
        self._delete_if = self._redis.register_script(_DELETE_IF)
        self._count = self._redis.register_script(_COUNT)

    async def _do(self, operation: str, call: object) -> object:
        import redis.exceptions  # deferred: redis only for redis:// state

        try:
            return await call  # type: ignore[misc]
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise StateUnavailable(f"Redis at {self._where} did not answer ({operation}): {exc}. {RETRY}") from None
        except redis.exceptions.RedisError as exc:
            raise StateUnavailable(f"Redis at {self._where} refused {operation}: {exc}. {RETRY}") from None

    @staticmethod
    def _ms(ttl: float | None) -> int | None:
        return None if ttl is None else max(1, int(ttl * 1000))

    async def get(self, key: str) -> bytes | None:
        return await self._do("GET", self._redis.get(PREFIX + key))  # type: ignore[return-value]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._do("SET", self._redis.set(PREFIX + key, value, px=self._ms(ttl)))

    async def add(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return bool(await self._do("SET NX", self._redis.set(PREFIX + key, value, px=self._ms(ttl), nx=True)))

    async def take(self, key: str) -> bytes | None:
        return await self._do("GETDEL", self._redis.getdel(PREFIX + key))  # type: ignore[return-value]

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self._do("DEL", self._redis.delete(*(PREFIX + k for k in keys))))  # type: ignore[call-overload]

    async def delete_if(self, key: str, value: bytes) -> bool:
        return bool(await self._do("compare-and-delete", self._delete_if(keys=[PREFIX + key], args=[value])))

    async def count(self, key: str, window: float) -> int:
        return int(await self._do("INCR", self._count(keys=[PREFIX + key], args=[max(1, int(window * 1000))])))  # type: ignore[call-overload]

    async def ping(self) -> None:
        await self._do("PING", self._redis.ping())  # type: ignore[arg-type]

    async def publish(self, channel: str, message: bytes) -> None:
        await self._do("PUBLISH", self._redis.publish(self._channels + channel, message))

    @asynccontextmanager
    async def hear(self, channel: str, handler: Handler) -> AsyncIterator[None]:
        """Subscribed before it yields (when Redis answers), so nothing published after start-up is missed.

        A replica that loses Redis keeps serving and listens again once Redis is back; what was
        published meanwhile is lost, as the listen streams' contract allows (no replay).
        """
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        subscribed = False
        try:
            await self._do("SUBSCRIBE", pubsub.subscribe(self._channels + channel))
            subscribed = True
        except StateUnavailable as exc:
            log.warning("Not hearing %s yet: %s", channel, exc)

        async def read() -> None:
            nonlocal subscribed
            while True:
                try:
                    if not subscribed:
                        await self._do("SUBSCRIBE", pubsub.subscribe(self._channels + channel))
                        subscribed = True
                        log.warning("Hearing %s again", channel)
                    message = await self._do("pub/sub read", pubsub.get_message(timeout=RECONNECT_DELAY))
                except StateUnavailable as exc:
                    if subscribed:
                        log.warning("Stopped hearing %s: %s", channel, exc)
                    subscribed = False
                    await pubsub.reset()
                    await anyio.sleep(RECONNECT_DELAY)
                    continue
                if isinstance(message, dict) and message.get("type") == "message":
                    handler(message["data"])

        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(read)
                try:
                    yield
                finally:
                    task_group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await pubsub.aclose()

    async def aclose(self) -> None:
        await self._redis.aclose()


def _display(url: str) -> str:
    """host:port/db of a Redis URL, never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


def open_state(url: str) -> State:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryState()
    if scheme in ("redis", "rediss", "unix"):
        return RedisState(url)
    raise ValueError(f"unsupported state URL scheme {scheme!r}: use memory:// or redis://host:port/db")
