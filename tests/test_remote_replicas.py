"""Two replicas of `serve --remote` (two processes, two loopback ports) sharing one real redis-server.

Either replica answers any request: a sign-in started on one is finished on the other, a question
asked on one (2026-07-28: the organisation, with a sealed requestState) is answered on the other,
calls alternate, 50 concurrent calls at the moment Astravue's token expires cause exactly one
upstream refresh (one replica, one task), every API request counts against one per-person budget, and
a change made through one replica reaches the person's listen stream held open by the other (and no one else's).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import httpx2
import pytest
import redis
from mcp.client import Client
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types import CallToolResult, ElicitRequestFormParams, ElicitResult, InputRequiredResult

from astravue_mcp.api.limits import BudgetSpent, CallScope
from astravue_mcp.remote.grants import SharedBudget, user_key
from astravue_mcp.remote.state import PREFIX, RedisState
from tests.oidc import free_port
from tests.redis_server import RedisServer
from tests.remote_support import (
    KENJI,
    MAYA,
    SOFIA,
    ManualClient,
    Person,
    RemoteServer,
    Upstream,
    bearer_client,
    state_keys,
    upstream,
)

pytestmark = pytest.mark.replicas
LABS = 7
"""A second organisation the sandbox opens to Maya and Sofia (everyone opens the default, 1)."""
UPSTREAM_TTL = 8
"""Long enough that the 50 calls finish within one token lifetime even on a loaded machine (a second
expiry during the burst would rightly cause a second refresh)."""


@dataclass
class Pair:
    up: Upstream
    one: RemoteServer
    two: RemoteServer
    redis_url: str


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer) -> Iterator[Pair]:
    ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{ports[0]}"  # what the load balancer would be; both replicas say it
    with upstream(ports, access_ttl=UPSTREAM_TTL, orgs={LABS: [MAYA, SOFIA]}) as up:
        env = up.env(
            ASTRAVUE_STATE_KEYS=state_keys(),
            ASTRAVUE_STATE_URL=redis_server.url.replace("/0", "/1"),
            ASTRAVUE_ORGS=f"{LABS}=Northwind Labs",
        )
        one = RemoteServer(env, ports[0], public)
        try:
            two = RemoteServer(env, ports[1], public)
            try:
                yield Pair(up, one, two, redis_server.url.replace("/0", "/1"))
            finally:
                two.stop()
        finally:
            one.stop()


@pytest.mark.anyio
async def test_sign_in_across_replicas_then_one_upstream_refresh_for_50_concurrent_calls(pair: Pair) -> None:
    # Authorize on replica two (its consent and callback are served wherever the public URL points),
    # exchange the code on replica two, refresh on replica one.
    client = ManualClient(pair.two)
    verifier = secrets.token_urlsafe(48)
    back = client.authorize(Person(MAYA), verifier)
    tokens = client.exchange(back["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    renewed = client.on(pair.one).refresh(tokens.json()["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    token = renewed.json()["access_token"]

    async with (
        bearer_client(pair.one.mcp_url, token, elicitation_callback=unexpected) as a,
        bearer_client(pair.two.mcp_url, token, elicitation_callback=unexpected) as b,
    ):
        # Maya opens two organisations: her first call, on replica one, asks which (2026-07-28: the question
        # and a sealed requestState); she answers on replica two, which opens what replica one sealed.
        asked = await a.session.call_tool("astravue_list_spaces", {}, allow_input_required=True)
        assert isinstance(asked, InputRequiredResult) and asked.input_requests is not None, asked
        question = asked.input_requests["organisation"].params
        assert isinstance(question, ElicitRequestFormParams)
        options = question.requested_schema["properties"]["organisation"]["oneOf"]
        assert options == [{"const": "1", "title": "1"}, {"const": "7", "title": "Northwind Labs (7)"}]
        before = pair.up.org_requests().get(str(LABS), 0)
        answered = await b.session.call_tool(
            "astravue_list_spaces",
            {},
            input_responses={"organisation": ElicitResult(action="accept", content={"organisation": str(LABS)})},
            request_state=asked.request_state,
            allow_input_required=True,
        )
        assert isinstance(answered, CallToolResult) and not answered.is_error, answered
        # Settled for every replica: no more questions, and her calls go to her organisation.
        for replica in (a, b, a, b):  # alternating
            result = await replica.call_tool("astravue_list_spaces", {})
            assert not result.is_error, result.content
        assert pair.up.org_requests()[str(LABS)] >= before + 5

        # Let Astravue's access token expire, then 50 calls at once, half on each replica.
        pair.up.provider.reset_stats()
        await anyio.sleep(UPSTREAM_TTL + 0.2)
        failures: list[str] = []

        async def call(replica: Client) -> None:
            result = await replica.call_tool("astravue_list_personal_tasks", {})
            if result.is_error:
                failures.append(str(result.content))

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(call, a if i % 2 else b)
        assert failures == []
        assert pair.up.provider.stats()["grants"].get("refresh_token") == 1
        assert pair.up.provider.stats()["errors"] == {}

    # Every API request both replicas made for Maya counted against one budget in Redis.
    store = redis.Redis.from_url(pair.redis_url)
    counted = sum(
        int(store.get(k) or 0) for k in store.keys(f"{PREFIX}rate:{user_key(pair.up.provider.issuer + '#' + MAYA)}:*")
    )
    assert counted >= 54

    # A new sign-in chooses afresh (how a person changes organisation: reconnect), seen by every replica.
    again = ManualClient(pair.one).sign_in(Person(MAYA))["access_token"]
    async with bearer_client(pair.two.mcp_url, again, elicitation_callback=unexpected) as client:
        asked = await client.session.call_tool("astravue_list_spaces", {}, allow_input_required=True)
    assert isinstance(asked, InputRequiredResult), asked


async def unexpected(context: object, params: object) -> ElicitResult:
    raise AssertionError(f"the server asked mid-call: {params}")


@pytest.mark.anyio
async def test_one_organisation_is_not_asked_a_client_that_cannot_ask_gets_the_default_as_does_no(pair: Pair) -> None:
    store = redis.Redis.from_url(pair.redis_url)

    def chosen(person: str) -> bytes | None:
        return store.get(f"{PREFIX}org:{user_key(pair.up.provider.issuer + '#' + person)}")

    # Kenji opens only the default organisation: it is his without a question, on any replica.
    kenji = ManualClient(pair.one).sign_in(Person(KENJI))["access_token"]
    async with bearer_client(pair.two.mcp_url, kenji, elicitation_callback=unexpected) as client:
        result = await client.session.call_tool("astravue_list_spaces", {}, allow_input_required=True)
    assert isinstance(result, CallToolResult) and not result.is_error, result
    assert chosen(KENJI) == b"1"
    # Sofia opens two, but over stateless HTTP a 2025 client has no way to answer mid-call: she works in
    # the default until a client that can ask does.
    sofia = ManualClient(pair.two).sign_in(Person(SOFIA))["access_token"]
    async with bearer_client(pair.one.mcp_url, sofia, mode="legacy", elicitation_callback=unexpected) as client:
        assert client.protocol_version == "2025-11-25"
        assert not (await client.call_tool("astravue_list_spaces", {})).is_error
        # Which organisations she opens was checked once: a further call makes just its own request.
        before = pair.up.org_requests()
        assert not (await client.call_tool("astravue_list_spaces", {})).is_error
        after = pair.up.org_requests()
    assert chosen(SOFIA) is None
    assert (after["1"] - before["1"], after[str(LABS)] - before[str(LABS)]) == (1, 0)
    # The first client that can ask does; declining settles her in the default.
    async with bearer_client(pair.two.mcp_url, sofia, elicitation_callback=unexpected) as client:
        asked = await client.session.call_tool("astravue_list_spaces", {}, allow_input_required=True)
        assert isinstance(asked, InputRequiredResult) and asked.input_requests is not None, asked
        declined = await client.session.call_tool(
            "astravue_list_spaces",
            {},
            input_responses={"organisation": ElicitResult(action="decline")},
            request_state=asked.request_state,
            allow_input_required=True,
        )
    assert isinstance(declined, CallToolResult) and not declined.is_error, declined
    assert chosen(SOFIA) == b"1"


@pytest.mark.anyio
async def test_a_change_reaches_its_persons_listen_stream_on_the_other_replica_and_no_one_elses(pair: Pair) -> None:
    kenji = ManualClient(pair.one).sign_in(Person(KENJI))["access_token"]  # opens only organisation 1
    maya = ManualClient(pair.two).sign_in(Person(MAYA))["access_token"]  # works in Northwind Labs (7)
    task_2 = {"task_id": 2, "space_id": 1, "project_id": 1}
    async with (
        bearer_client(pair.two.mcp_url, kenji, elicitation_callback=unexpected) as listening,
        bearer_client(pair.one.mcp_url, kenji, elicitation_callback=unexpected) as kenji_writes,
        bearer_client(pair.one.mcp_url, maya, elicitation_callback=unexpected) as maya_writes,
    ):
        # Maya's first call asks for her organisation; the answer makes the change, in hers.
        args = task_2 | {"completion": 40}
        asked = await maya_writes.session.call_tool("astravue_update_task", args, allow_input_required=True)
        assert isinstance(asked, InputRequiredResult), asked
        choice = ElicitResult(action="accept", content={"organisation": str(LABS)})
        async with listening.listen(resource_subscriptions=["astravue://tasks/2", "astravue://spaces"]) as stream:
            events = aiter(stream)

            async def next_uri() -> str:
                with anyio.fail_after(10):
                    event = await anext(events)
                assert isinstance(event, ResourceUpdated), event
                return event.uri

            assert not (await kenji_writes.call_tool("astravue_update_task", task_2 | {"completion": 60})).is_error
            assert await next_uri() == "astravue://tasks/2"
            # Read before Maya's change: the client folds an unread repeat of an event into the first.
            labs = pair.up.org_requests().get(str(LABS), 0)
            done = await maya_writes.session.call_tool(
                "astravue_update_task",
                args,
                input_responses={"organisation": choice},
                request_state=asked.request_state,
                allow_input_required=True,
            )
            assert isinstance(done, CallToolResult) and not done.is_error, done
            assert pair.up.org_requests()[str(LABS)] > labs
            # Maya's astravue://tasks/2 (another organisation's, through the same replica) is not Kenji's:
            # his next event is his own next change, which went through Redis after hers.
            assert not (await kenji_writes.call_tool("astravue_create_space", {"name": "Field notes"})).is_error
            assert await next_uri() == "astravue://spaces"


def test_both_replicas_are_ready_with_redis(pair: Pair) -> None:
    for replica in (pair.one, pair.two):
        answer = httpx2.get(f"{replica.url}/readyz")
        assert answer.status_code == 200 and answer.json()["state"] == "redis"


@pytest.mark.anyio
async def test_the_rate_budget_is_one_budget_across_replicas(redis_server: RedisServer) -> None:
    one, two = RedisState(redis_server.url), RedisState(redis_server.url)
    user = f"budget-{secrets.token_hex(4)}"
    try:
        budgets = [SharedBudget(one, user, per_minute=4, window=1.0), SharedBudget(two, user, per_minute=4, window=1.0)]
        # Align to the start of a window so the five acquisitions below cannot straddle two.
        await anyio.sleep(1.0 - time.time() % 1.0 + 0.01)
        start = time.monotonic()
        for i in range(4):
            await budgets[i % 2].acquire()
        assert time.monotonic() - start < 0.5  # four fit in the window, whichever replica asks
        await budgets[0].acquire()  # the fifth waits for the next window, on either replica
        assert time.monotonic() - start >= 0.9
        # A call that cannot wait that long is told at once when to retry, never left hanging.
        for _ in range(3):
            await budgets[1].acquire()
        with pytest.raises(BudgetSpent, match="ASTRAVUE_RATE_LIMIT") as spent:
            await budgets[0].acquire(CallScope(limit=0.01))
        assert spent.value.retry_after == 1
    finally:
        await one.aclose()
        await two.aclose()
