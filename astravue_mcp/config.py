"""Settings: read once from ``ASTRAVUE_*`` environment variables, validated, immutable.

Every setting has exactly one environment variable (listed in ``ENV``), so an error can always
name the variable a person has to fix, and docs, ``server.json`` and tests can be checked against
this one table.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

SANDBOX_URL = "http://sandbox.astravue.local"
"""Base URL of the embedded sandbox: requests to it go in-process, never on the network."""
SANDBOX_IDENTITY = {
    "iss": "http://sandbox.astravue.local",
    "sub": "sandbox-user-1",
    "name": "Maya Patel",
    "preferred_username": "maya",
    "email": "maya.patel@northwind.example",
}
"""Who the sandbox's own token belongs to: the seeded current user (``tests/test_identity.py`` keeps them equal)."""


def _unsigned_jwt(claims: dict[str, str]) -> str:
    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


SANDBOX_TOKEN = _unsigned_jwt(SANDBOX_IDENTITY)
"""The one bearer token the embedded sandbox accepts (unless it validates JWTs from an issuer).

Shaped as an unsigned JWT so that it carries an identity like a real login's token does: "me"
works on the sandbox through the same claims path as everywhere else. The sandbox compares it
whole; nothing trusts its claims for access."""
SANDBOX_ORG_ID = 1


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


def _url(value: str, example: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL such as {example}")
    return value.rstrip("/")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_url: str = "https://api.astravue.com"
    auth_url: str = "https://auth.astravue.com/realms/astravue"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    org_id: int | None = Field(None, gt=0)
    access_token: SecretStr | None = None
    redirect_uri: str = "http://127.0.0.1:8765/callback"
    scope: str = "openid profile email"
    offline_access: bool = False
    token_auth_method: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"
    token_store: Literal["auto", "keyring", "file"] = "auto"
    token_dir: str | None = None
    login_timeout: float = Field(300.0, gt=0)
    refresh_margin: float = Field(60.0, ge=0)
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    retry_budget: float = Field(20.0, ge=0)
    call_timeout: float = Field(30.0, gt=0, le=3600)
    rate_limit: int = Field(100, ge=0)
    max_concurrency: int = Field(8, ge=1, le=64)
    toolsets: str | None = None
    tools: str | None = None
    read_only: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    http_token: SecretStr | None = None
    allowed_hosts: str | None = None
    allowed_origins: str | None = None
    cache_dir: str | None = None
    public_url: str | None = None
    """Remote mode: the URL clients reach this server at (its MCP endpoint is ``<public_url>/mcp``)."""
    state_url: str = "memory://"
    state_keys: SecretStr | None = None
    remote_token_ttl: int = Field(3600, ge=1, le=86400)
    """Remote mode: seconds our access tokens live (clients renew them with their refresh token)."""
    remote_scopes: str = "astravue"
    """Remote mode: the scope our own access tokens carry and ``/mcp`` requires."""
    orgs: str | None = None
    """Remote mode: the organisations people choose between at first use, ``id`` or ``id=name``, comma-separated."""
    cimd_allow_private: bool = False
    """Remote mode, tests only: fetch Client ID Metadata Documents from loopback/private addresses."""

    @field_validator("api_url", "auth_url", "redirect_uri")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        # Each URL's own default is the example: an API address is the wrong hint for a redirect URI.
        assert info.field_name is not None
        return _url(value, cls.model_fields[info.field_name].default)

    @field_validator("orgs")
    @classmethod
    def _check_orgs(cls, value: str | None) -> str | None:
        for item in listed(value):
            org = item.partition("=")[0].strip()
            if not org.isdigit() or int(org) <= 0:
                raise ValueError(f"{item!r} does not start with an organisation id: use e.g. 12345=Northwind,67890")
        return value

    @property
    def org_choices(self) -> dict[int, str]:
        """Remote mode: the organisations a person may work in (id: name), the default (``org_id``) first."""
        choices = {self.org_id: str(self.org_id)} if self.org_id is not None else {}
        for item in listed(self.orgs):
            org, _, name = item.partition("=")
            choices[int(org)] = name.strip() or org.strip()
        return choices

    def model_post_init(self, context: Any, /) -> None:
        from astravue_mcp.redact import register_secret  # deferred: redact is not needed to read settings

        register_secret(urlsplit(self.state_url).password, permanent=True)  # never in a log line

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def token_endpoint(self) -> str:
        return f"{self.auth_url}/protocol/openid-connect/token"

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.auth_url}/protocol/openid-connect/auth"

    @property
    def discovery_url(self) -> str:
        return f"{self.auth_url}/.well-known/openid-configuration"

    @property
    def scopes(self) -> str:
        scopes = self.scope.split()
        if self.offline_access and "offline_access" not in scopes:
            scopes.append("offline_access")
        return " ".join(scopes)

    def require(self, *fields: str) -> None:
        """Fail, naming every unset variable at once, when settings a command needs are missing."""
        missing = [name for name in fields if getattr(self, name) in (None, "")]
        if len(missing) == 1:
            raise SettingsError(f"{ENV_BY_FIELD[missing[0]]} is not set: {HELP[missing[0]]}")
        if missing:
            names = [ENV_BY_FIELD[name] for name in missing]
            what = " ".join(f"{env}: {HELP[name]}" for env, name in zip(names, missing, strict=True))
            raise SettingsError(f"{', '.join(names[:-1])} and {names[-1]} are not set. {what}")

    def require_account(self) -> None:
        """What serving a real account needs: its org, and an API client unless a token is given."""
        self.require(*(() if self.access_token else ("client_id",)), "org_id")

    def account_settings(self) -> list[str]:
        """The variables of a real account that were set (``--sandbox`` ignores them)."""
        return [ENV_BY_FIELD[name] for name in ACCOUNT_FIELDS if name in self.model_fields_set]

    def sandboxed(self, api_url: str) -> Settings:
        """These settings pointed at a sandbox: its URL, its token and its org, nothing of an account.

        The client-side rate budget protects the real API; against a sandbox it is off unless the
        settings set one explicitly (a test of the budget does).
        """
        cleared = {name: Settings.model_fields[name].default for name in ACCOUNT_FIELDS}
        return self.model_copy(
            update={
                **cleared,
                "api_url": api_url,
                "access_token": SecretStr(SANDBOX_TOKEN),
                "org_id": SANDBOX_ORG_ID,
                "rate_limit": self.rate_limit if "rate_limit" in self.model_fields_set else 0,
            }
        )


