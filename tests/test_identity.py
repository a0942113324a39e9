"""Who "me" is: identity claims of the login, the sandbox's own identity, the `astravue://me` resource."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mcp.client import Client

from astravue_mcp.auth.oidc import unverified_claims
from astravue_mcp.auth.store import TokenSet, open_store
from astravue_mcp.config import SANDBOX_IDENTITY, SANDBOX_TOKEN, load_settings
from astravue_mcp.identity import Identity, identity_for
from astravue_mcp.sandbox.seed import seed_data

pytestmark = pytest.mark.anyio


def test_claims_make_an_identity_and_a_label() -> None:
    full = Identity.from_claims(
        {"sub": "u-1", "name": "Sofia Rossi", "preferred_username": "sofia", "email": "sofia@x.example", "other": 1}
    )
    assert full == Identity("u-1", "Sofia Rossi", "sofia", "sofia@x.example", "login")
    assert full.describe() == "Sofia Rossi (sofia, sofia@x.example)"
    # Keycloak without the profile claim "name" still sends the given and family names.
    split = Identity.from_claims({"sub": "u-2", "given_name": "Liam", "family_name": "O'Connor"})
    assert split is not None and split.label == "Liam O'Connor" and split.describe() == "Liam O'Connor"
    bare = Identity.from_claims({"sub": "u-3"})
    assert bare is not None and bare.label == "u-3"
    assert Identity.from_claims({}) is None and Identity.from_claims({"name": "  ", "sub": 7}) is None


def test_the_sandbox_token_names_the_seeded_current_user() -> None:
    seed = seed_data()
    current = next(u for u in seed["users"] if u["userId"] == seed["currentUserId"])
    assert SANDBOX_IDENTITY["name"] == f"{current['firstName']} {current['lastName']}"
    assert SANDBOX_IDENTITY["email"] == current["email"]
    assert unverified_claims(SANDBOX_TOKEN) == SANDBOX_IDENTITY
    identity = identity_for(load_settings({}).sandboxed("http://sandbox.test"))
    assert identity is not None and identity.source == "sandbox"
    assert identity.describe() == "Maya Patel (maya, maya.patel@northwind.example)"


def test_a_stored_login_gives_its_id_token_claims(tmp_path: Path) -> None:
    settings = load_settings({}, client_id="cli", token_store="file", token_dir=str(tmp_path))
    assert identity_for(settings) is None  # not logged in yet: no identity, no error
    claims = {"sub": "kc-42", "name": "Kenji Tanaka", "email": "kenji@x.example", "preferred_username": "kenji"}
    id_token = SANDBOX_TOKEN.split(".")[0] + "." + _segment(claims) + "."
    open_store(settings).save(
        TokenSet.from_response(
            {"access_token": "opaque-access", "id_token": id_token, "expires_in": 300},
            auth_url=settings.auth_url,
            client_id="cli",
            now=time.time(),
        )
    )
    assert identity_for(settings) == Identity("kc-42", "Kenji Tanaka", "kenji", "kenji@x.example", "login")
    # A fixed token that is not a JWT carries nobody.
    assert identity_for(load_settings({}, access_token="opaque")) is None


def _segment(claims: dict[str, str]) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


async def test_the_me_resource_names_the_person(mcp_client: Client) -> None:
    result = await mcp_client.read_resource("astravue://me")
    text = result.contents[0].text  # type: ignore[union-attr]
    assert 'name="Maya Patel"' in text and "email=maya.patel@northwind.example" in text and "source=sandbox" in text


async def test_the_me_resource_says_what_to_do_without_identity() -> None:
    from astravue_mcp.server import build_server

    # An opaque fixed token names nobody; reading "me" needs no API call, so nothing is contacted.
    async with Client(build_server(load_settings({}, access_token="opaque", org_id=1))) as client:
        text = (await client.read_resource("astravue://me")).contents[0].text  # type: ignore[union-attr]
    assert "carries no identity" in text and "astravue-mcp login" in text
