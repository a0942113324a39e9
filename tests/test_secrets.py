"""Secret scan: no token, client secret or authorization code ever reaches an output, at DEBUG.

Real processes against a real OpenID provider (node oidc-provider as a Keycloak realm, see
tests/oidc.py) and the sandbox validating its JWTs: ``login --no-browser`` (the code pasted in),
a login whose code is refused, ``serve`` over stdio with silent refresh on expiry and on a 401,
failing calls (404, 500, 503), then ``status``. Every token the store held along the way, the
client secret and both codes are searched for in every stdout and stderr byte and tool result.
"""

from __future__ import annotations

import os
import queue
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx2
import pytest

from astravue_mcp.auth.store import FileStore, TokenSet, open_store
from astravue_mcp.config import Settings, load_settings
from tests.oidc import ACCESS_TTL, CLIENT_SECRET, Browser, Realm
from tests.support import leaks
from tests.test_stdio_e2e import StdioServer, assert_pure_jsonrpc, initialize

EXE = [sys.executable, "-m", "astravue_mcp", "--log-level", "DEBUG"]


def env_for(oidc: Realm, settings: Settings) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASTRAVUE_")}
    return base | oidc.env(settings) | {"ASTRAVUE_LOG_LEVEL": "DEBUG"}


class Login:
    """``astravue-mcp login --no-browser`` as a person runs it: read the address, log in, paste back."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*EXE, "login", "--no-browser", "--timeout", "20"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self._lines.put(line)

    def address(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self._lines.get(timeout=20).strip()
            if line.startswith("http"):
                return line
        raise AssertionError(f"no login address printed: {''.join(self.stderr)}")

    def paste(self, redirect: str) -> tuple[int, str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(redirect + "\n")
        self.proc.stdin.flush()
        self.proc.stdin.close()
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        out = self.proc.stdout.read()
        time.sleep(0.1)  # let the pump drain stderr
        return code, out, "".join(self.stderr)


def with_code(redirect: str, code: str) -> str:
    parts = urlsplit(redirect)
    query = dict(parse_qsl(parts.query))
    query["code"] = code
    return urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())))


def stored(settings: Settings) -> TokenSet:
    tokens = open_store(settings).load()
    assert tokens is not None
    return tokens


def test_no_secret_in_any_output_through_login_refresh_and_failures(oidc: Realm, tmp_path: Path) -> None:
    settings = oidc.settings(tmp_path / "store", max_retries=0, read_timeout=5)
    env = env_for(oidc, settings)
    outputs: dict[str, str] = {}
    secrets: dict[str, str] = {"client secret": CLIENT_SECRET}

    # A login whose code the provider refuses: the refused code is not echoed either.
    login = Login(env)
    redirect = Browser("alice").walk(login.address())
    secrets["refused code"] = "Zx9-refused-code-" + "q" * 24
    code, out, err = login.paste(with_code(redirect, secrets["refused code"]))
    assert code == 1 and "refused the login code" in err
    outputs["refused login"] = out + err

    login = Login(env)
    redirect = Browser("alice").walk(login.address())
    secrets["authorization code"] = dict(parse_qsl(urlsplit(redirect).query))["code"]
    code, out, err = login.paste(redirect)
    assert code == 0, err
    assert "Logged in to Astravue as Test alice (alice, alice@example.test)" in err
    outputs["login"] = out + err
    first = stored(settings)
    secrets |= {"access token 1": first.access_token, "refresh token 1": first.refresh_token or ""}

    server = StdioServer(env)
    results: list[str] = []
    try:
        initialize(server)

        def call(name: str, args: dict) -> dict:
            answer = server.send("tools/call", {"name": name, "arguments": args})
            assert answer is not None
            results.append(str(answer))
            return answer["result"]

        assert not call("astravue_list_spaces", {})["isError"]
        time.sleep(ACCESS_TTL + 0.6)  # the access token expires: the next call refreshes first
        assert not call("astravue_list_spaces", {})["isError"]
        second = stored(settings)
        assert second.access_token != first.access_token
        secrets |= {"access token 2": second.access_token, "refresh token 2": second.refresh_token or ""}

        # The API rejects the token (401): one refresh and one resend.
        httpx2.post(f"{oidc.api.url}/_sandbox/faults", json={"status": 401, "operations": ["list_spaces"]})
        assert not call("astravue_list_spaces", {})["isError"]
        third = stored(settings)
        assert third.access_token != second.access_token
        secrets |= {"access token 3": third.access_token, "refresh token 3": third.refresh_token or ""}

        assert call("astravue_get_space", {"space_id": 424242})["isError"]
        for status in (500, 503):
            httpx2.post(f"{oidc.api.url}/_sandbox/faults", json={"status": status, "operations": ["get_space"]})
            assert call("astravue_get_space", {"space_id": 1})["isError"]
        assert call("astravue_get_space", {"space_id": "eyJhbGciOi.not-a-token"})["isError"]
    finally:
        stderr = server.close()
    assert_pure_jsonrpc(server.stdout)
    outputs["serve stdout"] = b"".join(server.stdout).decode()
    outputs["serve stderr"] = stderr
    outputs["tool results"] = "\n".join(results)
    assert "GET /v1/spaces" in stderr and "Access token renewed" in stderr  # DEBUG really was on

    status = subprocess.run([*EXE, "status"], env=env, capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and "alice" in status.stdout
    outputs["status"] = status.stdout + status.stderr

    assert leaks(outputs, secrets) == []  # nor anything shaped like a JWT (the provider's tokens are)


def test_a_token_file_open_to_others_is_reported_when_the_store_is_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "store"
    settings = load_settings(
        {}, client_id="cid", auth_url="https://auth.example/realms/x", token_store="file", token_dir=str(directory)
    )
    first = open_store(settings)
    assert isinstance(first, FileStore)
    first.save(TokenSet(auth_url=settings.auth_url, client_id="cid", access_token="a" * 20, obtained_at=0))
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    with caplog.at_level("WARNING", logger="astravue_mcp.auth.store"):
        open_store(settings)
    assert caplog.records == []  # private: nothing to say

    first.path.chmod(0o644)
    directory.chmod(0o755)
    with caplog.at_level("WARNING", logger="astravue_mcp.auth.store"):
        open_store(settings)
    assert [r.getMessage() for r in caplog.records] == [
        f"Token store: {directory} is accessible to other users (mode 0755, expected 0700): "
        f"run `chmod 700 {directory}`",
        f"Token store: {first.path} is accessible to other users (mode 0644, expected 0600): "
        f"run `chmod 600 {first.path}`",
    ]
    assert "a" * 20 not in caplog.text


def test_settings_errors_never_show_a_secret_value() -> None:
    from astravue_mcp.config import SettingsError

    with pytest.raises(SettingsError) as caught:
        load_settings({"ASTRAVUE_HTTP_TOKEN": "", "ASTRAVUE_ACCESS_TOKEN": "tok"}, org_id=-5)
    assert "tok" not in str(caught.value)
    env = {"ASTRAVUE_CLIENT_SECRET": "s3cr3t-value-xyz", "ASTRAVUE_RATE_LIMIT": "-1"}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert "s3cr3t-value-xyz" not in str(caught.value)
    assert repr(load_settings({"ASTRAVUE_CLIENT_SECRET": "s3cr3t-value-xyz"})).count("s3cr3t") == 0


def test_the_stderr_log_scrubs_secrets_in_messages_tracebacks_and_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    """The net itself: whatever a library or our code puts in a log line, the handler scrubs it."""
    import logging
    import warnings

    from astravue_mcp.redact import register_secret, setup_logging

    opaque = "opaque-refresh-9f8e7d6c5b4a"  # not shaped like anything: caught because it is registered
    register_secret(opaque)
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
    secrets = [opaque, jwt, "plain-bearer-abc123", "the-code-77aa", "client-secret-zz", "verifier-0099xx"]
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    with warnings.catch_warnings():  # setup_logging changes the warning filters: restore them after
        try:
            setup_logging("DEBUG")
            log = logging.getLogger("astravue_mcp.test")
            log.debug("sending headers {'Authorization': 'Bearer plain-bearer-abc123'}")
            log.info("callback GET /callback?code=the-code-77aa&state=xyz")
            log.info('token request body {"client_secret": "client-secret-zz", "code_verifier": "verifier-0099xx"}')
            log.info("stored %s and %s", opaque, jwt)
            try:
                raise RuntimeError(f"refresh failed for refresh_token={opaque}")
            except RuntimeError:
                log.exception("refresh crashed")
            # What logging.captureWarnings makes of a library's warning (pytest owns the real
            # warnings machinery here; the stdio purity test covers warnings in a real process).
            text = warnings.formatwarning(f"library complains about Bearer {jwt}", UserWarning, __file__, 1)
            logging.getLogger("py.warnings").warning("%s", text)
        finally:
            logging.captureWarnings(False)
            root.handlers[:], root.level = saved
    out, err = capsys.readouterr()
    assert out == ""
    assert "refresh crashed" in err and "Traceback" in err and "library complains" in err
    assert [s for s in secrets if s in err] == []
    assert err.count("[redacted]") >= 7


def test_the_redaction_net_holds_only_live_secrets() -> None:
    """A server refreshing for months scans a handful of secrets per log line, not every token it ever had."""
    import gc
    import time

    from astravue_mcp.auth.store import TokenSet
    from astravue_mcp.redact import redact, registered_secrets

    before = registered_secrets()
    current = None
    for n in range(5000):  # 5,000 refreshes, each replacing the previous token pair
        current = TokenSet.from_response(
            {"access_token": f"access-{n:06d}-x", "refresh_token": f"refresh-{n:06d}-x", "expires_in": 300},
            auth_url="https://auth.example/realms/x",
            client_id="cid",
            previous=current,
        )
    gc.collect()
    assert registered_secrets() <= before + 2
    assert redact("Bearer-less refresh-004999-x leaked") == "Bearer-less [redacted] leaked"  # the live one
    started = time.perf_counter()
    for _ in range(100):
        redact("an ordinary log line " * 10)
    assert (time.perf_counter() - started) / 100 < 0.001


def test_a_deployments_own_secrets_outlive_any_number_of_sign_ins() -> None:
    """Pinned bug: remote mode registers several values per sign-in without an owner; after a few
    dozen the Redis password (registered once, with the settings) fell out of the net."""
    from astravue_mcp.config import load_settings
    from astravue_mcp.redact import MAX_PINNED, redact, register_secret

    load_settings({"ASTRAVUE_STATE_URL": "redis://:redis-pw-0123456789@127.0.0.1:6399/0"})
    for n in range(3 * MAX_PINNED):  # codes, verifiers and tokens of many sign-ins
        register_secret(f"one-time-value-{n:04d}")
    assert redact("connecting with redis-pw-0123456789") == "connecting with [redacted]"
