"""Remote mode's settings check: everything that keeps it from starting safely, reported at once.

The settings themselves live with every other setting (:mod:`astravue_mcp.config`); what makes a
combination unsafe for a server that many people reach (a public URL without https, Redis without
encryption keys, a missing confidential client) is remote mode's to say.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from astravue_mcp.config import ENV_BY_FIELD, HELP, Settings, SettingsError, is_loopback
from astravue_mcp.remote.crypto import KeyRing, KeyRingError


def remote_problems(settings: Settings) -> list[str]:
    """Everything that keeps remote (multi-user) mode from starting safely, one line each."""
    problems = []
    public = settings.public_url
    if not public:
        problems.append(
            "ASTRAVUE_PUBLIC_URL (or --public-url) is not set: give the https URL people's clients reach this "
            "server at, e.g. https://mcp.example.com."
        )
    else:
        parts = urlsplit(public)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"ASTRAVUE_PUBLIC_URL={public!r} is not an http(s) URL such as https://mcp.example.com.")
        elif parts.scheme == "http" and not is_loopback(parts.hostname):
            problems.append(
                f"ASTRAVUE_PUBLIC_URL={public!r} must use https: tokens would cross the network in clear text "
                "(http is accepted only for 127.0.0.1/localhost)."
            )
        elif parts.path.strip("/") or parts.query or parts.fragment:
            problems.append(
                f"ASTRAVUE_PUBLIC_URL={public!r} must be an origin without path, query or fragment "
                "(the MCP endpoint is <public URL>/mcp)."
            )
    scheme = urlsplit(settings.state_url).scheme
    if scheme not in ("memory", "redis", "rediss", "unix"):
        problems.append(
            "ASTRAVUE_STATE_URL must be memory:// (one replica) or redis://host:port/db (several replicas)."
        )
    keys = settings.state_keys.get_secret_value() if settings.state_keys else ""
    if keys.strip():
        try:
            KeyRing.from_setting(keys)
        except KeyRingError as exc:
            problems.append(f"ASTRAVUE_STATE_KEYS: {exc}.")
    elif scheme != "memory" and scheme in ("redis", "rediss", "unix"):
        problems.append(
            "ASTRAVUE_STATE_KEYS is not set: with Redis, people's Astravue logins are stored encrypted and every "
            "replica needs the same keys; make one with "
            'python -c "import secrets; print(secrets.token_urlsafe(32))".'
        )
    for name in ("client_id", "client_secret"):
        if not getattr(settings, name):
            problems.append(
                f"{ENV_BY_FIELD[name]} is not set: remote mode signs people in through one confidential Astravue "
                f"API client whose redirect URI is <public URL>/oauth/callback; {HELP[name]}"
            )
    if settings.org_id is None:
        problems.append(
            "ASTRAVUE_ORG_ID is not set: give the numeric id of the Astravue organisation (orgspace) people work in."
        )
    if settings.access_token is not None:
        problems.append(
            "ASTRAVUE_ACCESS_TOKEN is set: in remote mode every person signs in with their own account; unset it."
        )
    if settings.http_token is not None:
        problems.append("ASTRAVUE_HTTP_TOKEN is set: remote mode authorizes each person with OAuth; unset it.")
    return problems


def require_remote(settings: Settings) -> None:
    problems = remote_problems(settings)
    if problems:
        raise SettingsError("remote mode cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
