"""The shared-state interface, the same tests for ``memory://`` and a real ``redis-server``; the key ring."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp.server.subscriptions import ResourceUpdated, ServerEvent, ToolsListChanged

from astravue_mcp.auth import renew
from astravue_mcp.auth.store import TokenSet
from astravue_mcp.config import Settings, SettingsError, load_settings
from astravue_mcp.remote.checks import remote_problems, require_remote
from astravue_mcp.remote.crypto import KeyRing, KeyRingError, SealedValueError
from astravue_mcp.remote.events import CHANNEL, PersonalBus
from astravue_mcp.remote.grants import GrantStore, PersonTokens, SharedTransport
from astravue_mcp.remote.state import MAX_CONNECTIONS, LockTimeout, RedisState, State, StateUnavailable, open_state
from tests.oidc import Realm, free_port
from tests.redis_server import RedisServer
from tests.test_auth_flow import log_in, stored

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[State]:
    url = "memory://" if request.param == "memory" else request.getfixturevalue("redis_server").url
    store = open_state(url)
    try:
        yield store
    finally:
        await store.aclose()


def key() -> str:
    return f"test:{secrets.token_hex(6)}"  # tests share one redis-server: never the same key twice


async def test_values_expire_after_their_ttl(state: State) -> None:
    k = key()
    await state.set(k, b"v", ttl=0.2)
    assert await state.get(k) == b"v"
    await anyio.sleep(0.3)
    assert await state.get(k) is None
    await state.set(k, b"kept")
    assert await state.get(k) == b"kept"
    assert await state.delete(k, key()) == 1
    assert await state.get(k) is None


async def test_add_creates_only_when_absent(state: State) -> None:
    k = key()
    assert await state.add(k, b"first", ttl=5)
    assert not await state.add(k, b"second", ttl=5)
    assert await state.get(k) == b"first"


async def test_a_one_time_value_is_taken_exactly_once_under_concurrency(state: State) -> None:
    k = key()
    await state.set(k, b"code", ttl=5)
    got: list[bytes | None] = []

    async def take() -> None:
        got.append(await state.take(k))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(take)
    assert got.count(b"code") == 1 and got.count(None) == 19


async def test_delete_if_releases_only_the_holders_value(state: State) -> None:
    k = key()
    await state.set(k, b"mine")
    assert not await state.delete_if(k, b"theirs")
    assert await state.delete_if(k, b"mine")
    assert await state.get(k) is None


async def test_a_counter_lives_one_window_from_its_first_increment(state: State) -> None:
    k = key()
    assert [await state.count(k, 0.3) for _ in range(5)] == [1, 2, 3, 4, 5]
    await anyio.sleep(0.4)
    assert await state.count(k, 0.3) == 1


async def test_a_lock_admits_one_holder_at_a_time_and_expires_with_a_dead_holder(state: State) -> None:
    name, inside, most = key(), [0], [0]

    async def hold() -> None:
        async with state.lock(name, ttl=5, wait=10):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            await anyio.sleep(0.01)
            inside[0] -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(hold)
    assert most == [1]
    # A holder that died without releasing blocks others only until the lock's ttl.
    await state.add(f"lock:{name}", b"crashed", ttl=0.3)
    with pytest.raises(LockTimeout, match="stayed busy"):
        async with state.lock(name, wait=0.1):
            pass
    async with state.lock(name, wait=2):
        pass


async def test_resource_events_reach_only_their_persons_streams_on_every_replica(state: State) -> None:
    # Redis: a second connection stands for the other replica; memory: the one process is every replica.
    other = open_state(state.url) if isinstance(state, RedisState) else state
    acting: list[str | None] = [None]
    here, there = PersonalBus(state, lambda: acting[0]), PersonalBus(other, lambda: acting[0])
    heard: list[tuple[str, str]] = []

    def stream(bus: PersonalBus, name: str, person: str) -> None:
        acting[0] = person
        bus.subscribe(lambda event: heard.append((f"{person} {name}", getattr(event, "uri", repr(event)))))

    async def until(count: int) -> None:
        with anyio.fail_after(5):
            while len(heard) < count:
                await anyio.sleep(0.01)

    try:
        async with state.hear(CHANNEL, here.deliver), other.hear(CHANNEL, there.deliver):
            for person in ("maya@1", "kenji@1", "maya@7"):
                stream(there, "there", person)
            stream(here, "here", "maya@1")
            events: list[tuple[PersonalBus, str | None, ServerEvent]] = [
                (here, "maya@1", ResourceUpdated(uri="astravue://tasks/2")),
                (there, None, ResourceUpdated(uri="astravue://tasks/2")),  # no signed-in person: nobody's
                (there, "maya@7", ResourceUpdated(uri="astravue://tasks/3")),
                (there, "maya@7", ToolsListChanged()),  # never published by this server; not carried
            ]
            for bus, acting[0], event in events:
                await bus.publish(event)
            await until(3)
            acting[0] = "maya@1"  # a last event to both replicas: whatever else was coming has come
            await here.publish(ResourceUpdated(uri="astravue://spaces"))
            await until(5)
    finally:
        if other is not state:
            await other.aclose()
    assert sorted(heard) == [
        ("maya@1 here", "astravue://spaces"),
        ("maya@1 here", "astravue://tasks/2"),
        ("maya@1 there", "astravue://spaces"),
        ("maya@1 there", "astravue://tasks/2"),
        ("maya@7 there", "astravue://tasks/3"),
    ]


async def test_two_connections_to_one_redis_share_locks_and_counters(redis_server: RedisServer) -> None:
    one, two = RedisState(redis_server.url), RedisState(redis_server.url)
    try:
        name, k, inside, most = key(), key(), [0], [0]

        async def hold(store: State) -> None:
            async with store.lock(name, ttl=5, wait=10):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                await anyio.sleep(0.01)
                inside[0] -= 1
            await store.count(k, 60)

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(hold, one if i % 2 else two)
        assert most == [1]
        assert await one.count(k, 60) == 11
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_burst_beyond_the_connection_pool_waits_its_turn(redis_server: RedisServer) -> None:
    """Found by the 100-person bench: the 101st concurrent request failed with "Too many connections"."""
    store = RedisState(redis_server.url)
    k = key()
    got: list[bytes | None] = []

    async def read() -> None:
        got.append(await store.get(k))

    try:
        await store.set(k, b"v")
        async with anyio.create_task_group() as tg:
            for _ in range(3 * MAX_CONNECTIONS):
                tg.start_soon(read)
    finally:
        await store.aclose()
    assert got == [b"v"] * (3 * MAX_CONNECTIONS)


async def test_an_unreachable_redis_is_reported_with_its_address_and_never_its_password() -> None:
    port = free_port()  # nothing listens there
    store = RedisState(f"redis://:hunter2-pw@127.0.0.1:{port}/3", timeout=1)
    try:
        with pytest.raises(StateUnavailable) as caught:
            await store.ping()
    finally:
        await store.aclose()
    assert f"127.0.0.1:{port}/3" in str(caught.value) and "hunter2" not in str(caught.value)


def test_unknown_state_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="memory:// or redis://"):
        open_state("postgres://db")


# ---------------------------------------------------------------- key ring
def test_sealed_values_open_only_for_their_record_and_survive_rotation() -> None:
    old = secrets.token_urlsafe(32)
    ring = KeyRing.from_setting(old)
    sealed = ring.seal(b"upstream refresh token", "user:alice")
    assert b"upstream" not in sealed
    assert ring.open(sealed, "user:alice") == b"upstream refresh token"
    with pytest.raises(SealedValueError, match="not this record"):
        ring.open(sealed, "user:bob")

    rotated = KeyRing.from_setting(f"{secrets.token_urlsafe(32)}, {old}")  # newest first
    assert rotated.open(sealed, "user:alice") == b"upstream refresh token"
    assert rotated.needs_reseal(sealed)
    resealed = rotated.seal(b"upstream refresh token", "user:alice")
    assert not rotated.needs_reseal(resealed)

    dropped = KeyRing.from_setting(secrets.token_urlsafe(32))
    with pytest.raises(SealedValueError, match="no longer in ASTRAVUE_STATE_KEYS"):
        dropped.open(sealed, "user:alice")
    with pytest.raises(SealedValueError, match="tampered"):
        ring.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), "user:alice")


def test_derived_keys_agree_across_replicas_with_the_same_ring() -> None:
    setting = f"{secrets.token_urlsafe(32)},{secrets.token_urlsafe(32)}"
    assert KeyRing.from_setting(setting).derive("request-state") == KeyRing.from_setting(setting).derive(
        "request-state"
    )
    assert KeyRing.from_setting(setting).derive("a") != KeyRing.from_setting(setting).derive("b")


@pytest.mark.parametrize("bad", ["short", "x" * 60, "", "not base64 !!"])
def test_a_malformed_key_is_named_by_position_and_never_echoed(bad: str) -> None:
    good = secrets.token_urlsafe(32)
    with pytest.raises(KeyRingError) as caught:
        KeyRing.from_setting(f"{good},{bad}" if bad else ",")
    message = str(caught.value)
    assert ("key 2" in message or "no key" in message) and "token_urlsafe(32)" in message
    assert good not in message and (not bad or bad not in message)


# ---------------------------------------------------------------- remote settings
REMOTE = {"ASTRAVUE_CLIENT_ID": "mcp", "ASTRAVUE_CLIENT_SECRET": "s3cret-value", "ASTRAVUE_ORG_ID": "7"}


def problems(**env: str) -> list[str]:
    return remote_problems(load_settings({**REMOTE, **env}))


def test_remote_settings_that_are_safe_pass() -> None:
    assert problems(ASTRAVUE_PUBLIC_URL="https://mcp.example.com") == []
    assert problems(ASTRAVUE_PUBLIC_URL="http://127.0.0.1:8123") == []
    key1 = secrets.token_urlsafe(32)
    assert problems(ASTRAVUE_PUBLIC_URL="https://mcp.example.com", ASTRAVUE_STATE_URL="redis://r:6379/0",
                    ASTRAVUE_STATE_KEYS=key1) == []  # fmt: skip


def test_every_remote_setting_problem_is_reported_at_once_one_line_each() -> None:
    key1 = secrets.token_urlsafe(32)
    settings = load_settings(
        {
            "ASTRAVUE_PUBLIC_URL": "http://mcp.example.com",
            "ASTRAVUE_STATE_URL": "redis://:pw-Hidden9@r:6379/0",
            "ASTRAVUE_STATE_KEYS": f"{key1},tooshort",
        }
    )
    with pytest.raises(SettingsError) as caught:
        require_remote(settings)
    lines = str(caught.value).splitlines()
    assert lines[0] == "remote mode cannot start:"
    text = str(caught.value)
    expected = ("must use https", "ASTRAVUE_STATE_KEYS: key 2", "ASTRAVUE_CLIENT_ID", "SECRET is not", "ORG_ID is not")
    for words in expected:
        assert sum(words in line for line in lines) == 1, words
    assert len(lines) == 6 and key1 not in text and "pw-Hidden9" not in text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "ASTRAVUE_PUBLIC_URL (or --public-url) is not set"),
        ({"ASTRAVUE_PUBLIC_URL": "ftp://x"}, "is not an http(s) URL"),
        ({"ASTRAVUE_PUBLIC_URL": "https://x.example/app"}, "without path"),
        ({"ASTRAVUE_PUBLIC_URL": "https://x.example", "ASTRAVUE_STATE_URL": "redis://r/0"}, "STATE_KEYS is not set"),
        ({"ASTRAVUE_PUBLIC_URL": "https://x.example", "ASTRAVUE_STATE_URL": "mysql://r"}, "must be memory://"),
        ({"ASTRAVUE_PUBLIC_URL": "https://x.example", "ASTRAVUE_ACCESS_TOKEN": "tok-123456"}, "own account"),
    ],
)
def test_each_unsafe_remote_setting_is_named(env: dict[str, str], expected: str) -> None:
    found = problems(**env)
    assert len(found) == 1 and expected in found[0], found


def test_request_state_sealed_on_one_replica_opens_on_another_and_survives_rotation() -> None:
    from astravue_mcp.remote.app import request_state

    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    sealed = request_state(KeyRing.from_setting(old)).codec.seal(b"round 1")
    assert request_state(KeyRing.from_setting(old)).codec.unseal(sealed) == b"round 1"
    assert request_state(KeyRing.from_setting(f"{new},{old}")).codec.unseal(sealed) == b"round 1"


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_renewal_the_provider_answered_is_saved_even_when_the_deadline_passes_first(
    backend: str, oidc: Realm, settings: Settings, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Found in review: remote mode refreshes in process, and the refresh's deadline also covered the save.

    The provider answers in time and rotates the refresh token, but no worker thread is free until
    after the deadline (a busy thread pool). The save must still happen, or the store keeps the spent
    refresh token, the next refresh is ``invalid_grant`` and the person has to sign in again.
    """
    assert log_in(settings, monkeypatch) == 0
    first = stored(settings)
    url = "memory://" if backend == "memory" else request.getfixturevalue("redis_server").url
    monkeypatch.setattr(renew, "RENEW_DEADLINE", 1.0)
    answer = renew.post_refresh

    async def main() -> tuple[TokenSet | None, TokenSet]:
        state = open_state(url)
        grant = GrantStore(state, KeyRing.ephemeral(), f"{secrets.token_hex(6)}@test")
        limiter = anyio.to_thread.current_default_thread_limiter()
        holders = [object() for _ in range(int(limiter.total_tokens))]

        async def free_the_threads() -> None:
            await anyio.sleep(renew.RENEW_DEADLINE + 0.5)
            for holder in holders:
                limiter.release_on_behalf_of(holder)

        async def answered_then_threads_busy(*args: Any) -> dict[str, Any]:
            payload = await answer(*args)  # the provider has rotated the refresh token now
            for holder in holders:
                limiter.acquire_on_behalf_of_nowait(holder)
            tg.start_soon(free_the_threads)
            return payload

        try:
            await grant.write(first)
            tokens = PersonTokens(settings, grant, SharedTransport())
            monkeypatch.setattr(renew, "post_refresh", answered_then_threads_busy)
            async with anyio.create_task_group() as tg:
                renewed = await tokens.refresh_now(first.access_token)
            monkeypatch.setattr(renew, "post_refresh", answer)
            saved = await grant.read()
            # The next refresh (another replica's, say) starts from the saved tokens: no invalid_grant.
            again = await PersonTokens(settings, grant, SharedTransport()).refresh_now(renewed.access_token)
            return saved, again
        finally:
            await state.aclose()

    saved, again = anyio.run(main)
    assert saved is not None and saved.refresh_token != first.refresh_token
    assert again.refresh_token != saved.refresh_token
    assert oidc.provider.stats()["errors"] == {}
