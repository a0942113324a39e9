"""Where a login lives between processes: the token set, its stores, and the inter-process lock.

One login is one :class:`TokenSet`, stored under a key made of the auth URL and the client id, so
several accounts (or realms) can coexist. Two stores exist:

- :class:`KeyringStore`, the OS keyring, used when a usable backend exists;
- :class:`FileStore`, one JSON file per login in the user config directory (directory 0700, file
  0600, written to a temp file and renamed so a reader never sees half a file).

Either way, writes and refreshes happen under :class:`InterProcessLock` (a lock file next to the
store) so that Claude Desktop, Claude Code and an IDE running this server at the same time never
refresh with the same rotating refresh token twice.

All methods here are blocking; async callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from astravue_mcp.auth.oidc import unverified_claims
from astravue_mcp.config import Settings
from astravue_mcp.redact import register_secret

log = logging.getLogger(__name__)

APP_NAME = "astravue-mcp"
KEYRING_SERVICE = "astravue-mcp"
STORE_VERSION = 1
LOCK_TIMEOUT = 45.0
"""Longest wait for another process's refresh (bounded at 30 s, its retries included) before giving up for now."""

MARGIN_FRACTION = 0.25
"""The refresh margin never exceeds this share of an access token's lifetime."""

# The identity claims `status` shows; the rest of the ID token is not worth keeping.
IDENTITY_CLAIMS = ("iss", "sub", "preferred_username", "email", "name", "azp")


class StoreError(Exception):
    """The token store cannot be read or written (permissions, a broken keyring, a lock timeout)."""


