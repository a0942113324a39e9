"""Settings: one variable per setting, validated once, errors name the variable and never echo secrets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from astravue_mcp.config import ENV, SettingsError, load_settings


def test_defaults_and_env_names() -> None:
    settings = load_settings({})
    assert settings.api_url == "https://api.astravue.com"
    assert settings.auth_url == "https://auth.astravue.com/realms/astravue"
    assert settings.token_endpoint == "https://auth.astravue.com/realms/astravue/protocol/openid-connect/token"
    assert settings.redirect_uri == "http://127.0.0.1:8765/callback"
    assert {"ASTRAVUE_API_URL", "ASTRAVUE_CLIENT_ID", "ASTRAVUE_CLIENT_SECRET", "ASTRAVUE_ORG_ID"} <= set(ENV)


def test_values_are_parsed_and_trailing_slash_dropped() -> None:
    settings = load_settings(
        {
            "ASTRAVUE_API_URL": "http://127.0.0.1:8900/",
            "ASTRAVUE_ORG_ID": " 7 ",
            "ASTRAVUE_READ_ONLY": "yes",
            "ASTRAVUE_OFFLINE_ACCESS": "1",
            "ASTRAVUE_ORGS": "12=Northwind Labs, 7=Northwind",
        }
    )
    assert settings.api_url == "http://127.0.0.1:8900"
    assert settings.org_id == 7
    assert settings.org_choices == {7: "Northwind", 12: "Northwind Labs"}  # the default first
    assert settings.read_only is True
    assert settings.scopes == "openid profile email offline_access"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ASTRAVUE_ORG_ID": "seven"}, "ASTRAVUE_ORG_ID='seven' is invalid"),
        ({"ASTRAVUE_ORG_ID": "0"}, "ASTRAVUE_ORG_ID='0' is invalid"),
        (
            {"ASTRAVUE_API_URL": "api.astravue.com"},
            "ASTRAVUE_API_URL='api.astravue.com' is invalid: must be an http(s) URL",
        ),
        ({"ASTRAVUE_READ_ONLY": "maybe"}, "ASTRAVUE_READ_ONLY='maybe' is not a boolean"),
        ({"ASTRAVUE_TOKEN_STORE": "vault"}, "ASTRAVUE_TOKEN_STORE='vault' is invalid"),
        ({"ASTRAVUE_ORGS": "7=Labs,Northwind"}, "ASTRAVUE_ORGS='7=Labs,Northwind' is invalid: 'Northwind' does not"),
    ],
)
def test_malformed_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert str(caught.value).startswith(message)


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"ASTRAVUE_HTTP_TOKEN": "x", "ASTRAVUE_READ_TIMEOUT": "-1"})
    assert "x'" not in str(caught.value)
    settings = load_settings({"ASTRAVUE_CLIENT_SECRET": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(settings)


def test_require_names_the_missing_variable() -> None:
    with pytest.raises(SettingsError, match="^ASTRAVUE_ORG_ID is not set"):
        load_settings({}).require("org_id")


def test_cli_reports_bad_setting_in_one_line_with_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "astravue_mcp", "serve"],
        env={"ASTRAVUE_ORG_ID": "abc", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "astravue-mcp: ASTRAVUE_ORG_ID='abc' is invalid: Input should be a valid integer, unable to parse string as an"
        " integer."
    ]
