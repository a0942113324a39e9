"""Who "me" is: the identity of the login, from the claims its provider put in the tokens.

The public API has no current-user endpoint. What is known of the person is what the login's ID
token says (subject, name, username, email; the login asks for the ``openid profile email``
scopes so Keycloak includes them), kept with the stored tokens. A fixed ``ASTRAVUE_ACCESS_TOKEN``
that is a JWT carries the same claims, and so does the sandbox's own token (it names the seeded
current user). The claims are read without verifying a signature: they only label the person and
pick them out among the people seen on tasks (``people.py`` matches by email, then by name); the
API still decides what the token may do.

This is the seam other features use: :func:`identity_for` (settings -> Identity, no network) and
:func:`session_identity` (the same, read once per server session).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from astravue_mcp.auth.oidc import unverified_claims
from astravue_mcp.auth.store import StoreError, open_store
from astravue_mcp.config import SANDBOX_TOKEN, Settings, SettingsError
from astravue_mcp.state import state_of

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """The person a login belongs to, as the identity provider names them (any field may be missing)."""

    subject: str | None = None
    name: str | None = None
    username: str | None = None
    email: str | None = None
    source: str = "login"
    """Where the claims came from: "login" (stored ID token), "ASTRAVUE_ACCESS_TOKEN" or "sandbox"."""

    @classmethod
    def from_claims(cls, claims: dict[str, Any], source: str = "login") -> Identity | None:
        def text(key: str) -> str | None:
            value = claims.get(key)
            return value.strip() or None if isinstance(value, str) else None

        name = text("name") or " ".join(p for p in (text("given_name"), text("family_name")) if p) or None
        found = cls(text("sub"), name, text("preferred_username"), text("email"), source)
        return found if (found.subject or found.name or found.username or found.email) else None

    @property
    def label(self) -> str:
        """How to call the person: their name, else their username, email or subject."""
        return self.name or self.username or self.email or self.subject or "unknown"

    def describe(self) -> str:
        """``Maya Patel (maya, maya.patel@example.com)``: the name and what else tells them apart."""
        extra = [v for v in (self.username, self.email) if v and v != self.label]
        return self.label + (f" ({', '.join(extra)})" if extra else "")

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def identity_for(settings: Settings) -> Identity | None:
    """The identity of whatever credentials these settings use; blocking (it may read the keyring).

    None when the credentials carry no identity (an opaque fixed token, no login yet, an ID token
    without profile claims).
    """
    if settings.access_token is not None:
        token = settings.access_token.get_secret_value()
        source = "sandbox" if token == SANDBOX_TOKEN else "ASTRAVUE_ACCESS_TOKEN"
        return Identity.from_claims(unverified_claims(token), source)
    try:
        tokens = open_store(settings).load()
    except (SettingsError, StoreError) as exc:
        log.info("No identity: the stored login cannot be read (%s)", exc)
        return None
    return Identity.from_claims(tokens.claims) if tokens is not None else None


IDENTITY_KEY = "identity"


async def session_identity(ctx: Context) -> Identity | None:
    """The login's identity, read once per server session (the login does not change person mid-session)."""
    state = state_of(ctx)
    memo = state.memo_for(ctx)
    if IDENTITY_KEY not in memo:
        memo[IDENTITY_KEY] = await anyio.to_thread.run_sync(identity_for, state.settings)
    found: Identity | None = memo[IDENTITY_KEY]
    return found