ACCOUNT_FIELDS = (
    "api_url", "auth_url", "client_id", "client_secret", "org_id", "access_token", "redirect_uri", "scope",
    "offline_access", "token_auth_method", "token_store", "token_dir",
)  # fmt: skip
"""What identifies a real account and its login; a sandbox brings its own."""

ENV: dict[str, str] = {f"ASTRAVUE_{name.upper()}": name for name in Settings.model_fields}
ENV_BY_FIELD = {field: env for env, field in ENV.items()}

HELP = {
    "client_id": "create an API client in Astravue (profile icon > Settings) and set its id.",
    "client_secret": "set the secret of the API client created in Astravue's settings.",
    "org_id": "set the numeric id of your Astravue organisation (orgspace).",
}

SECRET_FIELDS = ("client_secret", "access_token", "http_token", "state_keys", "state_url")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listed(value: str | None) -> list[str]:
    """The items of a comma-separated setting (toolsets, tools, allowed hosts and origins)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from the environment plus explicit overrides (command-line flags win)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for var, name in ENV.items():
        raw = env.get(var)
        if raw is None:
            continue
        raw = raw.strip()
        if Settings.model_fields[name].annotation is bool:
            if raw.lower() not in _TRUE | _FALSE:
                raise SettingsError(f"{var}={raw!r} is not a boolean: use 1/0, true/false, yes/no.")
            values[name] = raw.lower() in _TRUE
        elif raw != "":
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "?"
        var = ENV_BY_FIELD.get(name, name)
        shown = "<hidden>" if name in SECRET_FIELDS else repr(values.get(name))
        raise SettingsError(f"{var}={shown} is invalid: {err['msg'].removeprefix('Value error, ')}.") from None
