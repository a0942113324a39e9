"""One token refresh as a unit that nothing can cut in half: ask the provider, then save at once.

With refresh-token rotation (Keycloak's "Revoke Refresh Token") the provider spends the old
refresh token the moment it answers. Tokens received but not saved are a lost login: the store
keeps a spent token, the next refresh is ``invalid_grant`` and the provider revokes the grant.
So the answer is written to the store before anything else happens with it, and:

- in the server, the refresh runs in a **detached helper process** (:func:`main` in a new
  Python process, its own session) that inherits the store's lock. A cancelled call,
  a closed stdin, SIGTERM or even ``kill -9`` of the server cannot stop it: it receives the
  answer, saves it and exits, and only then is the lock free for the next process, which reads
  the saved tokens. The server waits for it (shielded, bounded) and uses what it printed.
- where no helper can be started (Windows, a test transport, a store the helper cannot reopen),
  the same :func:`renew` runs in-process inside a shielded cancel scope.

Either way only the provider call is bounded (:data:`RENEW_DEADLINE`). The save of tokens the
provider has issued is shielded and has no deadline of ours (the store's own timeouts bound it):
a deadline passing between the answer and the save would otherwise drop the only live tokens.

What remains out of reach: a provider answer lost on the network, or the helper itself being
killed between the provider's answer and the save (a few milliseconds).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx2

from astravue_mcp.auth import oidc
from astravue_mcp.auth.store import StoreError, TokenSet, TokenStore, reopen_store, store_spec
from astravue_mcp.config import Settings
from astravue_mcp.errors import LOGIN_HINT, AstravueError, AuthError
from astravue_mcp.redact import setup_logging

log = logging.getLogger(__name__)

REFRESH_ATTEMPTS = 4
REFRESH_BACKOFF = 0.5
RENEW_DEADLINE = 30.0
"""Longest a refresh (its retries included) may take; the helper gives up after it, the server a bit later."""
HELPER_GRACE = 5.0
"""The server waits this much longer than the helper's own deadline (its start-up, its exit)."""
# Only what the token request needs crosses to the helper (on its stdin, never on its command line).
HELPER_SETTINGS = ("auth_url", "client_id", "client_secret", "token_auth_method", "log_level")


class LoginUnavailable(AstravueError):
    """The login is fine but could not be renewed right now (provider unreachable, store locked)."""


class RefreshRefused(Exception):
    """``invalid_grant``: this refresh token is dead; only a new login helps."""


