"""Token storage, the inter-process lock, token-response parsing and the login's answer checks.

No network: these pin the rules the end-to-end tests (test_auth_flow.py) rely on.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from astravue_mcp.auth.credentials import auth_for
from astravue_mcp.auth.login import LoginError, LoginFlow, pkce_pair
from astravue_mcp.auth.manager import TokenManager
from astravue_mcp.auth.store import (
    FileStore,
    InterProcessLock,
    KeyringStore,
    StoreError,
    TokenSet,
    open_store,
    store_key,
)
from astravue_mcp.config import Settings, load_settings
from astravue_mcp.redact import RedactingFilter

AUTH = "https://auth.example.test/realms/astravue"
NOW = 1_800_000_000.0


def settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "auth_url": AUTH,
        "client_id": "cid",
        "client_secret": "s3cret-value",
        "token_store": "file",
        "token_dir": str(tmp_path / "store"),
    }
    return load_settings({}, **(values | overrides))


def tokens(**payload: object) -> TokenSet:
    body = {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 300, "scope": "openid"} | payload
    return TokenSet.from_response(body, auth_url=AUTH, client_id="cid", now=NOW)


# ------------------------------------------------------------ TokenSet
def test_lifetimes_become_instants_and_keycloak_zero_means_no_fixed_expiry() -> None:
    t = tokens(refresh_expires_in=1800)
    assert t.expires_at == NOW + 300 and t.refresh_expires_at == NOW + 1800
    offline = tokens(refresh_expires_in=0)
    assert offline.refresh_expires_at is None and offline.refresh_expiry_reported
    assert not offline.refresh_expired(NOW + 10**9)
    assert t.expires_within(60, NOW + 241) and not t.expires_within(60, NOW + 239)


def test_a_refresh_without_rotation_keeps_the_refresh_token_and_identity() -> None:
    import base64
    import json

    def jwt(claims: dict[str, object]) -> str:
        part = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJub25lIn0.{part}.sig"

    first = tokens(id_token=jwt({"sub": "u1", "preferred_username": "alice", "nonce": "x"}), refresh_expires_in=600)
    assert first.claims == {"sub": "u1", "preferred_username": "alice"}
    second = TokenSet.from_response(
        {"access_token": "access-2", "expires_in": 300}, auth_url=AUTH, client_id="cid", previous=first, now=NOW + 100
    )
    assert second.refresh_token == "refresh-1" and second.claims == first.claims
    assert second.refresh_expires_at == first.refresh_expires_at and second.scope == "openid"
    with pytest.raises(ValueError, match="no access_token"):
        TokenSet.from_response({"token_type": "Bearer"}, auth_url=AUTH, client_id="cid")


def test_repr_never_shows_tokens() -> None:
    text = repr(tokens()) + str(tokens())
    assert "access-1" not in text and "refresh-1" not in text


# ------------------------------------------------------------ stores
def test_file_store_is_private_atomic_and_keyed_by_auth_url_and_client(tmp_path: Path) -> None:
    store = open_store(settings(tmp_path))
    assert isinstance(store, FileStore)
    assert store.load() is None
    store.save(tokens())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.load() == tokens()
    assert "s3cret-value" not in store.path.read_text()
    store.save(tokens(access_token="access-2"))
    assert sorted(p.name for p in store.path.parent.iterdir() if not p.name.endswith(".lock")) == [store.path.name]

    other = open_store(settings(tmp_path, client_id="other"))
    assert other.load() is None  # a second account coexists
    other.save(tokens(access_token="other-access"))
    assert store.load() is not None and store.load().access_token == "access-2"  # type: ignore[union-attr]
    assert store.delete() and not store.delete()
    assert other.load() is not None


def test_a_corrupt_store_means_not_logged_in(tmp_path: Path) -> None:
    store = open_store(settings(tmp_path))
    assert isinstance(store, FileStore)
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    assert store.load() is None


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring backend (the OS keyrings need a desktop session)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


def test_keyring_store_is_used_when_a_backend_answers(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        store = open_store(settings(tmp_path, token_store="auto"))
        assert isinstance(store, KeyringStore)
        store.save(tokens())
        assert store.load() == tokens()
        assert list(backend.items) == [("astravue-mcp", store_key(AUTH, "cid"))]
        assert store.delete() and store.load() is None and not store.delete()
        assert isinstance(open_store(settings(tmp_path, token_store="file")), FileStore)  # forced
    finally:
        keyring.set_keyring(previous)


def test_without_a_keyring_auto_falls_back_to_the_file(tmp_path: Path) -> None:
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert isinstance(open_store(settings(tmp_path, token_store="auto")), FileStore)
    finally:
        keyring.set_keyring(previous)


# ------------------------------------------------------------ inter-process lock
HOLD = """
import sys, time
from pathlib import Path
from astravue_mcp.auth.store import InterProcessLock
lock = InterProcessLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_the_lock_excludes_another_process_and_dies_with_it(tmp_path: Path) -> None:
    path = tmp_path / "store" / "t.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), "0.6"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = InterProcessLock(path)
        with pytest.raises(StoreError, match="another astravue-mcp process"):
            lock.acquire(timeout=0.1)
        started = time.monotonic()
        with lock.held(timeout=10):  # released when the holder exits (it never unlocks by itself)
            assert time.monotonic() - started > 0.2
        with lock.held(timeout=0.1):
            pass
    finally:
        holder.kill()
        holder.wait()


