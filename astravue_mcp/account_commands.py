"""The ``login``, ``status`` and ``logout`` commands (called by ``cli.py``).

Each returns an exit code: 0 success, 1 failure, 2 configuration error. Messages for the person
go to stderr; only ``status`` writes its report to stdout. No token or secret is ever printed.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime

import anyio
import anyio.to_thread

from astravue_mcp.auth import oidc
from astravue_mcp.auth.login import LoginError, run_login
from astravue_mcp.auth.store import StoreError, TokenSet, TokenStore, duration, open_store
from astravue_mcp.config import Settings, SettingsError
from astravue_mcp.identity import Identity

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def login(settings: Settings, no_browser: bool = False, timeout: float | None = None) -> int:
    """Interactive login; stores the tokens for every server process of this account."""
    try:
        tokens = anyio.run(lambda: run_login(settings, no_browser=no_browser, timeout=timeout))
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except (LoginError, StoreError) as exc:
        return _fail(f"Login failed: {exc}")
    except OSError as exc:  # the token file could not be written (permissions, disk full)
        return _fail(f"Login failed: the tokens could not be stored ({exc.strerror or exc}).")
    except KeyboardInterrupt:
        return _fail("Login cancelled.")
    who = _who(tokens)
    _err(
        f"Logged in to Astravue{f' as {who}' if who else ''}. "
        "Running MCP servers pick up this login on their next call."
    )
    return EXIT_OK


def status(settings: Settings) -> int:
    """Print who is logged in and until when (stdout); exit 1 when there is no usable login."""
    try:
        store = open_store(settings)
        tokens = store.load()
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except StoreError as exc:
        return _fail(f"Cannot read the stored login: {exc}")
    lines = [
        f"Auth URL:     {settings.auth_url}",
        f"Client id:    {settings.client_id}",
        f"Org id:       {settings.org_id if settings.org_id is not None else 'not set (ASTRAVUE_ORG_ID)'}",
        f"Token store:  {store.description}",
    ]
    if tokens is None:
        lines.insert(0, "Logged in:    no")
        print("\n".join(lines))
        _err('Not logged in. Run "astravue-mcp login".')
        return EXIT_FAILED
    now = time.time()
    lines.insert(0, f"Logged in:    {_who(tokens) or 'yes (no identity claims were provided)'}")
    lines += [
        f"Scope:        {tokens.scope or '(not reported)'}",
        f"Access token: {_expiry(tokens.expires_at, now, unknown='expiry not reported')}",
        f"Refresh token: {_refresh_expiry(tokens, now)}",
        f"Renewed at:   {_when(tokens.obtained_at)}",
    ]
    print("\n".join(lines))
    if tokens.refresh_expired(now) or (tokens.refresh_token is None and tokens.expires_within(0, now)):
        _err('The login has expired. Run "astravue-mcp login".')
        return EXIT_FAILED
    return EXIT_OK


def logout(settings: Settings) -> int:
    """Revoke the refresh token at the provider when possible, then delete the stored login."""
    try:
        store = open_store(settings)
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    return anyio.run(_logout, settings, store)


async def _logout(settings: Settings, store: TokenStore) -> int:
    try:
        tokens = await anyio.to_thread.run_sync(store.load)
    except StoreError as exc:
        return _fail(f"Cannot read the stored login: {exc}")
    if tokens is None:
        # Maybe an unreadable entry (load() treats it as no login): remove it all the same.
        try:
            removed = await anyio.to_thread.run_sync(_delete, store)
        except (OSError, StoreError) as exc:
            return _fail(f"Could not delete the stored login in {store.description}: {exc}")
        if removed:
            _err(f"Logged out: deleted an unreadable stored login from {store.description}.")
        else:
            _err(f"No stored login for {settings.client_id} at {settings.auth_url}; nothing to do.")
        return EXIT_OK
    remote = "no refresh token was stored, so there was nothing to revoke at the provider"
    if tokens.refresh_token:
        try:
            endpoint = await oidc.revoke_refresh_token(settings, tokens.refresh_token)
            remote = f"revoked the login at {endpoint}"
        except oidc.ProviderUnavailable as exc:
            remote = f"could not reach the provider ({exc}), so the login was only removed locally"
        except oidc.OAuthError as exc:
            remote = f"the provider refused the revocation ({exc}), so the login was only removed locally"
        except LookupError as exc:
            remote = f"{exc}, so the login was only removed locally"

    try:
        await anyio.to_thread.run_sync(_delete, store)
    except (OSError, StoreError) as exc:
        return _fail(f"Could not delete the stored login in {store.description}: {exc}")
    _err(f"Logged out: {remote}; deleted the stored tokens from {store.description}.")
    return EXIT_OK


# ------------------------------------------------------------ formatting
def _who(tokens: TokenSet) -> str:
    """``Maya Patel (maya, maya@example.com)``: the person's name first, as "me" is shown everywhere."""
    identity = Identity.from_claims(tokens.claims)
    return identity.describe() if identity else ""


def _when(instant: float) -> str:
    return datetime.fromtimestamp(instant).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _expiry(instant: float | None, now: float, unknown: str) -> str:
    if instant is None:
        return unknown
    delta = instant - now
    if delta <= 0:
        return f"expired {duration(-delta)} ago ({_when(instant)})"
    return f"expires in {duration(delta)} ({_when(instant)})"


def _refresh_expiry(tokens: TokenSet, now: float) -> str:
    if tokens.refresh_token is None:
        return "none (the login ends when the access token expires)"
    if tokens.refresh_expires_at is None:
        return "no fixed expiry" if tokens.refresh_expiry_reported else "expiry not reported by the provider"
    return _expiry(tokens.refresh_expires_at, now, unknown="")


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _delete(store: TokenStore) -> bool:
    with store.lock.held():  # not in the middle of a server's refresh
        return store.delete()


def _fail(text: str, code: int = EXIT_FAILED) -> int:
    _err(text)
    return code