async def post_refresh(
    settings: Settings, refresh_token: str, transport: httpx2.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """The refresh grant, retried on network trouble; raises :class:`RefreshRefused` on invalid_grant."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    delay = REFRESH_BACKOFF
    for attempt in range(1, REFRESH_ATTEMPTS + 1):
        try:
            return await oidc.token_request(settings, data, transport)
        except oidc.OAuthError as exc:
            if exc.error == "invalid_grant":
                log.warning("The refresh token was refused (invalid_grant: %s)", exc.description or "no detail")
                raise RefreshRefused from None
            if exc.error in ("invalid_client", "unauthorized_client"):
                raise AuthError(
                    f"Astravue's login server rejected the client credentials ({exc.error}). Check "
                    "ASTRAVUE_CLIENT_ID and ASTRAVUE_CLIENT_SECRET, then restart the MCP client."
                ) from None
            raise AuthError(f"Astravue's login server refused to renew the login ({exc}). {LOGIN_HINT}") from None
        except oidc.ProviderUnavailable as exc:
            if attempt == REFRESH_ATTEMPTS:
                raise LoginUnavailable(
                    f"Could not renew the Astravue login: {exc}. The login is kept; try again in a moment."
                ) from None
            log.warning("Renewing the access token failed (%s); retrying in %.1f s", exc, delay)
            await anyio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


async def renew(
    settings: Settings,
    store: TokenStore,
    current: TokenSet,
    transport: httpx2.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    save: Callable[[TokenSet], Awaitable[None]] | None = None,
) -> TokenSet:
    """Refresh ``current`` (the store's tokens, read under its lock) and save the answer at once.

    The caller holds the store's lock and shields this from cancellation. The provider call is
    bounded by :data:`RENEW_DEADLINE`; the save is not (see the module's docstring). ``save``
    replaces ``store.save`` in a worker thread (the remote grant store saves in the event loop).
    """
    assert current.refresh_token
    payload: dict[str, Any] | None = None
    with anyio.move_on_after(RENEW_DEADLINE):
        payload = await post_refresh(settings, current.refresh_token, transport)
    if payload is None:
        raise LoginUnavailable(f"Renewing the Astravue login took over {RENEW_DEADLINE:.0f} s. Try again in a moment.")
    try:
        renewed = TokenSet.from_response(
            payload, auth_url=current.auth_url, client_id=current.client_id, previous=current, now=clock()
        )
    except ValueError as exc:
        raise LoginUnavailable(f"Astravue's login server gave an unusable answer ({exc}). Try again.") from None
    try:
        # Shielded, no deadline: whatever cancels the caller now, these are the only live tokens.
        with anyio.CancelScope(shield=True):
            await (save(renewed) if save is not None else anyio.to_thread.run_sync(store.save, renewed))
    except (OSError, StoreError) as exc:
        # The old refresh token is spent by now; the caller keeps the new one in memory at least.
        log.error("Could not save the renewed tokens (%s); this process keeps them in memory", exc)
    return renewed


def can_detach(store: TokenStore, transport: httpx2.AsyncBaseTransport | None) -> bool:
    """Whether a helper process can do this store's refresh (POSIX, the real network, a reopenable store)."""
    return os.name == "posix" and transport is None and store_spec(store) is not None


async def renew_detached(settings: Settings, store: TokenStore) -> TokenSet:
    """Run :func:`renew` in a helper process that outlives this one; return the tokens it saved.

    The caller holds ``store.lock``; the helper inherits the locked descriptor, so the lock stays
    held until the helper exits even if this process dies, and releasing it here (closing our
    descriptor) never frees it early. Raises what :func:`renew` raises, or :class:`LoginUnavailable`
    when the helper cannot be started or says nothing usable.
    """
    lock_fd = store.lock.fileno()
    request = {
        "settings": {
            name: (value.get_secret_value() if hasattr(value, "get_secret_value") else value)
            for name in HELPER_SETTINGS
            if (value := getattr(settings, name)) is not None
        },
        "store": store_spec(store),
        "lock_fd": lock_fd,
    }
    try:
        process = subprocess.Popen(
            # Not `-m`: the package imports this module first, and runpy warns about that on stderr.
            [sys.executable, "-c", f"import sys; from {__name__} import main; sys.exit(main())"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # its log lines join ours on stderr
            pass_fds=(lock_fd,),
            start_new_session=True,  # not in our process group: a signal to the group spares it
        )
    except OSError as exc:
        log.warning("Could not start the token-renewal helper (%s); renewing in this process", exc)
        return await renew(settings, store, _must_load(store))
    # A thread we may abandon at the caller's deadline: the helper then finishes on its own.
    output, _ = await anyio.to_thread.run_sync(
        process.communicate, json.dumps(request).encode(), abandon_on_cancel=True
    )
    code = process.returncode
    try:
        answer = json.loads(output)
    except ValueError:
        raise LoginUnavailable(
            f"Could not renew the Astravue login: the renewal helper exited with code {code}. Try again."
        ) from None
    return _answer_to_tokens(answer)


def _answer_to_tokens(answer: dict[str, Any]) -> TokenSet:
    if "tokens" in answer:
        return TokenSet.model_validate(answer["tokens"])
    if answer.get("error") == "refused":
        raise RefreshRefused
    message = str(answer.get("message") or "the renewal helper failed")
    raise (AuthError if answer.get("error") == "auth" else LoginUnavailable)(message)


def _must_load(store: TokenStore) -> TokenSet:
    current = store.load()
    if current is None or not current.refresh_token:
        raise LoginUnavailable("Could not renew the Astravue login: the stored login changed. Try again.")
    return current


async def _helper(request: dict[str, Any]) -> dict[str, Any]:
    settings = Settings.model_validate(request["settings"])
    store = reopen_store(request["store"])
    try:
        # The lock is ours already (inherited, held by the server): never acquire it again here.
        with anyio.fail_after(RENEW_DEADLINE):
            renewed = await renew(settings, store, await anyio.to_thread.run_sync(_must_load, store))
    except RefreshRefused:
        return {"error": "refused"}
    except AuthError as exc:
        return {"error": "auth", "message": str(exc)}
    except (LoginUnavailable, StoreError) as exc:
        return {"error": "unavailable", "message": str(exc)}
    except TimeoutError:
        return {"error": "unavailable", "message": f"Renewing the Astravue login took over {RENEW_DEADLINE:.0f} s."}
    return {"tokens": renewed.model_dump(mode="json")}


def main() -> int:
    """The helper: a JSON request on stdin, one JSON answer on stdout (the server may be gone by then)."""
    request = json.loads(sys.stdin.read())
    setup_logging(str(request["settings"].get("log_level", "WARNING")))
    try:
        answer = anyio.run(_helper, request)
    finally:
        os.close(int(request["lock_fd"]))  # frees the lock if the server is gone
    try:
        sys.stdout.write(json.dumps(answer))
        sys.stdout.flush()
    except OSError:  # the server is gone (killed): the tokens are saved, nobody else needs them
        pass
    return 0