# ------------------------------------------------------------ the manager starts lazily
def test_token_manager_does_no_work_at_construction(tmp_path: Path) -> None:
    auth = auth_for(settings(tmp_path, token_store="keyring"))
    assert isinstance(auth, TokenManager)
    assert not (tmp_path / "store").exists()


# ------------------------------------------------------------ the login's answer
def test_pkce_pair_is_s256() -> None:
    import base64
    import hashlib

    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_the_callback_is_checked(tmp_path: Path) -> None:
    s = settings(tmp_path, scope="openid profile", offline_access=True)
    flow = LoginFlow(s)
    assert "scope=openid+profile+offline_access" in flow.authorization_url
    assert flow.verify_callback({"state": flow.state, "code": "c0de", "iss": AUTH}) == "c0de"
    with pytest.raises(LoginError, match="state mismatch"):
        flow.verify_callback({"state": "other", "code": "c0de"})
    with pytest.raises(LoginError, match="not from"):
        flow.verify_callback({"state": flow.state, "code": "c0de", "iss": "https://evil.example"})
    with pytest.raises(LoginError, match=r"reported an error: server_error \(down for  maintenance\)"):
        flow.verify_callback(
            {"state": flow.state, "error": "server_error", "error_description": "down for\x1b maintenance"}
        )
    with pytest.raises(LoginError, match="no authorization code"):
        flow.verify_callback({"state": flow.state})
    pasted = f"http://127.0.0.1:8765/callback?code=c0de&state={flow.state}"
    assert flow.verify_pasted(f"  {pasted}\n") == "c0de"
    with pytest.raises(LoginError, match="Nothing was pasted"):
        flow.verify_pasted("\n")


def test_a_non_loopback_redirect_uri_is_explained(tmp_path: Path) -> None:
    from astravue_mcp.auth.login import LoopbackCallback

    flow = LoginFlow(settings(tmp_path, redirect_uri="https://app.example.test/callback"))
    with pytest.raises(LoginError, match="--no-browser"):
        LoopbackCallback(flow)


def test_log_lines_about_tokens_are_redacted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    t = tokens(access_token="opaque-access-token-value", refresh_token="opaque-refresh-token-value")
    record = logging.LogRecord(
        "astravue_mcp.auth",
        logging.INFO,
        __file__,
        1,
        "sent %s and %s",
        (t.access_token, f"refresh_token={t.refresh_token}&client_secret=s3cret-value"),
        None,
    )
    RedactingFilter().filter(record)
    line = record.getMessage()
    for secret in ("opaque-access-token-value", "opaque-refresh-token-value", "s3cret-value"):
        assert secret not in line


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_an_existing_loose_directory_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    open_store(settings(tmp_path)).save(tokens())
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not utf-8 \x80", b"[" * 100_000 + b"]" * 100_000, b'{"version": 1, "tokens": ' * 50_000],
    ids=["not-utf8", "nested-100k", "nested-objects"],
)
def test_an_unreadable_token_file_gives_one_line_and_the_login_hint(tmp_path: Path, content: bytes) -> None:
    s = settings(tmp_path, org_id=1, api_url="http://127.0.0.1:9")
    store = open_store(s)
    assert isinstance(store, FileStore)
    store.path.parent.mkdir(parents=True, mode=0o700)
    store.path.write_bytes(content)
    store.path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")} | {
        "ASTRAVUE_AUTH_URL": AUTH,
        "ASTRAVUE_CLIENT_ID": "cid",
        "ASTRAVUE_TOKEN_STORE": "file",
        "ASTRAVUE_TOKEN_DIR": str(store.path.parent),
    }
    for command in ("status", "logout"):
        done = subprocess.run([sys.executable, "-m", "astravue_mcp", command], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2, done.stderr  # the warning and one message
        assert "astravue-mcp login" in done.stderr or "unreadable" in done.stderr, done.stderr
    assert not store.path.exists()  # logout removed it
    store.path.write_bytes(content)

    async def call() -> str:
        from mcp.client import Client

        from astravue_mcp.server import build_server

        async with Client(build_server(s)) as client:
            result = await client.call_tool("astravue_list_spaces", {})
        assert result.is_error
        return str(result.content[0].text)  # type: ignore[union-attr]

    import anyio

    assert "astravue-mcp login" in anyio.run(call)


def test_the_lock_file_is_not_opened_through_a_symlink(tmp_path: Path) -> None:
    store = open_store(settings(tmp_path))
    assert isinstance(store, FileStore)
    store.path.parent.mkdir(parents=True, mode=0o700)
    target = tmp_path / "elsewhere"
    store.lock.path.symlink_to(target)
    with pytest.raises(StoreError, match="remove it if it is a link"):
        store.lock.acquire(timeout=1)
    assert not target.exists()  # nothing was created through the link


def test_without_rotation_the_previous_refresh_token_is_kept_only_while_valid() -> None:
    first = tokens(refresh_expires_in=600)
    answer = {"access_token": "access-2", "expires_in": 300}
    kept = TokenSet.from_response(answer, auth_url=AUTH, client_id="cid", previous=first, now=NOW + 599)
    assert kept.refresh_token == "refresh-1"
    dropped = TokenSet.from_response(answer, auth_url=AUTH, client_id="cid", previous=first, now=NOW + 600)
    assert dropped.refresh_token is None  # an expired refresh token is no fallback: the next expiry asks for a login


def test_the_refresh_margin_is_capped_at_a_quarter_of_the_lifetime() -> None:
    short = tokens(expires_in=60)  # a 60 s margin on a 60 s token: 15 s
    assert not short.expires_within(60, NOW + 44) and short.expires_within(60, NOW + 45)
