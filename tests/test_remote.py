"""Remote multi-user mode end to end: the SDK's OAuth client against `serve --remote` as a real process.

Real parts only: the suite's OpenID provider (Keycloak-shaped, rotating refresh tokens, 3 s access
tokens), the sandbox validating its JWTs, a real redis-server for the shared state, our server
process, and the SDK's ``OAuthClientProvider`` doing discovery from the 401, registration, PKCE
and refresh. The negative tests drive the same endpoints by hand.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import jwt
import pytest
import redis
from mcp.server.apps import APP_MIME_TYPE
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import METHOD_NOT_FOUND, ElicitResult

from astravue_mcp.auth.store import TokenSet
from astravue_mcp.remote.crypto import KeyRing
from astravue_mcp.remote.grants import RECONNECT, user_key
from astravue_mcp.remote.state import PREFIX
from tests.apps_host import renders_apps
from tests.oidc import CLIENT_SECRET, free_port
from tests.redis_server import RedisServer
from tests.remote_support import (
    EXE,
    KENJI,
    MAYA,
    UPSTREAM_TTL,
    ManualClient,
    OAuthClient,
    Person,
    RemoteServer,
    Upstream,
    bearer_client,
    client_redirect_uri,
    connect,
    mcp_post,
    state_keys,
    structured,
    upstream,
)
from tests.support import leaks, started, stop

OUR_TOKEN_TTL = 4


@dataclass
class Realm:
    up: Upstream
    server: RemoteServer
    keys: str
    redis_url: str

    def forge(self, **claims: object) -> str:
        """A token signed with our real key, with chosen claims (what an attacker cannot make)."""
        now = int(time.time())
        base = {
            "iss": self.server.url,
            "aud": self.server.mcp_url,
            "sub": "someone",
            "client_id": "c",
            "scope": "astravue",
            "fam": "none",
            "iat": now,
            "exp": now + 60,
        }
        key = KeyRing.from_setting(self.keys).derive("access-token")
        return jwt.encode(base | claims, key, algorithm="HS256")


@pytest.fixture(scope="module")
def realm(redis_server: RedisServer) -> Iterator[Realm]:
    port, keys = free_port(), state_keys()
    with upstream([port]) as up:
        env = up.env(
            ASTRAVUE_REMOTE_TOKEN_TTL=str(OUR_TOKEN_TTL),
            ASTRAVUE_STATE_KEYS=keys,
            ASTRAVUE_STATE_URL=redis_server.url,
            ASTRAVUE_CIMD_ALLOW_PRIVATE="1",  # the CIMD tests serve their documents on loopback
        )
        server = RemoteServer(env, port)
        try:
            yield Realm(up, server, keys, redis_server.url)
        finally:
            server.stop()


@pytest.mark.anyio
async def test_two_people_sign_in_with_the_sdk_client_and_each_gets_their_own_data(realm: Realm) -> None:
    maya, kenji = OAuthClient(realm.server.mcp_url, Person(MAYA)), OAuthClient(realm.server.mcp_url, Person(KENJI))
    async with connect(realm.server.mcp_url, maya) as as_maya, connect(realm.server.mcp_url, kenji) as as_kenji:
        mine = await structured(as_maya, "astravue_list_personal_tasks")
        theirs = await structured(as_kenji, "astravue_list_personal_tasks")
        assert mine["items"] and not theirs["items"]  # the sandbox's personal tasks are Maya's
        # "Me" is each person, never the operator nor whoever came first.
        me_maya = (await as_maya.read_resource("astravue://me")).contents[0].text  # type: ignore[union-attr]
        me_kenji = (await as_kenji.read_resource("astravue://me")).contents[0].text  # type: ignore[union-attr]
        assert MAYA in me_maya and KENJI in me_kenji, (me_maya, me_kenji)
        notes_maya = await structured(as_maya, "astravue_list_notifications")
        notes_kenji = await structured(as_kenji, "astravue_list_notifications")
        assert notes_maya["items"] and notes_kenji["items"] and notes_maya != notes_kenji

        # Past both lifetimes: our token is refreshed by the SDK client, Astravue's by the server.
        first = maya.storage.tokens
        assert first is not None
        realm.up.provider.reset_stats()
        await anyio.sleep(max(UPSTREAM_TTL, OUR_TOKEN_TTL) + 0.5)
        assert (await structured(as_maya, "astravue_list_spaces"))["items"]
        renewed = maya.storage.tokens
        assert renewed is not None
        assert renewed.access_token != first.access_token and renewed.refresh_token != first.refresh_token
        assert realm.up.provider.stats()["grants"].get("refresh_token") == 1

    # Maya's Astravue tokens are in Redis, sealed: not readable there, readable with the key ring.
    raw = redis.Redis.from_url(realm.redis_url).get(f"{PREFIX}grant:{user_key(realm.up.provider.issuer + '#' + MAYA)}")
    assert raw is not None
    key = f"grant:{user_key(realm.up.provider.issuer + '#' + MAYA)}"
    upstream_tokens = TokenSet.model_validate_json(KeyRing.from_setting(realm.keys).open(raw, key))
    assert upstream_tokens.access_token.encode() not in raw and upstream_tokens.claims["sub"] == MAYA
    # ... and Astravue's access token is not a key to /mcp.
    refused = mcp_post(realm.server, upstream_tokens.access_token)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    # The suite's secret scan over the server's DEBUG log: our tokens and code, Astravue's tokens, the
    # client secret, the keys, and anything shaped like a JWT.
    found = {
        "client secret": CLIENT_SECRET,
        "state keys": realm.keys,
        "our code": parse_qs(urlsplit(maya.redirected or "").query)["code"][0],
        "our access token": first.access_token,
        "our refresh token": first.refresh_token or "",
        "our renewed refresh token": renewed.refresh_token or "",
        "Astravue access token": upstream_tokens.access_token,
        "Astravue refresh token": upstream_tokens.refresh_token or "",
    }
    log = realm.server.output
    assert "Access token renewed" in log and "DEBUG" in log  # DEBUG really was on
    assert leaks({"server log": log}, found) == []


def test_discovery_starts_from_a_401_naming_the_metadata_and_the_scope(realm: Realm) -> None:
    answer = mcp_post(realm.server, None)
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    metadata_url = f"{realm.server.url}/.well-known/oauth-protected-resource/mcp"
    assert challenge == f'Bearer resource_metadata="{metadata_url}", scope="astravue"'
    for url in (metadata_url, f"{realm.server.url}/.well-known/oauth-protected-resource"):
        prm = httpx2.get(url).json()
        assert prm["resource"] == realm.server.mcp_url and prm["authorization_servers"] == [realm.server.url]
    meta = httpx2.get(f"{realm.server.url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == realm.server.url and meta["authorization_response_iss_parameter_supported"] is True
    assert meta["code_challenge_methods_supported"] == ["S256"] and meta["registration_endpoint"]
    ready = httpx2.get(f"{realm.server.url}/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "state": "redis"}


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "https://other.example/mcp"}, "wrong audience"),
        ({"iss": "https://other.example"}, "wrong issuer"),
        ({"exp": int(time.time()) - 5}, "expired"),
    ],
)
def test_tokens_for_another_resource_issuer_or_time_are_refused(realm: Realm, claims: dict, why: str) -> None:
    client = ManualClient(realm.server)
    family = jwt.decode(client.sign_in(Person(MAYA))["access_token"], options={"verify_signature": False})["fam"]
    good = realm.forge(fam=family, sub=realm.up.provider.issuer + "#" + MAYA)
    assert mcp_post(realm.server, good).status_code == 200  # the forgery itself is well made
    answer = mcp_post(realm.server, realm.forge(fam=family, **claims))
    assert answer.status_code == 401, why
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_a_token_without_the_scope_is_403_insufficient_scope(realm: Realm) -> None:
    client = ManualClient(realm.server)
    family = jwt.decode(client.sign_in(Person(MAYA))["access_token"], options={"verify_signature": False})["fam"]
    answer = mcp_post(realm.server, realm.forge(fam=family, scope="something-else"))
    assert answer.status_code == 403
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert 'scope="astravue"' in answer.headers["www-authenticate"]


def test_pkce_mismatch_and_a_replayed_code_get_nothing(realm: Realm) -> None:
    client = ManualClient(realm.server)
    verifier = secrets.token_urlsafe(48)
    back = client.authorize(Person(MAYA), verifier, state="s-42")
    assert back["state"] == "s-42" and back["iss"] == realm.server.url
    wrong = client.exchange(back["code"], secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The code was spent by the failed attempt: the right verifier is too late now.
    assert client.exchange(back["code"], verifier).json()["error"] == "invalid_grant"

    back = client.authorize(Person(MAYA), verifier)
    assert client.exchange(back["code"], verifier).status_code == 200
    replay = client.exchange(back["code"], verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_a_reused_rotated_refresh_token_revokes_the_whole_family(realm: Realm) -> None:
    client = ManualClient(realm.server)
    first = client.sign_in(Person(MAYA))
    second = client.refresh(first["refresh_token"])
    assert second.status_code == 200
    assert mcp_post(realm.server, second.json()["access_token"]).status_code == 200
    reused = client.refresh(first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # Whoever holds the newer tokens (maybe the thief) lost them too.
    assert client.refresh(second.json()["refresh_token"]).json()["error"] == "invalid_grant"
    assert mcp_post(realm.server, second.json()["access_token"]).status_code == 401


@pytest.mark.anyio
async def test_a_person_whose_astravue_login_is_gone_is_told_to_reconnect(realm: Realm) -> None:
    tokens = ManualClient(realm.server).sign_in(Person(KENJI))
    redis.Redis.from_url(realm.redis_url).delete(f"{PREFIX}grant:{user_key(realm.up.provider.issuer + '#' + KENJI)}")
    async with bearer_client(realm.server.mcp_url, tokens["access_token"]) as client:
        result = await client.call_tool("astravue_list_spaces", {})
    assert result.is_error and result.content[0].text == RECONNECT  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_interactive_views_work_for_each_person(realm: Realm) -> None:
    maya, kenji = (ManualClient(realm.server).sign_in(Person(p))["access_token"] for p in (MAYA, KENJI))
    url, apps = realm.server.mcp_url, renders_apps()
    async with bearer_client(url, maya, extensions=[apps]) as as_maya, bearer_client(url, kenji) as as_kenji:
        tool = next(t for t in (await as_maya.list_tools()).tools if t.name == "astravue_preview_my_tasks")
        page = (await as_maya.read_resource(tool.meta["ui"]["resourceUri"])).contents[0]  # type: ignore[index]
        assert page.mime_type == APP_MIME_TYPE and "ui/initialize" in page.text  # type: ignore[union-attr]
        shown = await as_maya.call_tool("astravue_preview_my_tasks", {})
        told = await as_kenji.call_tool("astravue_preview_my_tasks", {})
        assert not shown.is_error and not told.is_error, (shown.content, told.content)
        # Each person's own tasks; the client that renders the view gets a brief text, the other every task.
        assert MAYA in shown.structured_content["who"] and KENJI in told.structured_content["who"]
        assert "- id=" not in shown.content[0].text and "- id=" in told.content[0].text  # type: ignore[union-attr]
        # The page's own refresh (an app-only tool) answers as the person too.
        again = await structured(as_maya, "astravue_refresh_view", view="my-tasks", arguments={})
        assert again["who"] == shown.structured_content["who"] and again["total"] == shown.structured_content["total"]


def test_revocation_ends_our_tokens_and_the_upstream_grant(realm: Realm) -> None:
    client = ManualClient(realm.server)
    tokens = client.sign_in(Person(KENJI))
    assert mcp_post(realm.server, tokens["access_token"]).status_code == 200
    realm.up.provider.reset_stats()
    assert client.revoke(tokens["refresh_token"]).status_code == 200
    assert mcp_post(realm.server, tokens["access_token"]).status_code == 401
    assert client.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
    store = redis.Redis.from_url(realm.redis_url)
    assert store.get(f"{PREFIX}grant:{user_key(realm.up.provider.issuer + '#' + KENJI)}") is None
    assert realm.up.provider.stats()["revocations"] == 1


@pytest.mark.parametrize(
    "uri", ["http://evil.example/cb", "javascript:alert(1)", "https://ok.example/cb#frag", "myapp:/cb"]
)
def test_registration_refuses_redirect_uris_outside_the_policy(realm: Realm, uri: str) -> None:
    answer = httpx2.post(f"{realm.server.url}/register", json={"redirect_uris": [uri], "client_name": "x"})
    assert answer.status_code == 400 and answer.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")


def test_registration_accepts_https_loopback_and_reverse_domain_schemes(realm: Realm) -> None:
    uris = ["https://claude.ai/api/mcp/auth_callback", client_redirect_uri(), "com.example.app:/oauth"]
    answer = httpx2.post(f"{realm.server.url}/register", json={"redirect_uris": uris, "client_name": "ok"})
    assert answer.status_code == 201, answer.text


def test_refused_consent_goes_back_to_the_client_as_access_denied(realm: Realm) -> None:
    client = ManualClient(realm.server)
    back = client.authorize(Person(MAYA, allow=False), secrets.token_urlsafe(48), state="s-9")
    assert back == {"error": "access_denied", "state": "s-9", "iss": realm.server.url}


def test_consent_is_bound_to_the_browser_and_its_csrf_token(realm: Realm) -> None:
    client = ManualClient(realm.server)
    person = Person(MAYA)
    query = client.query(challenge="x" * 43)
    to_consent = person.http.get(f"{realm.server.url}/authorize", params=query)
    page = person.http.get(to_consent.headers["location"])
    assert "Manual Client" in page.text and "create and change tasks" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    txn = page.url.params["txn"]
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    # Another browser (no cookie) with the right CSRF token, and this browser with a wrong one: refused.
    other = httpx2.post(f"{realm.server.url}/consent", data={"txn": txn, "csrf": csrf, "decision": "allow"})
    assert other.status_code == 403
    forged = person.http.post(f"{realm.server.url}/consent", data={"txn": txn, "csrf": "x", "decision": "allow"})
    assert forged.status_code == 403
    allowed = person.http.post(f"{realm.server.url}/consent", data={"txn": txn, "csrf": csrf, "decision": "allow"})
    assert allowed.status_code == 302 and allowed.headers["location"].startswith(realm.up.provider.issuer)


def test_an_unknown_resource_indicator_is_refused(realm: Realm) -> None:
    client = ManualClient(realm.server)
    query = client.query(challenge="x" * 43, resource="https://other.example/mcp")
    answer = httpx2.get(f"{realm.server.url}/authorize", params=query)
    assert answer.status_code == 302 and "error=invalid_target" in answer.headers["location"]


def test_serve_remote_refuses_unsafe_settings_naming_every_problem() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    env |= {"ASTRAVUE_STATE_URL": "redis://127.0.0.1:1/0", "ASTRAVUE_CLIENT_SECRET": "s3cret-Value"}
    done = subprocess.run(
        [*EXE, "serve", "--remote", "--public-url", "http://mcp.example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "astravue-mcp: remote mode cannot start:" and len(lines) == 5, done.stderr
    assert "must use https" in done.stderr and "ASTRAVUE_STATE_KEYS is not set" in done.stderr
    assert "ASTRAVUE_CLIENT_ID is not set" in done.stderr and "s3cret-Value" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.anyio
async def test_readiness_fails_while_the_shared_state_is_unreachable() -> None:
    from astravue_mcp.config import load_settings
    from astravue_mcp.remote.app import create_remote_app

    settings = load_settings(
        {
            "ASTRAVUE_PUBLIC_URL": "https://mcp.example.com",
            "ASTRAVUE_STATE_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "ASTRAVUE_STATE_KEYS": state_keys(),
            "ASTRAVUE_CLIENT_ID": "c",
            "ASTRAVUE_CLIENT_SECRET": "s3cret-x",
            "ASTRAVUE_ORG_ID": "1",
        }
    )
    app = create_remote_app(settings)
    # A token of ours that is valid in every way: checking whether it was revoked needs the state.
    ours = jwt.encode(
        {
            "iss": "https://mcp.example.com",
            "aud": "https://mcp.example.com/mcp",
            "sub": "u",
            "fam": "f",
            "exp": int(time.time()) + 60,
        },
        KeyRing.from_setting(settings.state_keys.get_secret_value()).derive("access-token"),
        algorithm="HS256",
    )
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://mcp.example.com") as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        call = await http.post("/mcp", json={}, headers={"Authorization": f"Bearer {ours}"})
    assert ready.status_code == 503 and "did not answer" in ready.json()["state"]
    # Before: a 500 and a traceback in the log. A client can retry a 503 that says why.
    assert call.status_code == 503 and call.headers["retry-after"] == "5"
    assert "did not answer" in call.json()["error_description"] and "Traceback" not in call.text


def test_the_asgi_remote_app_runs_under_uvicorn_and_asks_for_oauth() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")} | {
        "ASTRAVUE_PUBLIC_URL": url,
        "ASTRAVUE_CLIENT_ID": "c",
        "ASTRAVUE_CLIENT_SECRET": "s3cret-x",
        "ASTRAVUE_ORG_ID": "1",
    }
    uvicorn = [sys.executable, "-m", "uvicorn", "astravue_mcp.asgi:remote_app", "--port", str(port)]
    proc = subprocess.Popen(uvicorn, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert started(proc, f"{url}/healthz")
        answer = mcp_post(f"{url}/mcp", None)
        assert answer.status_code == 401
        assert (
            f'resource_metadata="{url}/.well-known/oauth-protected-resource/mcp"' in answer.headers["www-authenticate"]
        )
        assert httpx2.get(f"{url}/readyz").json() == {"status": "ready", "state": "memory"}
    finally:
        stop(proc)


@pytest.mark.anyio
async def test_over_stateless_http_a_dated_client_is_not_offered_subscriptions_it_could_not_get(realm: Realm) -> None:
    """Every request is a connection of its own: a resources/subscribe would be forgotten with it."""
    token = ManualClient(realm.server).sign_in(Person(KENJI))["access_token"]
    async with bearer_client(realm.server.mcp_url, token, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        caps = client.server_capabilities
        assert caps is not None and caps.resources is not None and caps.logging is not None
        assert not caps.resources.subscribe
        with pytest.raises(MCPError) as refused, pytest.warns(MCPDeprecationWarning):  # the dated method, on purpose
            await client.subscribe_resource("astravue://spaces")
        assert refused.value.error.code == METHOD_NOT_FOUND


@pytest.mark.anyio
async def test_over_stateless_http_a_delete_that_cannot_be_confirmed_is_not_done(realm: Realm) -> None:
    """A dated client that can answer questions, on a connection that cannot carry one: never "yes" by default."""
    token = ManualClient(realm.server).sign_in(Person(KENJI))["access_token"]

    async def person(context: object, params: object) -> ElicitResult:
        raise AssertionError(f"the server asked mid-call over stateless HTTP: {params}")

    async with bearer_client(realm.server.mcp_url, token, mode="legacy", elicitation_callback=person) as client:
        found = await structured(client, "astravue_find_tasks", limit=1)
        task = {k: found["items"][0][k] for k in ("id", "space_id", "project_id")}
        ids = {"task_id": task["id"], "space_id": task["space_id"], "project_id": task["project_id"]}
        refused = await client.call_tool("astravue_delete_task", ids)
        assert refused.is_error and "cannot ask mid-call" in refused.content[0].text  # type: ignore[union-attr]
        assert not (await client.call_tool("astravue_get_task", ids)).is_error