class TokenSet(BaseModel):
    """One login: what the token endpoint returned, with relative lifetimes turned into instants."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    auth_url: str
    client_id: str
    access_token: str = Field(repr=False)
    refresh_token: str | None = Field(None, repr=False)
    token_type: str = "Bearer"
    scope: str | None = None
    obtained_at: float
    expires_at: float | None = None
    """When the access token expires (epoch seconds); None when the provider did not say."""
    refresh_expires_at: float | None = None
    """When the refresh token expires; None when there is no fixed expiry (or none was reported)."""
    refresh_expiry_reported: bool = False
    """Whether the provider reported ``refresh_expires_in`` (0 there means 'no fixed expiry')."""
    claims: dict[str, Any] = Field(default_factory=dict)
    """Identity claims read (without trusting them) from the ID token or a JWT access token."""

    def model_post_init(self, context: Any, /) -> None:
        # Whatever creates or loads a token set, its tokens are scrubbed from every log line.
        register_secret(self.access_token, owner=self)
        register_secret(self.refresh_token, owner=self)

    @classmethod
    def from_response(
        cls,
        payload: Mapping[str, Any],
        *,
        auth_url: str,
        client_id: str,
        previous: TokenSet | None = None,
        now: float | None = None,
    ) -> TokenSet:
        """Build a token set from a token-endpoint answer.

        A refresh answer may omit the refresh token (no rotation) or the ID token; the previous
        values are kept then, because losing them would force a new interactive login.
        """
        now = time.time() if now is None else now
        access = payload.get("access_token")
        if not isinstance(access, str) or not access:
            raise ValueError("the token response has no access_token")
        expires_in = _seconds(payload.get("expires_in"))
        # No new refresh token (no rotation): the one just used stays, but only while it is valid.
        kept = previous.refresh_token if previous and not previous.refresh_expired(now) else None
        refresh = payload.get("refresh_token") or kept
        claims = dict(previous.claims) if previous else {}
        for token in (payload.get("id_token"), access):
            found = unverified_claims(token) if isinstance(token, str) else {}
            if found:
                claims.update({k: found[k] for k in IDENTITY_CLAIMS if k in found})
                break
        if "refresh_expires_in" in payload:
            refresh_in = _seconds(payload.get("refresh_expires_in"))
            reported = True
            refresh_at = now + refresh_in if refresh_in else None  # Keycloak: 0 = no fixed expiry
        elif previous is not None and not payload.get("refresh_token"):
            refresh_at, reported = previous.refresh_expires_at, previous.refresh_expiry_reported
        else:
            refresh_at, reported = None, False
        return cls(
            auth_url=auth_url,
            client_id=client_id,
            access_token=access,
            refresh_token=refresh,
            token_type=str(payload.get("token_type") or "Bearer"),
            scope=payload.get("scope") or (previous.scope if previous else None),
            obtained_at=now,
            expires_at=now + expires_in if expires_in else None,
            refresh_expires_at=refresh_at,
            refresh_expiry_reported=reported,
            claims=claims,
        )

    def expires_within(self, margin: float, now: float | None = None) -> bool:
        """True when the access token is expired or will be within ``margin`` seconds.

        The margin is at most ``MARGIN_FRACTION`` of the token's lifetime: a 60 s margin on a 60 s
        token would otherwise renew it before every request.
        """
        if self.expires_at is None:
            return False  # unknown lifetime: use it until the API answers 401
        margin = min(margin, max(0.0, self.expires_at - self.obtained_at) * MARGIN_FRACTION)
        return (time.time() if now is None else now) + margin >= self.expires_at

    def refresh_expired(self, now: float | None = None) -> bool:
        if self.refresh_expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.refresh_expires_at


def _seconds(value: Any) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 0.0


def store_key(auth_url: str, client_id: str) -> str:
    return f"{auth_url.rstrip('/')}#{client_id}"


def store_dir(settings: Settings) -> Path:
    """The directory of the token file and of the lock file (tests point it elsewhere)."""
    if settings.token_dir:
        return Path(settings.token_dir).expanduser()
    import platformdirs  # deferred: ~10 ms, and a server imports this module at start-up (identity)

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def _ensure_private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        with contextlib.suppress(OSError):  # not ours to change (e.g. a shared mount): keep going
            if path.stat().st_mode & 0o077:
                path.chmod(0o700)


class InterProcessLock:
    """An exclusive lock on a file, shared by every process using the same store.

    ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows. The OS releases it when a process
    dies, so a crash never leaves the store locked. Acquire polls with a non-blocking attempt so
    that a timeout is possible and a cancelled waiter never ends up holding the lock.

    On POSIX the lock belongs to the open file: a refresh helper that inherited the descriptor
    (:mod:`astravue_mcp.auth.renew`) keeps it locked after this process lets go or dies, so
    :meth:`release` closes the descriptor instead of unlocking the file under the helper's feet.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float = LOCK_TIMEOUT) -> None:
        _ensure_private_dir(self.path.parent)
        # O_NOFOLLOW: a symlink planted in the store's directory must not make us create or lock its target.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:  # ELOOP for a symlink; permissions
            raise StoreError(
                f"cannot open the lock file {self.path} ({exc.strerror}); remove it if it is a link"
            ) from None
        deadline = time.monotonic() + timeout
        delay = 0.002
        try:
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise StoreError(f"another astravue-mcp process has held {self.path} for over {timeout:.0f} s")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def fileno(self) -> int:
        """The locked descriptor (only while held)."""
        assert self._fd is not None, "the lock is not held"
        return self._fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _unlock(fd)
            os.close(fd)

    @contextlib.contextmanager
    def held(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows-only module
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        pass  # closing the descriptor unlocks, once no helper shares it (see InterProcessLock)


class TokenStore(Protocol):
    """Persistence of one login (one auth URL + client id)."""

    description: str
    lock: InterProcessLock

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...

    def delete(self) -> bool:
        """Remove the login; True when there was one."""
        ...


def _encode(tokens: TokenSet) -> str:
    return json.dumps({"version": STORE_VERSION, "tokens": tokens.model_dump(mode="json")})


def _decode(raw: str | bytes, where: str) -> TokenSet | None:
    try:
        data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        return TokenSet.model_validate(data["tokens"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # not UTF-8, not JSON, absurdly nested...
        # A corrupt entry is treated as "not logged in" (a new login overwrites it), never fatal.
        log.warning("Ignoring an unreadable token entry in %s (%s)", where, type(exc).__name__)
        return None


class FileStore:
    """One JSON file per login, private to the user, replaced atomically."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory, self.key = directory, key
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.path = directory / f"tokens-{digest}.json"
        self.lock = InterProcessLock(directory / f"tokens-{digest}.lock")
        self.description = f"file {self.path}"

    def check_permissions(self) -> list[str]:
        """Warn when the token file or its directory is open to other users; returns the warnings.

        Run once when the store is opened (the first request or a command), never at server start.
        The next save tightens both; until then the person should know the tokens were exposed.
        """
        if os.name != "posix":
            return []
        problems = []
        for path, wanted, fix in ((self.path.parent, 0o700, "chmod 700"), (self.path, 0o600, "chmod 600")):
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
            except OSError:
                continue  # not created yet: it will be created private
            if mode & 0o077:
                problems.append(
                    f"{path} is accessible to other users (mode {mode:04o}, expected {wanted:04o}): run `{fix} {path}`"
                )
        for problem in problems:
            log.warning("Token store: %s", problem)
        return problems

    def load(self) -> TokenSet | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
        return _decode(raw, str(self.path))

    def save(self, tokens: TokenSet) -> None:
        _ensure_private_dir(self.path.parent)
        # mkstemp creates the file 0600 before any secret is written to it.
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(_encode(tokens))
                fh.flush()
                os.fsync(fh.fileno())
            if os.name == "posix":
                os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if os.name == "posix":  # the rename itself must survive a crash, not just the bytes
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def delete(self) -> bool:
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False


class KeyringStore:
    """The OS keyring (macOS Keychain, Windows Credential Locker, Secret Service...)."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory, self.key = directory, key
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.lock = InterProcessLock(directory / f"tokens-{digest}.lock")
        import keyring  # deferred: it looks for backends on import (~140 ms); servers import this module at start-up

        self._keyring = keyring
        self.description = f"OS keyring ({type(keyring.get_keyring()).__name__}), service {KEYRING_SERVICE!r}"

    def load(self) -> TokenSet | None:
        try:
            raw = self._keyring.get_password(KEYRING_SERVICE, self.key)
        except Exception as exc:
            raise StoreError(f"the OS keyring could not be read ({type(exc).__name__})") from None
        return None if raw is None else _decode(raw, "the OS keyring")

    def save(self, tokens: TokenSet) -> None:
        try:
            self._keyring.set_password(KEYRING_SERVICE, self.key, _encode(tokens))
        except Exception as exc:
            raise StoreError(f"the OS keyring could not be written ({type(exc).__name__})") from None

    def delete(self) -> bool:
        from keyring.errors import PasswordDeleteError  # deferred: see KeyringStore.__init__

        try:
            self._keyring.delete_password(KEYRING_SERVICE, self.key)
            return True
        except PasswordDeleteError:
            return False
        except Exception as exc:
            raise StoreError(f"the OS keyring entry could not be deleted ({type(exc).__name__})") from None


def keyring_usable() -> bool:
    """Whether a real keyring backend exists and answers (headless Linux often has none)."""
    try:
        import keyring  # deferred: see KeyringStore.__init__
        from keyring.backends import fail, null  # deferred: see KeyringStore.__init__

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring | null.Keyring) or backend.priority <= 0:
            return False
        backend.get_password(KEYRING_SERVICE, "__probe__")
        return True
    except Exception as exc:  # a backend that exists but cannot talk to its daemon
        log.debug("OS keyring not usable: %s", type(exc).__name__)
        return False


def store_spec(store: TokenStore) -> dict[str, str] | None:
    """What another process needs to open the same store (None for a store of another kind)."""
    for kind, cls in STORE_KINDS.items():
        if type(store) is cls:
            assert isinstance(store, FileStore | KeyringStore)
            return {"kind": kind, "directory": str(store.directory), "key": store.key}
    return None


def reopen_store(spec: Mapping[str, str]) -> TokenStore:
    return STORE_KINDS[spec["kind"]](Path(spec["directory"]), spec["key"])


STORE_KINDS: dict[str, type[FileStore] | type[KeyringStore]] = {"file": FileStore, "keyring": KeyringStore}


def open_store(settings: Settings) -> TokenStore:
    """The store for this auth URL + client id; ``ASTRAVUE_TOKEN_STORE`` can force one kind."""
    settings.require("client_id")
    assert settings.client_id is not None
    key = store_key(settings.auth_url, settings.client_id)
    directory = store_dir(settings)
    kind = settings.token_store
    if kind == "auto":
        kind = "keyring" if keyring_usable() else "file"
    if kind == "keyring":
        return KeyringStore(directory, key)
    store = FileStore(directory, key)
    store.check_permissions()
    return store


def duration(seconds: float) -> str:
    """A span for people: "45 s", "12 min", "3 h 5 min", "30 days"."""
    seconds = int(max(0, seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
